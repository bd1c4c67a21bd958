package i18n

import (
	"sync"
	"testing"
	"time"
	_ "time/tzdata" // Europe/Oslo must not depend on the host; cmd/portal imports it too
)

// testNow is Thursday 3 December 2026, 14:30 in Oslo (CET, UTC+1).
var testNow = time.Date(2026, 12, 3, 13, 30, 0, 0, time.UTC)

func TestLocalizer_formats(t *testing.T) {
	b := newTestBundle(t)
	newYork, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	winter := testNow                                       // 14:30 CET
	summer := time.Date(2026, 7, 1, 12, 30, 0, 0, time.UTC) // 14:30 CEST, same wall clock
	tests := []struct {
		name, lang string
		f          func(*Localizer, time.Time) string
		at         time.Time
		want       string
	}{
		{"winter date", "nb", (*Localizer).Date, winter, "3. desember 2026"},
		{"winter date", "nn", (*Localizer).Date, winter, "3. desember 2026"},
		{"winter date", "en", (*Localizer).Date, winter, "3 December 2026"},
		{"winter time", "nb", (*Localizer).Time, winter, "kl. 14.30"},
		{"winter time", "nn", (*Localizer).Time, winter, "kl. 14.30"},
		{"winter time", "en", (*Localizer).Time, winter, "14:30"},
		{"winter date and time", "nb", (*Localizer).DateTime, winter, "3. desember 2026 kl. 14.30"},
		{"winter date and time", "nn", (*Localizer).DateTime, winter, "3. desember 2026 kl. 14.30"},
		{"winter date and time", "en", (*Localizer).DateTime, winter, "3 December 2026, 14:30"},
		{"summer is UTC+2", "nb", (*Localizer).DateTime, summer, "1. juli 2026 kl. 14.30"},
		{"summer is UTC+2", "nn", (*Localizer).DateTime, summer, "1. juli 2026 kl. 14.30"},
		{"summer is UTC+2", "en", (*Localizer).DateTime, summer, "1 July 2026, 14:30"},
		{"the input's zone does not matter", "nb", (*Localizer).DateTime, winter.In(newYork), "3. desember 2026 kl. 14.30"},
		{"winter midnight is the next day in Oslo", "nb", (*Localizer).DateTime,
			time.Date(2026, 12, 3, 23, 0, 0, 0, time.UTC), "4. desember 2026 kl. 00.00"},
		{"winter minute before midnight", "en", (*Localizer).DateTime,
			time.Date(2026, 12, 3, 22, 59, 0, 0, time.UTC), "3 December 2026, 23:59"},
		{"summer midnight is the next day in Oslo", "nn", (*Localizer).DateTime,
			time.Date(2026, 6, 30, 22, 0, 0, 0, time.UTC), "1. juli 2026 kl. 00.00"},
		{"summer minute before midnight", "nb", (*Localizer).DateTime,
			time.Date(2026, 6, 30, 21, 59, 0, 0, time.UTC), "30. juni 2026 kl. 23.59"},
		{"new year in Oslo, not yet in UTC", "en", (*Localizer).Date,
			time.Date(2026, 12, 31, 23, 30, 0, 0, time.UTC), "1 January 2027"},
		{"morning has a leading zero", "nb", (*Localizer).Time,
			time.Date(2026, 12, 3, 7, 5, 0, 0, time.UTC), "kl. 08.05"},
		{"morning has a leading zero", "en", (*Localizer).Time,
			time.Date(2026, 12, 3, 7, 5, 0, 0, time.UTC), "08:05"},
		{"short date", "nb", (*Localizer).ShortDate, winter, "3. des."},
		{"short date", "nn", (*Localizer).ShortDate, summer, "1. jul."},
		{"short date", "en", (*Localizer).ShortDate, winter, "3 Dec"},
		{"weekday", "nb", (*Localizer).Weekday, winter, "torsdag"},
		{"weekday", "nn", (*Localizer).Weekday, time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC), "måndag"},
		{"weekday", "en", (*Localizer).Weekday, time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC), "Monday"},
		{"weekday after midnight in Oslo", "nn", (*Localizer).Weekday,
			time.Date(2026, 12, 4, 23, 30, 0, 0, time.UTC), "laurdag"},
		{"zero time", "nb", (*Localizer).DateTime, time.Time{}, ""},
		{"zero time", "en", (*Localizer).Date, time.Time{}, ""},
		{"zero time", "nn", (*Localizer).ShortDate, time.Time{}, ""},
		{"zero time", "nn", (*Localizer).Time, time.Time{}, ""},
		{"zero time", "en", (*Localizer).Weekday, time.Time{}, ""},
		{"zero time", "nb", func(l *Localizer, t time.Time) string { return l.Day(t, testNow) }, time.Time{}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.lang+" "+tt.name, func(t *testing.T) {
			for range 2 { // the second from what Date and Time keep
				if got := tt.f(b.Localizer(tt.lang), tt.at); got != tt.want {
					t.Errorf("%s(%s) = %q, want %q", tt.lang, tt.at.Format(time.RFC3339), got, tt.want)
				}
			}
		})
	}
}

