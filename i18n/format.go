package i18n

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"
)

// Dates and times are shown in Europe/Oslo whatever the server's zone. Every
// word and every pattern comes from locales/format.*.toml, so a translator
// can change "3. desember 2026" without touching Go.

// monthIDs and weekdayIDs are indexed by time.Month and time.Weekday.
var (
	monthIDs = [...]string{
		time.January: "format_month_january", time.February: "format_month_february",
		time.March: "format_month_march", time.April: "format_month_april",
		time.May: "format_month_may", time.June: "format_month_june",
		time.July: "format_month_july", time.August: "format_month_august",
		time.September: "format_month_september", time.October: "format_month_october",
		time.November: "format_month_november", time.December: "format_month_december",
	}
	monthShortIDs = [...]string{
		time.January: "format_month_short_january", time.February: "format_month_short_february",
		time.March: "format_month_short_march", time.April: "format_month_short_april",
		time.May: "format_month_short_may", time.June: "format_month_short_june",
		time.July: "format_month_short_july", time.August: "format_month_short_august",
		time.September: "format_month_short_september", time.October: "format_month_short_october",
		time.November: "format_month_short_november", time.December: "format_month_short_december",
	}
	weekdayIDs = [...]string{
		time.Sunday: "format_weekday_sunday", time.Monday: "format_weekday_monday",
		time.Tuesday: "format_weekday_tuesday", time.Wednesday: "format_weekday_wednesday",
		time.Thursday: "format_weekday_thursday", time.Friday: "format_weekday_friday",
		time.Saturday: "format_weekday_saturday",
	}
)

// Location returns the time zone every date and time is shown in
// (Europe/Oslo).
func (l *Localizer) Location() *time.Location { return l.b.loc }

// Date formats t's calendar date in Europe/Oslo: "3. desember 2026" (nb, nn),
// "3 December 2026" (en). It returns "" for the zero time.
func (l *Localizer) Date(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	t = t.In(l.b.loc)
	// Kept per language and day, like Time's answers: a case page shows
	// the dates of its documents and events, and each would run go-i18n's
	// template. At most dateMemoMax are kept; past that, dates are made
	// every time.
	y, m, d := t.Date()
	return kept(&l.b.dates, dateKey{l.Lang, y, m, d}, &l.b.nDates, func() string {
		return l.T("format_date", map[string]any{
			"Day": d, "Month": l.T(monthIDs[m], nil), "Year": y,
		})
	})
}

// dateMemoMax bounds the dates Date and Day keep together (years of days
// in each of the three languages), and apart from them the counts N keeps.
const dateMemoMax = 10_000

// kept returns the answer m keeps under k, or else makes it and keeps it.
// Answers that count against a bound share a counter n, which counts
// every answer made; once it passes dateMemoMax, answers are made every
// time and no longer kept. A nil n keeps every answer, for keys few by
// construction. Safe for concurrent use: two callers may both make the
// same answer, and either may be kept.
func kept[K comparable](m *sync.Map, k K, n *atomic.Int64, answer func() string) string {
	if s, ok := m.Load(k); ok {
		return s.(string)
	}
	s := answer()
	if n == nil || n.Add(1) <= dateMemoMax {
		m.Store(k, s)
	}
	return s
}

type dateKey struct {
	lang  string
	year  int
	month time.Month
	day   int
}

// ShortDate formats t's day and month without the year, for lists where the
// year is obvious: "3. des." (nb, nn), "3 Dec" (en). It returns "" for the
// zero time. Use Date when the year may differ from the current one.
func (l *Localizer) ShortDate(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	t = t.In(l.b.loc)
	return l.T("format_date_short", map[string]any{
		"Day": t.Day(), "Month": l.T(monthShortIDs[t.Month()], nil),
	})
}

