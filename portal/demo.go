package portal

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
)

// The demo cast file (testdata/demo/cast.json). Times are written relative
// to the day the cast is loaded ("-40d 10:15" is 40 days ago at 10:15 in
// Europe/Oslo), so deadlines stay ahead and "new" stays new.
type demoCast struct {
	Office struct {
		Key, Name, Municipality, Phone string
		EmergencyPhone                 string `json:"emergency_phone"`
	}
	Teams []struct{ Key, Name string }
	Users []struct {
		Key, Name, Kind, Team, Unit, Lang string
		Email                             string // a fictional address: notifications by e-mail
	}
	Cases []struct {
		Key, Reference, Child, Status, Team string
		Opened, Closed                      string
		InvestigationDue                    string `json:"investigation_due"`
		Caseworkers                         []string
		Parties                             []struct{ User, Role string }
		Documents                           []struct {
			Key, Title, Kind, Published, File string
			AppealDue                         string `json:"appeal_due"`
			Audience                          []string
			Withheld                          []struct{ User, Reason string }
		}
		Events []struct {
			Kind, At, Note string
			Audience       []string
		}
		// Conversations: one per party with the case's caseworkers.
		Conversations []struct {
			Party    string
			Messages []struct{ From, At, Body string }
		}
	}
	// Availability: the office's hours and day rules, and the caseworkers'
	// weekly windows and absences. Days are "mon-fri" or "wed"; dates are
	// relative to the load day ("-2d").
	Availability struct {
		OfficeHours   []demoWindow `json:"office_hours"`
		Barnevernvakt struct{ Evening, Morning string }
		AnswerDays    int    `json:"answer_days"`
		ChristmasEve  string `json:"christmas_eve_closes"`
		NewYearsEve   string `json:"new_years_eve_closes"`
		Caseworkers   []struct {
			User     string
			Windows  []demoWindow
			Absences []struct{ From, To, Substitute string }
		}
	}
}

// demoWindow is a weekly window on a range of weekdays ("mon-fri").
type demoWindow struct{ Channel, Days, From, To string }

