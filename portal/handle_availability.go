package portal

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"familieportal/i18n"
	"familieportal/messaging"
)

// This file is availability as people see it: the caseworker's page that
// edits windows, exceptions and absences (/availability), what a family
// reads about reaching their caseworker (the case page's contact card and
// the line above the chat's write box), the barnevernvakt's state in the
// footer, the inbox banner, the team lead's list of families who have
// waited too long (/waiting), and the wording of automatic replies.
// The rules themselves are in messaging/availability.go.

// defaultWaitingDays is how many working days a family may wait before the
// team lead's list shows them, when Options.WaitingDays is not set.
const defaultWaitingDays = 2

// maxFormRows bounds the exception and absence rows one form post may
// carry; a real person has a handful.
const maxFormRows = 100

// availability returns the availability store over the portal's database.
// It is a thin value, so making one per request costs nothing.
func (s *Server) availability() *messaging.AvailabilityStore {
	return messaging.NewAvailabilityStore(s.store.db)
}

// --- Wording ---------------------------------------------------------------

// weekdayKeys are the message-ID suffixes of the weekdays, by time.Weekday.
var weekdayKeys = [...]string{"sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday"}

// weekOrder is the week as Norwegians write it, Monday first.
var weekOrder = []time.Weekday{time.Monday, time.Tuesday, time.Wednesday, time.Thursday, time.Friday, time.Saturday, time.Sunday}

// clockText writes a minute of the day without "kl.": "08.00" (nb, nn),
// "08:00" (en). 1440 is "24.00", the end of the day.
func clockText(l *i18n.Localizer, minute int) string {
	return l.T("availability_clock", map[string]any{
		"Hour": fmt.Sprintf("%02d", minute/60), "Minute": fmt.Sprintf("%02d", minute%60),
	})
}

// spanText writes a period of a day: "08.00–15.30".
func spanText(l *i18n.Localizer, start, end int) string {
	return l.T("availability_span", map[string]any{"From": clockText(l, start), "To": clockText(l, end)})
}

// daySpans returns each weekday's windows written out, "08.00–11.30,
// 12.00–15.30", for the days that have any.
func daySpans(l *i18n.Localizer, ws []messaging.Window) map[time.Weekday]string {
	ws = slices.Clone(ws)
	slices.SortFunc(ws, func(a, b messaging.Window) int { return a.StartMin - b.StartMin })
	parts := map[time.Weekday][]string{}
	for _, w := range ws {
		parts[w.Weekday] = append(parts[w.Weekday], spanText(l, w.StartMin, w.EndMin))
	}
	out := map[time.Weekday]string{}
	for wd, p := range parts {
		out[wd] = strings.Join(p, ", ")
	}
	return out
}

// hoursText sums up weekly windows the way a family reads them: days that
// follow each other with the same hours are joined, "man–fre 08.00–15.30";
// different days are separated by semicolons.
func hoursText(l *i18n.Localizer, ws []messaging.Window) string {
	spans := daySpans(l, ws)
	if len(spans) == 0 {
		return l.T("availability_hours_none", nil)
	}
	short := func(wd time.Weekday) string { return l.T("availability_weekday_short_"+weekdayKeys[wd], nil) }
	var groups []string
	for i := 0; i < len(weekOrder); {
		wd := weekOrder[i]
		if spans[wd] == "" {
			i++
			continue
		}
		j := i
		for j+1 < len(weekOrder) && spans[weekOrder[j+1]] == spans[wd] {
			j++
		}
		days := short(wd)
		if j > i {
			days = l.T("availability_days_range", map[string]any{"From": days, "To": short(weekOrder[j])})
		}
		groups = append(groups, days+" "+spans[wd])
		i = j + 1
	}
	return strings.Join(groups, "; ")
}

// whenText says when t is, seen from now, for "opens …" and "sees it …":
// "i dag kl. 15.30", "i morgen kl. 08.00", "mandag kl. 08.00" within a
// week, and otherwise the date, "14. august 2026 kl. 08.00".
func whenText(l *i18n.Localizer, t, now time.Time) string {
	td, nd := messaging.DateOf(t), messaging.DateOf(now)
	data := map[string]any{"Time": l.Time(t)}
	switch {
	case td == nd:
		return l.T("availability_when_today", data)
	case td == nd.AddDays(1):
		return l.T("availability_when_tomorrow", data)
	case td.After(nd) && td.Before(nd.AddDays(7)):
		data["Weekday"] = l.Weekday(t)
		return l.T("availability_when_weekday", data)
	}
	data["Date"] = l.Date(t)
	return l.T("availability_when_date", data)
}