// Time formats t's wall-clock time in Europe/Oslo: "kl. 14.30" (nb, nn),
// "14:30" (en). It returns "" for the zero time.
func (l *Localizer) Time(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	t = t.In(l.b.loc)
	// Kept per language and minute of the day (at most 3 × 1,440): a
	// chat page shows the time of up to 50 messages, and each would run
	// go-i18n's template.
	return kept(&l.b.clock, clockKey{l.Lang, t.Hour()*60 + t.Minute()}, nil, func() string {
		return l.T("format_time", map[string]any{
			"Hour": fmt.Sprintf("%02d", t.Hour()), "Minute": fmt.Sprintf("%02d", t.Minute()),
		})
	})
}

type clockKey struct {
	lang   string
	minute int // of the day
}

// DateTime formats t as Date and Time together: "3. desember 2026 kl. 14.30"
// (nb, nn), "3 December 2026, 14:30" (en). It returns "" for the zero time.
func (l *Localizer) DateTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return l.T("format_date_time", map[string]any{"Date": l.Date(t), "Time": l.Time(t)})
}

// Weekday returns the name of t's weekday in Europe/Oslo, as written inside
// a sentence: "mandag" (nb), "måndag" (nn), "Monday" (en). It returns ""
// for the zero time.
func (l *Localizer) Weekday(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return l.T(weekdayIDs[t.In(l.b.loc).Weekday()], nil)
}

// Day labels the day t falls on, relative to now, for the chat's day
// separators: "I dag", "I går", else the weekday and date, "Mandag 30.
// november" (nb), "Måndag 30. november" (nn), "Monday 30 November" (en),
// with the year added when it is not now's year. Days are Europe/Oslo
// calendar days, so 00:30 is already "I dag". It returns "" for a zero t.
func (l *Localizer) Day(t, now time.Time) string {
	if t.IsZero() {
		return ""
	}
	t, now = t.In(l.b.loc), now.In(l.b.loc)
	y, m, d := t.Date()
	ny, nm, nd := now.Date()
	// Noon is never skipped or repeated by a DST change, and Date
	// normalises day 0 to the last day of the previous month.
	yy, ym, yd := time.Date(ny, nm, nd-1, 12, 0, 0, 0, l.b.loc).Date()
	switch {
	case y == ny && m == nm && d == nd:
		return l.T("format_day_today", nil)
	case y == yy && m == ym && d == yd:
		return l.T("format_day_yesterday", nil)
	}
	id := "format_day"
	if y != ny {
		id = "format_day_with_year"
	}
	// Kept like Date's answers (a chat page asks for the day of each of
	// its messages), under the same bound.
	return kept(&l.b.days, dayKey{dateKey{l.Lang, y, m, d}, id}, &l.b.nDates, func() string {
		// A separator stands alone like a heading, so it starts with a
		// capital in all our languages; the weekday names are lower case
		// for use inside sentences.
		return upperFirst(l.T(id, map[string]any{
			"Weekday": l.Weekday(t), "Day": d, "Month": l.T(monthIDs[m], nil), "Year": y,
		}))
	})
}

type dayKey struct {
	dateKey
	id string // with or without the year
}

// Duration says roughly how long d is, in its largest whole unit: "3 dager",
// "1 time", "5 minutter" (nb); "3 dagar", "1 time", "5 minutt" (nn); "3 days",
// "1 hour", "5 minutes" (en). Use it for "waiting for 3 days". Negative
// durations count as zero.
func (l *Localizer) Duration(d time.Duration) string {
	switch {
	case d >= 24*time.Hour:
		return l.N("format_duration_days", int(d/(24*time.Hour)), nil)
	case d >= time.Hour:
		return l.N("format_duration_hours", int(d/time.Hour), nil)
	default:
		return l.N("format_duration_minutes", int(max(d, 0)/time.Minute), nil)
	}
}

// upperFirst returns s with its first letter in upper case.
func upperFirst(s string) string {
	r, n := utf8.DecodeRuneInString(s)
	if r == utf8.RuneError {
		return s
	}
	return string(unicode.ToUpper(r)) + s[n:]
}
