package messaging_test

import (
	"context"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"familieportal/messaging"
)

// avWorld is the test world with the staff placed in the office, as the
// substitute rules need.
func avWorld(t *testing.T) (*world, *messaging.AvailabilityStore) {
	t.Helper()
	w := newWorld(t)
	w.db.MustExec(`UPDATE users SET office_id = 'o1' WHERE kind <> 'citizen'`)
	return w, messaging.NewAvailabilityStore(w.db)
}

func TestAvailabilityStore_SaveSettings(t *testing.T) {
	w, a := avWorld(t)
	ctx := context.Background()
	kari := w.ids["kari"]
	valid := messaging.Settings{
		Windows: map[messaging.Channel][]messaging.Window{
			messaging.ChannelChat: {
				{Weekday: time.Monday, StartMin: hm(8, 0), EndMin: hm(11, 30)},
				{Weekday: time.Monday, StartMin: hm(12, 0), EndMin: hm(15, 30)},
			},
			messaging.ChannelPhone: {{Weekday: time.Tuesday, StartMin: hm(9, 0), EndMin: hm(11, 0)}},
		},
		Exceptions: []messaging.Exception{{Date: date(2026, 5, 15), Channel: messaging.ChannelChat, Open: true, StartMin: hm(10, 0), EndMin: hm(12, 0)}},
		Absences:   []messaging.Absence{{From: date(2026, 7, 1), To: date(2026, 7, 21), SubstituteID: w.ids["ola"]}},
	}
	if errs, err := a.SaveSettings(ctx, kari, valid); err != nil || len(errs) > 0 {
		t.Fatalf("SaveSettings(valid) = %v, %v", errs, err)
	}
	got, err := a.Settings(ctx, kari)
	if err != nil || !reflect.DeepEqual(got, valid) {
		t.Fatalf("Settings = %+v, %v; want %+v", got, err, valid)
	}

	tests := []struct {
		name   string
		change func(*messaging.Settings)
		field  string
		msgID  string
	}{
		{"end before start", func(s *messaging.Settings) {
			s.Windows[messaging.ChannelVideo] = []messaging.Window{{Weekday: time.Friday, StartMin: hm(15, 0), EndMin: hm(9, 0)}}
		}, "video.windows[0].end", messaging.AvailabilityEndBeforeStart},
		{"overlap", func(s *messaging.Settings) {
			s.Windows[messaging.ChannelChat] = append(s.Windows[messaging.ChannelChat], messaging.Window{Weekday: time.Monday, StartMin: hm(11, 0), EndMin: hm(12, 30)})
		}, "chat.windows[2].start", messaging.AvailabilityOverlap},
		{"skipped hour", func(s *messaging.Settings) {
			s.Exceptions = []messaging.Exception{{Date: date(2026, 3, 29), StartMin: hm(2, 30), EndMin: hm(5, 0)}}
		}, "exceptions[0].start", messaging.AvailabilityTimeDoesNotExist},
		{"date that does not exist", func(s *messaging.Settings) {
			s.Absences = []messaging.Absence{{From: date(2026, 2, 30), To: date(2026, 3, 2)}}
		}, "absences[0].from", messaging.AvailabilityDateInvalid},
		{"a citizen as substitute", func(s *messaging.Settings) {
			s.Absences = []messaging.Absence{{From: date(2026, 8, 1), To: date(2026, 8, 2), SubstituteID: w.ids["sara"]}}
		}, "absences[0].substitute", messaging.AvailabilitySubstituteInvalid},
		{"oneself as substitute", func(s *messaging.Settings) {
			s.Absences = []messaging.Absence{{From: date(2026, 8, 1), To: date(2026, 8, 2), SubstituteID: kari}}
		}, "absences[0].substitute", messaging.AvailabilitySubstituteInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bad := messaging.Settings{Windows: map[messaging.Channel][]messaging.Window{}}
			for ch, ws := range valid.Windows {
				bad.Windows[ch] = append([]messaging.Window(nil), ws...)
			}
			bad.Exceptions = append(bad.Exceptions, valid.Exceptions...)
			bad.Absences = append(bad.Absences, valid.Absences...)
			bad.Windows[messaging.ChannelMeeting] = []messaging.Window{{Weekday: time.Thursday, StartMin: hm(9, 0), EndMin: hm(10, 0)}}
			tt.change(&bad)
			errs, err := a.SaveSettings(ctx, kari, bad)
			if err != nil {
				t.Fatal(err)
			}
			want := messaging.FieldError{Field: tt.field, MessageID: tt.msgID}
			found := false
			for _, e := range errs {
				found = found || e == want
			}
			if !found {
				t.Errorf("SaveSettings errors = %v, want %v among them", errs, want)
			}
			if got, _ := a.Settings(ctx, kari); !reflect.DeepEqual(got, valid) {
				t.Errorf("invalid settings changed what is stored: %+v", got)
			}
		})
	}
}