// LoadDemo loads the demo cast from fsys (cast.json and the documents it
// names) into db, in one transaction. It does nothing if the cast is
// already there, so `portal demo` can be started again on the same file.
func LoadDemo(ctx context.Context, db *sqlx.DB, fsys fs.FS, now time.Time) error {
	var n int
	if err := db.GetContext(ctx, &n, `SELECT COUNT(*) FROM users WHERE demo_key IS NOT NULL`); err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	if n > 0 {
		return nil
	}
	raw, err := fs.ReadFile(fsys, "cast.json")
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	var cast demoCast
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&cast); err != nil {
		return fmt.Errorf("demo: cast.json: %w", err)
	}
	oslo, err := time.LoadLocation("Europe/Oslo")
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	l := demoLoader{now: now.In(oslo), ids: map[string]string{}}

	tx, err := db.BeginTxx(ctx, nil)
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	defer tx.Rollback()
	exec := func(query string, args ...any) {
		if l.err == nil {
			_, l.err = tx.ExecContext(ctx, tx.Rebind(query), args...)
		}
	}

	o := cast.Office
	exec(`INSERT INTO offices (id, name, municipality, phone, emergency_phone) VALUES (?, ?, ?, ?, ?)`,
		l.id("office:"+o.Key), o.Name, o.Municipality, o.Phone, o.EmergencyPhone)
	for _, t := range cast.Teams {
		exec(`INSERT INTO teams (id, office_id, name) VALUES (?, ?, ?)`,
			l.id("team:"+t.Key), l.id("office:"+o.Key), t.Name)
	}
	for _, u := range cast.Users {
		var team, office any
		if u.Team != "" {
			team, office = l.id("team:"+u.Team), l.id("office:"+o.Key)
		}
		exec(`INSERT INTO users (id, kind, name, demo_key, lang, office_id, team_id, unit, created_at)
		      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			l.id("user:"+u.Key), u.Kind, u.Name, u.Key, u.Lang, office, team, u.Unit, l.now.UTC())
		if u.Email != "" {
			exec(`INSERT INTO contact_preferences (user_id, channel, email, updated_at) VALUES (?, 'email', ?, ?)`,
				l.id("user:"+u.Key), u.Email, l.now.UTC())
		}
	}
	for _, c := range cast.Cases {
		caseID := l.id("case:" + c.Key)
		exec(`INSERT INTO cases (id, reference, office_id, team_id, child_name, status, opened_at,
		                         investigation_due, closed_at, updated_at)
		      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			caseID, c.Reference, l.id("office:"+o.Key), l.id("team:"+c.Team), c.Child, c.Status,
			l.at(c.Opened), l.optAt(c.InvestigationDue), l.optAt(c.Closed), l.now.UTC())
		for i, cw := range c.Caseworkers {
			exec(`INSERT INTO case_caseworkers (case_id, user_id, is_primary) VALUES (?, ?, ?)`,
				caseID, l.id("user:"+cw), i == 0)
		}
		for _, p := range c.Parties {
			exec(`INSERT INTO parties (case_id, user_id, role) VALUES (?, ?, ?)`,
				caseID, l.id("user:"+p.User), p.Role)
		}
		for _, d := range c.Documents {
			body, err := fs.ReadFile(fsys, d.File)
			if err != nil && l.err == nil {
				l.err = err
			}
			sum := sha256.Sum256(body)
			docID := l.id("doc:" + d.Key)
			exec(`INSERT INTO documents (id, case_id, title, kind, published_at, appeal_due, filename,
			                             content_type, size, sha256, content)
			      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
				docID, caseID, d.Title, d.Kind, l.at(d.Published), l.optAt(d.AppealDue),
				path.Base(d.File), contentTypeOf(d.File), len(body), hex.EncodeToString(sum[:]), body)
			for _, r := range d.Audience {
				exec(`INSERT INTO document_audience (document_id, role) VALUES (?, ?)`, docID, r)
			}
			for _, w := range d.Withheld {
				exec(`INSERT INTO document_withheld (document_id, user_id, reason) VALUES (?, ?, ?)`,
					docID, l.id("user:"+w.User), w.Reason)
			}
		}
		for _, e := range c.Events {
			eventID := NewID()
			exec(`INSERT INTO timeline_events (id, case_id, kind, occurred_at, note) VALUES (?, ?, ?, ?, ?)`,
				eventID, caseID, e.Kind, l.at(e.At), e.Note)
			for _, r := range e.Audience {
				exec(`INSERT INTO timeline_audience (event_id, role) VALUES (?, ?)`, eventID, r)
			}
		}
		for _, cv := range c.Conversations {
			convID := NewID()
			exec(`INSERT INTO conversations (id, case_id, kind, last_seq, created_at) VALUES (?, ?, 'party', ?, ?)`,
				convID, caseID, len(cv.Messages), l.at(c.Opened))
			// Each side has read up to the last message it wrote, so the
			// demo opens with a realistic unread count on both sides.
			var partyRead, staffRead int
			for i, m := range cv.Messages {
				seq := i + 1
				exec(`INSERT INTO messages (id, conversation_id, seq, sender_id, client_id, body, kind, created_at)
				      VALUES (?, ?, ?, ?, ?, ?, 'text', ?)`,
					NewID(), convID, seq, l.id("user:"+m.From), NewID(), m.Body, l.at(m.At))
				if m.From == cv.Party {
					partyRead = seq
				} else {
					staffRead = seq
				}
			}
			exec(`INSERT INTO conversation_members (conversation_id, user_id, last_read_seq, joined_at) VALUES (?, ?, ?, ?)`,
				convID, l.id("user:"+cv.Party), partyRead, l.at(c.Opened))
			for _, cw := range c.Caseworkers {
				exec(`INSERT INTO conversation_reads (conversation_id, user_id, last_read_seq, read_at) VALUES (?, ?, ?, ?)`,
					convID, l.id("user:"+cw), staffRead, l.now.UTC())
			}
		}
	}
	av := cast.Availability
	officeID := l.id("office:" + o.Key)
	for _, w := range av.OfficeHours {
		for _, wd := range l.weekdays(w.Days) {
			exec(`INSERT INTO office_hours (office_id, weekday, start_min, end_min) VALUES (?, ?, ?, ?)`,
				officeID, wd, l.minute(w.From), l.minute(w.To))
		}
	}
	eve := func(s string) any {
		if s == "" {
			return nil
		}
		return l.minute(s)
	}
	exec(`INSERT INTO office_calendar (office_id, christmas_eve_close_min, new_years_eve_close_min,
	                                   vakt_evening_min, vakt_morning_min, answer_days)
	      VALUES (?, ?, ?, ?, ?, ?)`, officeID, eve(av.ChristmasEve), eve(av.NewYearsEve),
		l.minute(av.Barnevernvakt.Evening), l.minute(av.Barnevernvakt.Morning), av.AnswerDays)
	for _, cw := range av.Caseworkers {
		for _, w := range cw.Windows {
			for _, wd := range l.weekdays(w.Days) {
				exec(`INSERT INTO availability_windows (user_id, channel, weekday, start_min, end_min) VALUES (?, ?, ?, ?, ?)`,
					l.id("user:"+cw.User), w.Channel, wd, l.minute(w.From), l.minute(w.To))
			}
		}
		for _, a := range cw.Absences {
			var sub any
			if a.Substitute != "" {
				sub = l.id("user:" + a.Substitute)
			}
			exec(`INSERT INTO availability_absences (user_id, from_day, to_day, substitute_id) VALUES (?, ?, ?, ?)`,
				l.id("user:"+cw.User), l.day(a.From), l.day(a.To), sub)
		}
	}
	if l.err != nil {
		return fmt.Errorf("demo: %w", l.err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	return nil
}

// demoLoader keeps the first error, so the loading code above reads as a
// list of inserts.
type demoLoader struct {
	now time.Time
	ids map[string]string // "user:sara" -> random id
	err error
}

func (l *demoLoader) id(key string) string {
	if id, ok := l.ids[key]; ok {
		return id
	}
	id := NewID()
	l.ids[key] = id
	return id
}

// at parses "-40d 10:15": 40 days before the load day, 10:15 Oslo time, as UTC.
func (l *demoLoader) at(s string) time.Time {
	days, clock, ok := strings.Cut(s, "d ")
	n, err1 := strconv.Atoi(days)
	hm, err2 := time.Parse("15:04", clock)
	if !ok || err1 != nil || err2 != nil {
		if l.err == nil {
			l.err = fmt.Errorf("bad relative time %q", s)
		}
		return time.Time{}
	}
	d := l.now.AddDate(0, 0, n)
	return time.Date(d.Year(), d.Month(), d.Day(), hm.Hour(), hm.Minute(), 0, 0, d.Location()).UTC()
}

// day parses "-2d": the date 2 days before the load day, as YYYY-MM-DD.
func (l *demoLoader) day(s string) string {
	n, err := strconv.Atoi(strings.TrimSuffix(s, "d"))
	if err != nil || !strings.HasSuffix(s, "d") {
		if l.err == nil {
			l.err = fmt.Errorf("bad relative day %q", s)
		}
		return ""
	}
	return l.now.AddDate(0, 0, n).Format(time.DateOnly)
}

// minute parses "15:30" as minutes after midnight.
func (l *demoLoader) minute(s string) int {
	h, m, ok := strings.Cut(s, ":")
	hh, err1 := strconv.Atoi(h)
	mm, err2 := strconv.Atoi(m)
	if !ok || err1 != nil || err2 != nil {
		if l.err == nil {
			l.err = fmt.Errorf("bad time of day %q", s)
		}
		return 0
	}
	return hh*60 + mm
}

// weekdays parses "mon-fri" or "wed" as time.Weekday numbers.
func (l *demoLoader) weekdays(s string) []int {
	names := []string{"sun", "mon", "tue", "wed", "thu", "fri", "sat"}
	from, to, _ := strings.Cut(s, "-")
	if to == "" {
		to = from
	}
	a, b := slices.Index(names, from), slices.Index(names, to)
	if a < 0 || b < a {
		if l.err == nil {
			l.err = fmt.Errorf("bad weekdays %q", s)
		}
		return nil
	}
	var out []int
	for wd := a; wd <= b; wd++ {
		out = append(out, wd)
	}
	return out
}

func (l *demoLoader) optAt(s string) *time.Time {
	if s == "" {
		return nil
	}
	t := l.at(s)
	return &t
}

func contentTypeOf(name string) string {
	if strings.HasSuffix(name, ".pdf") {
		return "application/pdf"
	}
	return "text/plain; charset=utf-8"
}