// untilText is whenText for the end of an open period: just the time when
// it ends today ("open now, until 15.30").
func untilText(l *i18n.Localizer, t, now time.Time) string {
	if messaging.DateOf(t) == messaging.DateOf(now) {
		return l.Time(t)
	}
	return whenText(l, t, now)
}

// dateTime turns a calendar date into an instant on it (noon, which every
// Oslo day has exactly once), for the localizer's date formats.
func dateTime(d messaging.Date) time.Time {
	return time.Date(d.Year, d.Month, d.Day, 12, 0, 0, 0, messaging.Oslo())
}

// stateText says whether a channel is open at now on sched.
func stateText(l *i18n.Localizer, sched messaging.Schedule, ch messaging.Channel, now time.Time) (string, bool) {
	open, until := sched.OpenAt(ch, now)
	switch {
	case open && until.IsZero():
		return l.T("availability_open_always", nil), true
	case open:
		return l.T("availability_open_until", map[string]any{"When": untilText(l, until, now)}), true
	case until.IsZero():
		return l.T("availability_closed", nil), false
	}
	return l.T("availability_opens", map[string]any{"When": whenText(l, until, now)}), false
}

// vaktText says whether the barnevernvakt answers now, and until when.
func vaktText(l *i18n.Localizer, o messaging.OfficeSettings, phone, officePhone string, now time.Time) string {
	if phone == "" {
		return ""
	}
	open, until := o.Barnevernvakt().OpenAt(now)
	switch {
	case open && until.IsZero():
		return l.T("availability_vakt_always", map[string]any{"Phone": phone})
	case open:
		return l.T("availability_vakt_open", map[string]any{"Phone": phone, "When": untilText(l, until, now)})
	}
	return l.T("availability_vakt_closed", map[string]any{
		"Phone": phone, "OfficePhone": officePhone, "When": whenText(l, until, now)})
}

// channelStatus is one line of "when you can reach us".
type channelStatus struct {
	Channel messaging.Channel
	Name    string
	Status  string
	Open    bool
}

// contactView is the family's view of how to reach the case's caseworker,
// already worded in the viewer's language.
type contactView struct {
	// Away says who answers while the caseworker is away ("" otherwise).
	Away     string
	Channels []channelStatus
	// AnswerBy is the expected answer time in working days, with the date.
	AnswerBy string
	// Vakt is the barnevernvakt's number and state.
	Vakt string
	// ChatLine is the line above the chat's write box.
	ChatLine string
}

// newContactView words c for the viewer at now.
func newContactView(l *i18n.Localizer, c messaging.Contact, now time.Time) contactView {
	var v contactView
	if c.Away {
		data := map[string]any{"Name": c.Caseworker.Name, "Date": l.Date(dateTime(c.Absence.To))}
		if c.Substitute.ID != "" {
			data["Substitute"] = c.Substitute.Name
			v.Away = l.T("availability_away_substitute", data)
		} else {
			v.Away = l.T("availability_away_team", data)
		}
	}
	responder, sched := c.Responder()
	for _, ch := range messaging.Channels() {
		st := channelStatus{Channel: ch, Name: l.T("availability_channel_"+string(ch), nil)}
		if ch == messaging.ChannelPhone && c.OfficePhone != "" {
			st.Name = l.T("availability_channel_phone_number", map[string]any{"Phone": c.OfficePhone})
		}
		st.Status, st.Open = stateText(l, sched, ch, now)
		v.Channels = append(v.Channels, st)
	}
	if by := c.Office.Schedule().AnswerBy(now, c.Office.AnswerDays); !by.IsZero() {
		v.AnswerBy = l.N("availability_answer_by", c.Office.AnswerDays, map[string]any{"When": whenText(l, by, now)})
	}
	v.Vakt = vaktText(l, c.Office, c.EmergencyPhone, c.OfficePhone, now)

	subject, object := l.T("availability_the_team_subject", nil), l.T("availability_the_team", nil)
	if responder.ID != "" {
		subject = messaging.FirstName(responder.Name)
		object = subject
	}
	switch open, until := sched.OpenAt(messaging.ChannelChat, now); {
	case open:
		v.ChatLine = l.N("availability_chat_open_line", c.Office.AnswerDays, map[string]any{
			"Name": subject, "Hours": hoursText(l, sched.WeeklyWindows(messaging.ChannelChat))})
	case until.IsZero():
		v.ChatLine = l.T("availability_chat_closed_line_never", map[string]any{"Name": object, "Phone": c.EmergencyPhone})
	default:
		v.ChatLine = l.T("availability_chat_closed_line", map[string]any{
			"Name": object, "When": whenText(l, until, now), "Phone": c.EmergencyPhone})
	}
	return v
}