func TestAvailabilityStore_OfficeSettings(t *testing.T) {
	_, a := avWorld(t)
	ctx := context.Background()
	got, err := a.OfficeSettings(ctx, "o1")
	if err != nil || !reflect.DeepEqual(got, messaging.DefaultOfficeSettings()) {
		t.Fatalf("OfficeSettings of an office with none stored = %+v, %v; want the defaults", got, err)
	}
	custom := messaging.OfficeSettings{
		Hours: []messaging.Window{{Weekday: time.Monday, StartMin: hm(9, 0), EndMin: hm(15, 0)}},
		Calendar: messaging.Calendar{
			ChristmasEve: messaging.HalfDay{Shortened: true, CloseMin: hm(12, 0)},
			NewYearsEve:  messaging.HalfDay{Shortened: true, CloseMin: 0},
			ClosureDays:  []messaging.Date{date(2026, 9, 4)},
		},
		VaktEveningMin: hm(16, 0), VaktMorningMin: hm(7, 30), AnswerDays: 3,
	}
	if errs, err := a.SaveOfficeSettings(ctx, "o1", custom); err != nil || len(errs) > 0 {
		t.Fatalf("SaveOfficeSettings = %v, %v", errs, err)
	}
	if got, err := a.OfficeSettings(ctx, "o1"); err != nil || !reflect.DeepEqual(got, custom) {
		t.Errorf("OfficeSettings = %+v, %v; want %+v", got, err, custom)
	}
	bad := custom
	bad.AnswerDays = 0
	bad.Calendar.ClosureDays = []messaging.Date{date(2026, 9, 31)}
	errs, err := a.SaveOfficeSettings(ctx, "o1", bad)
	if err != nil || len(errs) != 2 {
		t.Errorf("SaveOfficeSettings(bad) = %v, %v; want two field errors", errs, err)
	}
	if got, _ := a.OfficeSettings(ctx, "o1"); !reflect.DeepEqual(got, custom) {
		t.Errorf("invalid office settings changed what is stored: %+v", got)
	}
}