func TestLocalizer_Weekday_allNames(t *testing.T) {
	b := newTestBundle(t)
	want := map[string][7]string{ // Monday first
		"nb": {"mandag", "tirsdag", "onsdag", "torsdag", "fredag", "lørdag", "søndag"},
		"nn": {"måndag", "tysdag", "onsdag", "torsdag", "fredag", "laurdag", "sundag"},
		"en": {"Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"},
	}
	monday := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	for lang, names := range want {
		l := b.Localizer(lang)
		for i, name := range names {
			if got := l.Weekday(monday.AddDate(0, 0, i)); got != name {
				t.Errorf("%s: Weekday(day %d) = %q, want %q", lang, i, got, name)
			}
		}
	}
	nbMonths := [12]string{"januar", "februar", "mars", "april", "mai", "juni", "juli", "august", "september", "oktober", "november", "desember"}
	for _, lang := range []string{"nb", "nn"} {
		for i, name := range nbMonths {
			if got := b.Localizer(lang).T(monthIDs[i+1], nil); got != name {
				t.Errorf("%s: month %d = %q, want %q", lang, i+1, got, name)
			}
		}
	}
}

func TestLocalizer_Day(t *testing.T) {
	b := newTestBundle(t)
	oslo := b.loc
	at := func(y int, m time.Month, d, h, min int) time.Time { return time.Date(y, m, d, h, min, 0, 0, oslo) }
	now := at(2026, 12, 1, 10, 0) // Tuesday
	tests := []struct {
		name   string
		t, now time.Time
		nb, nn string
		en     string
	}{
		{"today", at(2026, 12, 1, 9, 0), now, "I dag", "I dag", "Today"},
		{"today, just after midnight", at(2026, 12, 1, 0, 0), now, "I dag", "I dag", "Today"},
		{"today, in UTC still yesterday", time.Date(2026, 11, 30, 23, 30, 0, 0, time.UTC), now, "I dag", "I dag", "Today"},
		{"later today (clock skew)", at(2026, 12, 1, 23, 59), now, "I dag", "I dag", "Today"},
		{"yesterday, just before midnight", at(2026, 11, 30, 23, 59), now, "I går", "I går", "Yesterday"},
		{"yesterday, at midnight", at(2026, 11, 30, 0, 0), now, "I går", "I går", "Yesterday"},
		{"two days ago", at(2026, 11, 29, 23, 59), now, "Søndag 29. november", "Sundag 29. november", "Sunday 29 November"},
		{"a week ago", at(2026, 11, 24, 12, 0), now, "Tirsdag 24. november", "Tysdag 24. november", "Tuesday 24 November"},
		{"Monday 30 November from Wednesday", at(2026, 11, 30, 8, 0), at(2026, 12, 2, 8, 0), "Mandag 30. november", "Måndag 30. november", "Monday 30 November"},
		{"yesterday across the new year", at(2026, 12, 31, 23, 50), at(2027, 1, 1, 0, 10), "I går", "I går", "Yesterday"},
		{"other year", at(2026, 12, 30, 12, 0), at(2027, 1, 1, 0, 10), "Onsdag 30. desember 2026", "Onsdag 30. desember 2026", "Wednesday 30 December 2026"},
		{"other year, now given in UTC", at(2025, 11, 30, 12, 0), time.Date(2026, 12, 31, 23, 30, 0, 0, time.UTC), "Søndag 30. november 2025", "Sundag 30. november 2025", "Sunday 30 November 2025"},
		{"yesterday was the day summer time began", at(2026, 3, 29, 12, 0), at(2026, 3, 30, 0, 30), "I går", "I går", "Yesterday"},
		{"yesterday, on the day summer time began", at(2026, 3, 28, 23, 30), at(2026, 3, 29, 10, 0), "I går", "I går", "Yesterday"},
		{"yesterday, the day after winter time began", at(2026, 10, 25, 0, 30), at(2026, 10, 26, 0, 30), "I går", "I går", "Yesterday"},
		{"first of the month, yesterday was the last", at(2026, 2, 28, 18, 0), at(2026, 3, 1, 8, 0), "I går", "I går", "Yesterday"},
	}
	for pass := range 2 { // the second from what Day keeps
		for _, tt := range tests {
			for lang, want := range map[string]string{"nb": tt.nb, "nn": tt.nn, "en": tt.en} {
				if got := b.Localizer(lang).Day(tt.t, tt.now); got != want {
					t.Errorf("pass %d: %s: %s: Day(%s, %s) = %q, want %q", pass, lang, tt.name,
						tt.t.Format(time.RFC3339), tt.now.Format(time.RFC3339), got, want)
				}
			}
		}
	}
}