// caseContact is the contact card of the case g grants, for the viewer.
func (s *Server) caseContact(c echo.Context, g Grant) (*contactView, error) {
	now := s.store.now()
	contact, err := s.store.caseContact(c.Request().Context(), g.CaseID())
	if err != nil {
		return nil, err
	}
	v := newContactView(s.localizer(c), contact, now)
	return &v, nil
}

// vaktNow is the barnevernvakt's state for the footer of every page ("Åpen
// nå, til mandag kl. 08.00.") on the office's settings.
func vaktNow(l *i18n.Localizer, settings messaging.OfficeSettings, now time.Time) string {
	text, _ := stateText(l, settings.Barnevernvakt().Schedule(), messaging.ChannelPhone, now)
	return text
}

// outsideChatHours reports whether staff member u's own chat is closed now,
// for the inbox banner.
func (s *Server) outsideChatHours(ctx context.Context, u User) (bool, error) {
	sched, err := s.store.ownSchedule(ctx, u.ID)
	if err != nil {
		return false, err
	}
	open, _ := sched.OpenAt(messaging.ChannelChat, s.store.now())
	return !open, nil
}

// substituteOnly reports whether the signed-in member of staff reaches a
// conversation of caseID only as a substitute, without access to the case
// itself; the conversation page then leaves out its link to the case. The
// check reads no case data, so it is not audited (opening the case would be).
func (s *Server) substituteOnly(c echo.Context, caseID string) (bool, error) {
	u, _ := userFrom(c)
	if !u.Kind.Staff() {
		return false, nil // a member of a conversation is a party to its case
	}
	_, err := s.store.grant(c.Request().Context(), s.store.db, u, caseID)
	if errors.Is(err, ErrNotFound) {
		return true, nil
	}
	return false, err
}

// AutoReplyText words the chat's automatic replies in the family member's
// language (their saved one, else Bokmål): that the chat is closed, when
// the message will be read and by whom, and where to turn if it is urgent.
func AutoReplyText(b *i18n.Bundle) messaging.AutoReplyText {
	return func(r messaging.AutoReply) string {
		l := b.Localizer(r.Lang)
		var parts []string
		if r.Away {
			data := map[string]any{"Name": r.Caseworker, "Date": l.Date(dateTime(r.AwayUntil))}
			if r.Responder != "" {
				data["Substitute"] = r.Responder
				parts = append(parts, l.T("availability_away_substitute", data))
			} else {
				parts = append(parts, l.T("availability_away_team", data))
			}
		}
		name := l.T("availability_the_team", nil)
		if r.Responder != "" {
			name = messaging.FirstName(r.Responder)
		}
		if r.NextOpening.IsZero() {
			parts = append(parts, l.T("availability_auto_reply_never", map[string]any{"Name": name}))
		} else {
			parts = append(parts, l.T("availability_auto_reply", map[string]any{
				"Name": name, "When": whenText(l, r.NextOpening, r.Now)}))
		}
		if r.EmergencyPhone != "" {
			if r.VaktOpen {
				parts = append(parts, l.T("availability_auto_reply_urgent_vakt", map[string]any{"Phone": r.EmergencyPhone}))
			} else {
				parts = append(parts, l.T("availability_auto_reply_urgent_office", map[string]any{
					"Phone": r.EmergencyPhone, "OfficePhone": r.OfficePhone, "When": whenText(l, r.VaktUntil, r.Now)}))
			}
		}
		parts = append(parts, l.T("availability_auto_reply_emergency", nil))
		return strings.Join(parts, " ")
	}
}

// --- The caseworker's page ---------------------------------------------------