func TestAvailabilityStore_CaseContact(t *testing.T) {
	w, a := avWorld(t)
	ctx := context.Background()
	now := oslo(t, 2026, 7, 8, 10, 0) // a Wednesday
	save := func(who string, st messaging.Settings) {
		t.Helper()
		if errs, err := a.SaveSettings(ctx, w.ids[who], st); err != nil || len(errs) > 0 {
			t.Fatalf("SaveSettings(%s) = %v, %v", who, errs, err)
		}
	}
	c, err := a.CaseContact(ctx, "case-emma", now)
	if err != nil {
		t.Fatal(err)
	}
	if p, _ := c.Responder(); c.Away || p.ID != w.ids["kari"] || c.Sender() != w.ids["kari"] || c.EmergencyPhone != "21999999" {
		t.Errorf("present: %+v; want Kari answering", c)
	}

	save("kari", messaging.Settings{Absences: []messaging.Absence{{From: date(2026, 7, 6), To: date(2026, 7, 10), SubstituteID: w.ids["ola"]},
		{From: date(2026, 7, 11), To: date(2026, 7, 24)}}})
	c, err = a.CaseContact(ctx, "case-emma", now)
	if err != nil {
		t.Fatal(err)
	}
	if p, _ := c.Responder(); !c.Away || p.ID != w.ids["ola"] || c.Substitute.Name != "Ola Berg" || c.Sender() != w.ids["ola"] ||
		c.Absence.To != date(2026, 7, 24) {
		t.Errorf("away with Ola: %+v; want Ola answering, away until 24 July", c)
	}

	// The second absence has no substitute: the team answers on the
	// office's hours, and replies go out in Kari's name.
	c, err = a.CaseContact(ctx, "case-emma", oslo(t, 2026, 7, 15, 10, 0))
	if err != nil {
		t.Fatal(err)
	}
	p, sched := c.Responder()
	if !c.Away || p.ID != "" || c.Sender() != w.ids["kari"] {
		t.Errorf("away, team answers: %+v", c)
	}
	if open, _ := sched.OpenAt(messaging.ChannelChat, oslo(t, 2026, 7, 15, 10, 0)); !open {
		t.Error("the team's chat is not open at 10.00 on a Wednesday (office hours)")
	}
	if _, err := a.CaseContact(ctx, "no-such-case", now); err != messaging.ErrNotFound {
		t.Errorf("CaseContact(unknown) = %v, want ErrNotFound", err)
	}
}

// fakePoster records the drafts an AutoReplier posts.
type fakePoster struct {
	mu     sync.Mutex
	drafts []messaging.Draft
}

func (f *fakePoster) Post(_ context.Context, d messaging.Draft) (messaging.Message, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.drafts = append(f.drafts, d)
	return messaging.Message{ConversationID: d.ConversationID, Kind: d.Kind}, nil
}