func TestLocalizer_Duration(t *testing.T) {
	b := newTestBundle(t)
	tests := []struct {
		d          time.Duration
		nb, nn, en string
	}{
		{-time.Minute, "0 minutter", "0 minutt", "0 minutes"},
		{30 * time.Second, "0 minutter", "0 minutt", "0 minutes"},
		{time.Minute, "1 minutt", "1 minutt", "1 minute"},
		{59 * time.Minute, "59 minutter", "59 minutt", "59 minutes"},
		{time.Hour, "1 time", "1 time", "1 hour"},
		{23*time.Hour + 59*time.Minute, "23 timer", "23 timar", "23 hours"},
		{24 * time.Hour, "1 dag", "1 dag", "1 day"},
		{50 * time.Hour, "2 dager", "2 dagar", "2 days"},
	}
	for _, tt := range tests {
		for lang, want := range map[string]string{"nb": tt.nb, "nn": tt.nn, "en": tt.en} {
			if got := b.Localizer(lang).Duration(tt.d); got != want {
				t.Errorf("%s: Duration(%s) = %q, want %q", lang, tt.d, got, want)
			}
		}
	}
}

func TestUpperFirst(t *testing.T) {
	for in, want := range map[string]string{"": "", "mandag": "Mandag", "øst": "Øst", "Monday": "Monday", "3. mai": "3. mai"} {
		if got := upperFirst(in); got != want {
			t.Errorf("upperFirst(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestLocalizer_kept pins what Date, Day and Time keep: Date and Day up to
// dateMemoMax answers between them, then none but the same answers made
// afresh; Time every minute of the day, with no bound.
func TestLocalizer_kept(t *testing.T) {
	b := newTestBundle(t)
	l := b.Localizer("nb")
	keeps := func(m *sync.Map, k any) bool { _, ok := m.Load(k); return ok }
	monday := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	sunday := monday.AddDate(0, 0, -1)

	if got, want := l.Date(monday), "30. november 2026"; got != want {
		t.Errorf("Date(%s) = %q, want %q", monday.Format(time.RFC3339), got, want)
	}
	if !keeps(&b.dates, dateKey{"nb", 2026, time.November, 30}) || b.nDates.Load() != 1 {
		t.Errorf("below the bound: Date kept nothing, or counted %d, want 1", b.nDates.Load())
	}

	b.nDates.Store(dateMemoMax) // the bound is reached
	for range 2 {
		if got, want := l.Date(sunday), "29. november 2026"; got != want {
			t.Errorf("at the bound: Date(%s) = %q, want %q", sunday.Format(time.RFC3339), got, want)
		}
		if got, want := l.Day(sunday, testNow), "Søndag 29. november"; got != want {
			t.Errorf("at the bound: Day(%s) = %q, want %q", sunday.Format(time.RFC3339), got, want)
		}
		if got, want := l.Time(sunday), "kl. 13.00"; got != want {
			t.Errorf("at the bound: Time(%s) = %q, want %q", sunday.Format(time.RFC3339), got, want)
		}
	}
	if keeps(&b.dates, dateKey{"nb", 2026, time.November, 29}) {
		t.Error("at the bound: Date kept a new day")
	}
	if keeps(&b.days, dayKey{dateKey{"nb", 2026, time.November, 29}, "format_day"}) {
		t.Error("at the bound: Day kept a new day")
	}
	if !keeps(&b.clock, clockKey{"nb", 13 * 60}) {
		t.Error("Time did not keep a minute of the day, though it has no bound")
	}
	if got, want := l.Date(monday), "30. november 2026"; got != want {
		t.Errorf("at the bound: kept Date(%s) = %q, want %q", monday.Format(time.RFC3339), got, want)
	}
}

// TestLocalizer_keptCounts: N keeps its answers without data by language,
// ID and count, each form right, up to the bound; with data, or past the
// bound, it makes them afresh, and they are the same.
func TestLocalizer_keptCounts(t *testing.T) {
	b := newTestBundle(t)
	en := b.Localizer("en")
	keeps := func(k countKey) bool { _, ok := b.counted.Load(k); return ok }
	for range 2 {
		if got, want := en.N("unread_messages", 1, nil), "1 unread message"; got != want {
			t.Errorf("N(1) = %q, want %q", got, want)
		}
		if got, want := en.N("unread_messages", 3, nil), "3 unread messages"; got != want {
			t.Errorf("N(3) = %q, want %q", got, want)
		}
	}
	if !keeps(countKey{"en", "unread_messages", 1}) || !keeps(countKey{"en", "unread_messages", 3}) || b.nCounted.Load() != 2 {
		t.Errorf("N kept the wrong answers: counted %d, want 2", b.nCounted.Load())
	}
	if got, want := b.Localizer("nb").N("unread_messages", 3, nil), b.Localizer("nb").count("unread_messages", 3, nil); got != want || got == en.N("unread_messages", 3, nil) {
		t.Errorf("nb N(3) = %q, want %q, not the English", got, want)
	}
	en.N("no_such_message", 2, nil)
	if keeps(countKey{"en", "no_such_message", 2}) {
		t.Error("N kept an ID the catalog does not have")
	}
	b.nCounted.Store(dateMemoMax)
	if got, want := en.N("unread_messages", 7, nil), "7 unread messages"; got != want || keeps(countKey{"en", "unread_messages", 7}) {
		t.Errorf("at the bound: N(7) = %q (kept %v), want %q, not kept", got, keeps(countKey{"en", "unread_messages", 7}), want)
	}
}

// TestLocalizer_keptConcurrent gives the race detector Date, Day and Time
// from many goroutines, across the bound: some answers are kept while
// others are made afresh.
func TestLocalizer_keptConcurrent(t *testing.T) {
	b := newTestBundle(t)
	b.nDates.Store(dateMemoMax - 40)
	first := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			l := b.Localizer(Supported()[i%3])
			for j := range 60 {
				at := first.AddDate(0, 0, j).Add(time.Duration(i) * time.Minute)
				if l.Date(at) == "" || l.Day(at, testNow) == "" || l.Time(at) == "" {
					t.Errorf("%s: an empty answer for %s", l.Lang, at.Format(time.RFC3339))
				}
			}
		})
	}
	wg.Wait()
	if got, want := b.Localizer("en").Day(first, testNow), "Thursday 1 January"; got != want {
		t.Errorf("Day(%s) = %q, want %q", first.Format(time.RFC3339), got, want)
	}
}