// gridDay is one weekday's input of a channel's week grid.
type gridDay struct {
	ID, Name, Label, Value, Error string
}

// gridChannel is one channel's week grid.
type gridChannel struct {
	Channel messaging.Channel
	Name    string
	Days    []gridDay
}

// exceptionInput is one row of the exceptions table as typed. Its inputs
// are named x.<row>.<field> and have the ids x-<row>-<field>.
type exceptionInput struct {
	Row                             int
	Date, Channel, Kind, Start, End string
	DateErr, ChannelErr, KindErr    string
	StartErr, EndErr                string
	Blank                           bool // a row to add a new exception in
}

// id returns the id of the row's input for field.
func (in exceptionInput) id(field string) string { return fmt.Sprintf("x-%d-%s", in.Row, field) }

// absenceInput is one row of the absences table as typed, named
// a.<row>.<field> with ids a-<row>-<field>.
type absenceInput struct {
	Row                    int
	From, To, Substitute   string
	FromErr, ToErr, SubErr string
	Blank                  bool
}

// id returns the id of the row's input for field.
func (in absenceInput) id(field string) string { return fmt.Sprintf("a-%d-%s", in.Row, field) }

// formError is one entry of the error summary: a link to the field.
type formError struct {
	ID, Message string
}

// availabilityPage is what availability.html shows.
type availabilityPage struct {
	Grid        []gridChannel
	Exceptions  []exceptionInput
	Absences    []absenceInput
	Colleagues  []messaging.Person
	Channels    []gridChannel // channel names for the exception rows' select
	OfficeHours string
	Errors      []formError
	Saved       bool
	Preview     contactView
}

// handleAvailability serves GET /availability: a caseworker's own windows,
// exceptions and absences, and a preview of what families see now. It is
// for staff only; a family member gets the same 404 as for a page that
// does not exist.
func (s *Server) handleAvailability(c echo.Context) error {
	u, _ := userFrom(c)
	if !u.Kind.Staff() {
		return ErrNotFound
	}
	ctx := c.Request().Context()
	st, err := s.availability().Settings(ctx, u.ID)
	if err != nil {
		return err
	}
	l := s.localizer(c)
	v := availabilityPage{Saved: c.QueryParam("saved") == "1"}
	v.Grid = gridOf(l, st.Windows)
	for i, e := range st.Exceptions {
		v.Exceptions = append(v.Exceptions, exceptionOf(i, e))
	}
	for i, a := range st.Absences {
		v.Absences = append(v.Absences, absenceOf(i, a))
	}
	return s.renderAvailability(c, u, http.StatusOK, v)
}

// handleAvailabilitySave serves POST /availability. The whole form is read
// and checked before anything is written; with any error the page comes
// back with the input as typed, an error summary and an error at each
// field, and the stored settings are untouched. A valid form replaces the
// settings in one transaction.
func (s *Server) handleAvailabilitySave(c echo.Context) error {
	u, _ := userFrom(c)
	if !u.Kind.Staff() {
		return ErrNotFound
	}
	form, err := c.FormParams()
	if err != nil {
		return ErrInvalid
	}
	// Refuse a form no person could have filled in, rather than read part
	// of it and drop the rest.
	if len(formRows(form, "x", "date")) > maxFormRows || len(formRows(form, "a", "from")) > maxFormRows {
		return ErrInvalid
	}
	l := s.localizer(c)
	p := parseAvailabilityForm(l, form)
	errs := p.parseErrs
	if len(errs) == 0 {
		if errs, err = s.availability().SaveSettings(c.Request().Context(), u.ID, p.settings); err != nil {
			return err
		}
		if len(errs) == 0 {
			return c.Redirect(http.StatusSeeOther, "/availability?saved=1")
		}
	} else {
		// Show every problem at once: what did parse is checked too.
		errs = append(errs, p.settings.Validate()...)
	}
	v := availabilityPage{Grid: p.grid, Exceptions: p.exceptions, Absences: p.absences}
	v.Errors = p.attach(l, errs, &v)
	return s.renderAvailability(c, u, http.StatusBadRequest, v)
}