func TestAutoReplier_MessageStored(t *testing.T) {
	w, a := avWorld(t)
	ctx := context.Background()
	var chat []messaging.Window
	for wd := time.Monday; wd <= time.Friday; wd++ {
		chat = append(chat, messaging.Window{Weekday: wd, StartMin: hm(8, 0), EndMin: hm(15, 30)})
	}
	if errs, err := a.SaveSettings(ctx, w.ids["kari"], messaging.Settings{Windows: map[messaging.Channel][]messaging.Window{messaging.ChannelChat: chat}}); err != nil || len(errs) > 0 {
		t.Fatal(errs, err)
	}
	w.db.MustExec(w.db.Rebind(`UPDATE users SET lang = 'en' WHERE id = ?`), w.ids["sara"])
	var now time.Time
	var told []messaging.AutoReply
	r := messaging.NewAutoReplier(a, func(ar messaging.AutoReply) string {
		told = append(told, ar)
		return "closed"
	}, func() time.Time { return now }, nil)
	p := &fakePoster{}
	r.Attach(p)
	msg := messaging.Message{ConversationID: w.conv["emma-sara"], SenderID: w.ids["sara"], Kind: messaging.KindText}

	for _, tt := range []struct {
		name  string
		at    time.Time
		role  messaging.Role
		kind  messaging.MessageKind
		posts bool
	}{
		{"family on Friday evening", oslo(t, 2026, 3, 6, 16, 0), messaging.RoleCitizen, messaging.KindText, true},
		{"family on Saturday, same period", oslo(t, 2026, 3, 7, 10, 0), messaging.RoleCitizen, messaging.KindText, true},
		{"staff writing", oslo(t, 2026, 3, 7, 11, 0), messaging.RoleCaseworker, messaging.KindText, false},
		{"an automatic message", oslo(t, 2026, 3, 7, 11, 0), messaging.RoleCitizen, messaging.KindAutoReply, false},
		{"family while open", oslo(t, 2026, 3, 9, 10, 0), messaging.RoleCitizen, messaging.KindText, false},
		{"family on Monday evening", oslo(t, 2026, 3, 9, 16, 0), messaging.RoleCitizen, messaging.KindText, true},
	} {
		now = tt.at
		before := len(p.drafts)
		m := msg
		m.Kind = tt.kind
		if err := r.MessageStored(ctx, m, tt.role); err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if posted := len(p.drafts) > before; posted != tt.posts {
			t.Errorf("%s: posted = %v, want %v", tt.name, posted, tt.posts)
		}
	}
	if len(p.drafts) != 3 {
		t.Fatalf("drafts = %+v, want 3", p.drafts)
	}
	// Nothing was really stored (the poster is fake), so the Saturday
	// message tried again, with the Friday reply's client id: the store
	// would have answered with the first reply.
	d0, d1, d2 := p.drafts[0], p.drafts[1], p.drafts[2]
	if d0.ClientID != d1.ClientID || d0.ClientID == d2.ClientID {
		t.Errorf("client ids %q, %q, %q: want the first two equal (one closed period) and the third different", d0.ClientID, d1.ClientID, d2.ClientID)
	}
	if d0.Kind != messaging.KindAutoReply || d0.SenderID != w.ids["kari"] || d0.Body != "closed" {
		t.Errorf("draft = %+v, want an auto_reply from Kari", d0)
	}
	want := messaging.AutoReply{
		Lang: "en", Now: oslo(t, 2026, 3, 6, 16, 0), Caseworker: "Kari Nordmann", Responder: "Kari Nordmann",
		NextOpening: oslo(t, 2026, 3, 9, 8, 0), OfficePhone: "21000000", EmergencyPhone: "21999999",
		VaktOpen: true, VaktUntil: oslo(t, 2026, 3, 9, 8, 0),
	}
	got := told[0]
	if !got.Now.Equal(want.Now) || !got.NextOpening.Equal(want.NextOpening) || !got.VaktUntil.Equal(want.VaktUntil) {
		t.Errorf("times told = %v, %v, %v; want %v, %v, %v", got.Now, got.NextOpening, got.VaktUntil, want.Now, want.NextOpening, want.VaktUntil)
	}
	got.Now, got.NextOpening, got.VaktUntil = want.Now, want.NextOpening, want.VaktUntil
	if !reflect.DeepEqual(got, want) {
		t.Errorf("told %+v, want %+v", got, want)
	}

	// A staff message stored in the period stops further replies.
	now = oslo(t, 2026, 3, 9, 17, 0)
	if _, _, err := w.store.WithClock(func() time.Time { return oslo(t, 2026, 3, 9, 16, 30) }).InsertMessage(ctx,
		draft(w, "kari", "emma-sara", "late-answer", "Jeg svarer likevel.")); err != nil {
		t.Fatal(err)
	}
	if err := r.MessageStored(ctx, msg, messaging.RoleCitizen); err != nil || len(p.drafts) != 3 {
		t.Errorf("after a staff answer in the period: %d drafts (err %v), want still 3", len(p.drafts), err)
	}
}

func TestAvailabilityStore_WaitingSince(t *testing.T) {
	w, a := avWorld(t)
	ctx := context.Background()
	at := func(d int) func() time.Time {
		return func() time.Time { return time.Date(2026, 3, d, 9, 0, 0, 0, time.UTC) }
	}
	put := func(day int, who, conv, kind string) {
		t.Helper()
		d := draft(w, who, conv, fmt.Sprintf("%s-%s-%s-%d", who, conv, kind, day), "…")
		d.Kind = messaging.MessageKind(kind)
		if _, _, err := w.store.WithClock(at(day)).InsertMessage(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	put(1, "sara", "emma-sara", "text")
	put(2, "kari", "emma-sara", "auto_reply") // not an answer
	put(3, "sara", "emma-sara", "text")
	put(1, "jonas", "emma-jonas", "text")
	put(2, "kari", "emma-jonas", "text") // answered
	put(4, "noah", "noah-noah", "text")
	got, err := a.WaitingSince(ctx, []string{w.conv["emma-sara"], w.conv["emma-jonas"], w.conv["noah-noah"], w.conv["noah-leila"]})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]time.Time{w.conv["emma-sara"]: at(1)(), w.conv["noah-noah"]: at(4)()}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("WaitingSince = %v, want %v", got, want)
	}
}