// renderAvailability adds what every rendering of the page needs and
// renders it.
func (s *Server) renderAvailability(c echo.Context, u User, status int, v availabilityPage) error {
	ctx := c.Request().Context()
	l := s.localizer(c)
	a := s.availability()
	var err error
	if v.Colleagues, err = a.Colleagues(ctx, u.ID); err != nil {
		return err
	}
	now := s.store.now()
	contact, err := a.CaseworkerContact(ctx, u.ID, now)
	if err != nil {
		return err
	}
	v.Preview = newContactView(l, contact, now)
	v.OfficeHours = hoursText(l, contact.Office.Hours)
	for _, ch := range messaging.Channels() {
		v.Channels = append(v.Channels, gridChannel{Channel: ch, Name: l.T("availability_channel_"+string(ch), nil)})
	}
	// Room to add: two blank exception rows and one blank absence row,
	// numbered after the rows shown (which may have gaps after an error).
	next := 0
	for _, in := range v.Exceptions {
		next = max(next, in.Row+1)
	}
	for i := range 2 {
		v.Exceptions = append(v.Exceptions, exceptionInput{Row: next + i, Kind: "closed", Blank: true})
	}
	next = 0
	for _, in := range v.Absences {
		next = max(next, in.Row+1)
	}
	v.Absences = append(v.Absences, absenceInput{Row: next, Blank: true})
	return s.render(c, status, "availability.html", l.T("availability_title", nil), v)
}

// gridOf lays stored windows out as the week grids' inputs.
func gridOf(l *i18n.Localizer, windows map[messaging.Channel][]messaging.Window) []gridChannel {
	var grid []gridChannel
	for _, ch := range messaging.Channels() {
		spans := daySpans(l, windows[ch])
		g := gridChannel{Channel: ch, Name: l.T("availability_channel_"+string(ch), nil)}
		for _, wd := range weekOrder {
			g.Days = append(g.Days, gridDay{
				ID:    fmt.Sprintf("w-%s-%d", ch, wd),
				Name:  fmt.Sprintf("w.%s.%d", ch, wd),
				Label: upperFirst(l.T("format_weekday_"+weekdayKeys[wd], nil)),
				Value: spans[wd],
			})
		}
		grid = append(grid, g)
	}
	return grid
}

// upperFirst capitalises a weekday name for a label.
func upperFirst(s string) string {
	for i, r := range s {
		return strings.ToUpper(string(r)) + s[i+len(string(r)):]
	}
	return s
}

// hhmm writes a minute of the day as an <input type=time> value. 24:00 is
// not a valid value there, so the end of the day is left empty (an empty
// end means the end of the day).
func hhmm(minute int) string {
	if minute >= messaging.MinutesPerDay {
		return ""
	}
	return fmt.Sprintf("%02d:%02d", minute/60, minute%60)
}

func exceptionOf(row int, e messaging.Exception) exceptionInput {
	in := exceptionInput{Row: row, Date: e.Date.String(), Channel: string(e.Channel), Kind: "closed"}
	if e.Open {
		in.Kind = "open"
	}
	if e.StartMin != 0 || e.EndMin != messaging.MinutesPerDay {
		in.Start, in.End = hhmm(e.StartMin), hhmm(e.EndMin)
	}
	return in
}

func absenceOf(row int, a messaging.Absence) absenceInput {
	return absenceInput{Row: row, From: a.From.String(), To: a.To.String(), Substitute: a.SubstituteID}
}

// parsedForm is the availability form read into settings, with where each
// parsed item came from, so that field errors land on the right input.
type parsedForm struct {
	settings   messaging.Settings
	grid       []gridChannel
	exceptions []exceptionInput
	absences   []absenceInput
	parseErrs  []messaging.FieldError // Field is an input id
	// Where validation field names point: "chat.windows[3]" -> the grid
	// input of its weekday; "exceptions[1]" and "absences[0]" -> a row.
	windowInput map[string]string
	exceptionAt []int
	absenceAt   []int
}

// parseAvailabilityForm reads the posted form. Blank rows and rows marked
// for removal are skipped; what cannot be read becomes an error on its
// input (FieldError.Field is then the input's id).
func parseAvailabilityForm(l *i18n.Localizer, form url.Values) parsedForm {
	p := parsedForm{settings: messaging.Settings{Windows: map[messaging.Channel][]messaging.Window{}}, windowInput: map[string]string{}}
	for _, ch := range messaging.Channels() {
		g := gridChannel{Channel: ch, Name: l.T("availability_channel_"+string(ch), nil)}
		for _, wd := range weekOrder {
			d := gridDay{
				ID:    fmt.Sprintf("w-%s-%d", ch, wd),
				Name:  fmt.Sprintf("w.%s.%d", ch, wd),
				Label: upperFirst(l.T("format_weekday_"+weekdayKeys[wd], nil)),
			}
			d.Value = strings.TrimSpace(form.Get(d.Name))
			spans, id := parseSpans(d.Value)
			if id != "" {
				p.parseErrs = append(p.parseErrs, messaging.FieldError{Field: d.ID, MessageID: id})
			}
			for _, sp := range spans {
				p.windowInput[fmt.Sprintf("%s.windows[%d]", ch, len(p.settings.Windows[ch]))] = d.ID
				p.settings.Windows[ch] = append(p.settings.Windows[ch], messaging.Window{Weekday: wd, StartMin: sp[0], EndMin: sp[1]})
			}
			g.Days = append(g.Days, d)
		}
		p.grid = append(p.grid, g)
	}

	for _, row := range formRows(form, "x", "date") {
		pre := fmt.Sprintf("x.%d.", row)
		in := exceptionInput{
			Row: row, Date: strings.TrimSpace(form.Get(pre + "date")), Channel: form.Get(pre + "channel"),
			Kind: form.Get(pre + "kind"), Start: strings.TrimSpace(form.Get(pre + "start")), End: strings.TrimSpace(form.Get(pre + "end")),
		}
		if form.Get(pre+"remove") != "" || (in.Date == "" && in.Start == "" && in.End == "") {
			continue // removed, or a blank row left blank
		}
		p.exceptions = append(p.exceptions, in)
		e := messaging.Exception{Channel: messaging.Channel(in.Channel), Open: in.Kind == "open", EndMin: messaging.MinutesPerDay}
		ok := true
		var err error
		if e.Date, err = parseFormDate(in.Date); err != nil {
			p.parseErrs = append(p.parseErrs, messaging.FieldError{Field: in.id("date"), MessageID: messaging.AvailabilityDateInvalid})
			ok = false
		}
		if in.Kind != "open" && in.Kind != "closed" {
			p.parseErrs = append(p.parseErrs, messaging.FieldError{Field: in.id("kind"), MessageID: messaging.AvailabilityChannelInvalid})
			ok = false
		}
		if in.Start != "" {
			if e.StartMin, err = parseClock(in.Start); err != nil {
				p.parseErrs = append(p.parseErrs, messaging.FieldError{Field: in.id("start"), MessageID: clockErrID(err)})
				ok = false
			}
		}
		if in.End != "" {
			if e.EndMin, err = parseClock(in.End); err != nil {
				p.parseErrs = append(p.parseErrs, messaging.FieldError{Field: in.id("end"), MessageID: clockErrID(err)})
				ok = false
			}
		}
		if ok {
			p.exceptionAt = append(p.exceptionAt, len(p.exceptions)-1)
			p.settings.Exceptions = append(p.settings.Exceptions, e)
		}
	}

	for _, row := range formRows(form, "a", "from") {
		pre := fmt.Sprintf("a.%d.", row)
		in := absenceInput{Row: row, From: strings.TrimSpace(form.Get(pre + "from")), To: strings.TrimSpace(form.Get(pre + "to")),
			Substitute: form.Get(pre + "substitute")}
		if form.Get(pre+"remove") != "" || (in.From == "" && in.To == "") {
			continue
		}
		p.absences = append(p.absences, in)
		a := messaging.Absence{SubstituteID: in.Substitute}
		ok := true
		var err error
		if a.From, err = parseFormDate(in.From); err != nil {
			p.parseErrs = append(p.parseErrs, messaging.FieldError{Field: in.id("from"), MessageID: messaging.AvailabilityDateInvalid})
			ok = false
		}
		if a.To, err = parseFormDate(in.To); err != nil {
			p.parseErrs = append(p.parseErrs, messaging.FieldError{Field: in.id("to"), MessageID: messaging.AvailabilityDateInvalid})
			ok = false
		}
		if ok {
			p.absenceAt = append(p.absenceAt, len(p.absences)-1)
			p.settings.Absences = append(p.settings.Absences, a)
		}
	}
	return p
}

// formRows returns the row numbers of the form's rows named
// <prefix>.<row>.<field>, in order. Rows need
// not be numbered without gaps (a page shown again after an error keeps
// the numbers the rows had).
func formRows(form url.Values, prefix, field string) []int {
	var rows []int
	for key := range form {
		rest, ok := strings.CutPrefix(key, prefix+".")
		if !ok {
			continue
		}
		num, f, ok := strings.Cut(rest, ".")
		if row, err := strconv.Atoi(num); ok && f == field && err == nil && row >= 0 {
			rows = append(rows, row)
		}
	}
	slices.Sort(rows)
	return rows
}

// validationField matches the field names of messaging's FieldErrors:
// "chat.windows[2].end", "exceptions[0].date", "absences[1].substitute".
var validationField = regexp.MustCompile(`^(?:(\w+)\.windows|(exceptions)|(absences))\[(\d+)\]\.(\w+)$`)

// attach puts each error on its input (in the rows and grid of v) and
// returns the error summary, in the order the inputs appear on the page.
func (p parsedForm) attach(l *i18n.Localizer, errs []messaging.FieldError, v *availabilityPage) []formError {
	byID := map[string]string{} // input id -> message; the first error per input wins
	for _, e := range errs {
		id, msgID := p.inputOf(e), e.MessageID
		if id == "" {
			continue
		}
		if msgID == messaging.AvailabilityOverlap && strings.HasPrefix(id, "a-") {
			msgID = "availability_error_absence_overlap"
		}
		if _, dup := byID[id]; !dup {
			byID[id] = l.T(msgID, nil)
		}
	}
	var summary []formError
	add := func(id string, dst *string) {
		if m, ok := byID[id]; ok {
			*dst = m
			summary = append(summary, formError{ID: id, Message: m})
			delete(byID, id)
		}
	}
	for i := range v.Grid {
		for j := range v.Grid[i].Days {
			add(v.Grid[i].Days[j].ID, &v.Grid[i].Days[j].Error)
		}
	}
	for i := range v.Exceptions {
		in := &v.Exceptions[i]
		add(in.id("date"), &in.DateErr)
		add(in.id("channel"), &in.ChannelErr)
		add(in.id("kind"), &in.KindErr)
		add(in.id("start"), &in.StartErr)
		add(in.id("end"), &in.EndErr)
	}
	for i := range v.Absences {
		in := &v.Absences[i]
		add(in.id("from"), &in.FromErr)
		add(in.id("to"), &in.ToErr)
		add(in.id("substitute"), &in.SubErr)
	}
	return summary
}

// inputOf returns the id of the input a FieldError is about, or "".
func (p parsedForm) inputOf(e messaging.FieldError) string {
	m := validationField.FindStringSubmatch(e.Field)
	if m == nil {
		return e.Field // a parse error already names its input
	}
	i, _ := strconv.Atoi(m[4])
	field := m[5]
	switch {
	case m[1] != "":
		return p.windowInput[fmt.Sprintf("%s.windows[%d]", m[1], i)]
	case m[2] != "" && i < len(p.exceptionAt):
		in := p.exceptions[p.exceptionAt[i]]
		return in.id(field)
	case m[3] != "" && i < len(p.absenceAt):
		in := p.absences[p.absenceAt[i]]
		return in.id(field)
	}
	return ""
}

// spanSep splits one day's periods; rangeSep splits a period's two times.
var (
	spanSep  = regexp.MustCompile(`\s*[,;]\s*`)
	rangeSep = regexp.MustCompile(`^(.+?)\s*[-–—]\s*(.+)$`)
)

// parseSpans reads one day of a week grid, "08.00–11.30, 12.00–15.30",
// into [start, end] minute pairs. An empty value is a closed day. The
// message ID of the first problem is returned with whatever parsed.
func parseSpans(v string) ([][2]int, string) {
	if v == "" {
		return nil, ""
	}
	var out [][2]int
	for _, part := range spanSep.Split(v, -1) {
		m := rangeSep.FindStringSubmatch(part)
		if m == nil {
			return nil, "availability_error_format"
		}
		start, err1 := parseClock(m[1])
		end, err2 := parseClock(m[2])
		if err := firstErr(err1, err2); err != nil {
			return nil, clockErrID(err)
		}
		out = append(out, [2]int{start, end})
	}
	return out, ""
}

func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// errClockFormat and errClockRange tell a time that cannot be read from
// one that does not exist on any clock (25.00, 12.75).
var (
	errClockFormat = fmt.Errorf("%w: time format", ErrInvalid)
	errClockRange  = fmt.Errorf("%w: time out of range", ErrInvalid)
)

func clockErrID(err error) string {
	if err == errClockRange {
		return messaging.AvailabilityTimeOutOfRange
	}
	return "availability_error_format"
}

var clockRE = regexp.MustCompile(`^(?:kl\.?\s*)?(\d{1,2})(?:[:.](\d{2}))?$`)

// parseClock reads a time of day, "8", "08.00", "8:30" or "24:00", as
// minutes after midnight.
func parseClock(s string) (int, error) {
	m := clockRE.FindStringSubmatch(strings.ToLower(strings.TrimSpace(s)))
	if m == nil {
		return 0, errClockFormat
	}
	h, _ := strconv.Atoi(m[1])
	mm := 0
	if m[2] != "" {
		mm, _ = strconv.Atoi(m[2])
	}
	if h > 24 || mm > 59 || (h == 24 && mm != 0) {
		return 0, errClockRange
	}
	return h*60 + mm, nil
}

var dottedDate = regexp.MustCompile(`^(\d{1,2})\.(\d{1,2})\.(\d{4})$`)

// parseFormDate reads a date as a date input sends it (2026-08-14) or as
// people write it (14.08.2026), refusing dates that do not exist.
func parseFormDate(s string) (messaging.Date, error) {
	if m := dottedDate.FindStringSubmatch(s); m != nil {
		d, _ := strconv.Atoi(m[1])
		mo, _ := strconv.Atoi(m[2])
		y, _ := strconv.Atoi(m[3])
		date := messaging.Date{Year: y, Month: time.Month(mo), Day: d}
		if !date.Valid() {
			return messaging.Date{}, fmt.Errorf("%w: date %q does not exist", ErrInvalid, s)
		}
		return date, nil
	}
	return messaging.ParseDate(s)
}

// --- The team lead's list ------------------------------------------------------

// waitingRow is one conversation in which a family has waited too long.
type waitingRow struct {
	ID, Title, Caseworker string
	Since, Due            time.Time
	Waited                string
}

// handleWaiting serves GET /waiting: for team leads only, the conversations
// of their team in which a family has waited longer than the answer time
// (Options.WaitingDays working days), the longest wait first. Everyone
// else gets a 404.
func (s *Server) handleWaiting(c echo.Context) error {
	u, _ := userFrom(c)
	if u.Kind != KindTeamLead {
		return ErrNotFound
	}
	// The page's checks, its office and contacts and its footer read the
	// memo's versions once, and take what is kept under them.
	ctx := withPageTag(c.Request().Context())
	c.SetRequest(c.Request().WithContext(ctx))
	convs, err := s.store.ChatAccess().Conversations(ctx, s.participant(c))
	if err != nil {
		return err
	}
	ids := make([]string, len(convs))
	for i, cv := range convs {
		ids[i] = cv.ID
	}
	a := s.availability()
	since, err := a.WaitingSince(ctx, ids)
	if err != nil {
		return err
	}
	tag, err := s.store.memoTag(ctx)
	if err != nil {
		return err
	}
	officeID, err := a.UserOffice(ctx, u.ID)
	if err != nil {
		return err
	}
	office, err := s.store.officeSettings(ctx, tag, officeID)
	if err != nil {
		return err
	}
	days := s.opt.WaitingDays
	if days <= 0 {
		days = defaultWaitingDays
	}
	l := s.localizer(c)
	now := s.store.now()
	var rows []waitingRow
	for _, cv := range convs {
		at, ok := since[cv.ID]
		if !ok {
			continue
		}
		due := office.Schedule().AnswerBy(at, days)
		if due.IsZero() || !now.After(due) {
			continue
		}
		contact, err := s.store.caseContact(ctx, cv.CaseID)
		if err != nil {
			return err
		}
		rows = append(rows, waitingRow{ID: cv.ID, Title: cv.Title, Caseworker: contact.Caseworker.Name, Since: at, Due: due,
			Waited: l.Duration(now.Sub(at))})
	}
	slices.SortStableFunc(rows, func(a, b waitingRow) int { return a.Since.Compare(b.Since) })
	return s.render(c, http.StatusOK, "waiting.html", l.T("waiting_title", nil), map[string]any{
		"Rows": rows, "Days": days,
	})
}
