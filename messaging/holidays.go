package messaging

import (
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/rickar/cal/v2"
	"github.com/rickar/cal/v2/aa"
	"github.com/rickar/cal/v2/no"
)

// Holiday is one Norwegian public holiday (helligdag or offentlig høytidsdag)
// on a given date.
type Holiday struct {
	Date Date
	// Name is the holiday's Norwegian (bokmål) name, e.g. "2. påskedag".
	Name string
}

// norwegianHolidays are the definitions behind Holidays. They come from
// rickar/cal/v2/no, which leaves out 1. påskedag and 1. pinsedag because they
// are always Sundays; we add them from the shared Easter-based definitions so
// that a caseworker who opens a window on a Sunday still has it closed on
// those two days, as the law makes them public holidays in their own right.
// The names are overridden with the forms Norwegians write on signs and in
// letters ("1. juledag", not "Første juledag").
var norwegianHolidays = []*cal.Holiday{
	no.FoersteNyttaarsdag.Clone(&cal.Holiday{Name: "1. nyttårsdag"}),
	no.Skjaertorsdag.Clone(&cal.Holiday{Name: "Skjærtorsdag"}),
	no.Langfredag.Clone(&cal.Holiday{Name: "Langfredag"}),
	aa.Easter.Clone(&cal.Holiday{Name: "1. påskedag", Type: cal.ObservancePublic}),
	no.AndrePaaskedag.Clone(&cal.Holiday{Name: "2. påskedag"}),
	no.Arbeiderenesdag.Clone(&cal.Holiday{Name: "1. mai"}),
	no.Grunnlovsdag.Clone(&cal.Holiday{Name: "17. mai"}),
	no.Kristihimmelfartsdag.Clone(&cal.Holiday{Name: "Kristi himmelfartsdag"}),
	aa.Pentecost.Clone(&cal.Holiday{Name: "1. pinsedag", Type: cal.ObservancePublic}),
	no.AndrePinsedag.Clone(&cal.Holiday{Name: "2. pinsedag"}),
	no.FoersteJuledag.Clone(&cal.Holiday{Name: "1. juledag"}),
	no.AndreJuledag.Clone(&cal.Holiday{Name: "2. juledag"}),
}

// holidayYears caches Holidays per year (int → []Holiday). The slices are
// never modified after they are stored, so readers can share them; the cache
// only grows by one small entry per distinct year asked about.
var holidayYears sync.Map

// Holidays returns Norway's public holidays in year, sorted by date. A date
// appears twice when two holidays coincide (17. mai and 2. pinsedag in 2027).
// The returned slice is the caller's to modify.
func Holidays(year int) []Holiday {
	return slices.Clone(holidaysIn(year))
}

// holidaysIn is Holidays without the defensive copy, for internal lookups.
func holidaysIn(year int) []Holiday {
	if v, ok := holidayYears.Load(year); ok {
		return v.([]Holiday)
	}
	hs := make([]Holiday, 0, len(norwegianHolidays))
	for _, h := range norwegianHolidays {
		// The library returns midnight in cal.DefaultLoc (time.Local). Only
		// the calendar date is used, which that location cannot change, and
		// we never touch the library's global so we cannot race with others.
		actual, _ := h.Calc(year)
		if actual.IsZero() {
			continue
		}
		y, m, d := actual.Date()
		hs = append(hs, Holiday{Date: Date{Year: y, Month: m, Day: d}, Name: h.Name})
	}
	slices.SortStableFunc(hs, func(a, b Holiday) int { return a.Date.Compare(b.Date) })
	v, _ := holidayYears.LoadOrStore(year, hs)
	return v.([]Holiday)
}

// PublicHoliday reports whether d is a Norwegian public holiday and, if so,
// its name. Ordinary Sundays are not reported: weekly windows already say
// what happens on Sundays. 24 and 31 December are not public holidays; see
// Calendar for how they are shortened.
func PublicHoliday(d Date) (name string, ok bool) {
	for _, h := range holidaysIn(d.Year) {
		if h.Date == d {
			return h.Name, true
		}
	}
	return "", false
}

// HalfDay configures one of the two eves (24 and 31 December), which are
// ordinary working days by law but which most offices shorten. The zero value
// leaves the day an ordinary working day.
type HalfDay struct {
	// Shortened reports whether the day is shortened at all.
	Shortened bool
	// CloseMin is, when Shortened, the minute after local midnight at which
	// every window closes (720 is 12:00). 0 closes the whole day.
	CloseMin int
}

// Calendar is an office's day rules on top of the national holidays: how the
// two eves are shortened and which extra dates the office is closed.
type Calendar struct {
	// ChristmasEve configures 24 December.
	ChristmasEve HalfDay
	// NewYearsEve configures 31 December.
	NewYearsEve HalfDay
	// ClosureDays are local dates the office is closed all day (a staff
	// seminar, a municipal day off). They are not public holidays, so the
	// barnevernvakt covers them like one.
	ClosureDays []Date
}

// Eve returns the half-day rule for d when d is 24 or 31 December and that
// day is configured as shortened.
func (c Calendar) Eve(d Date) (HalfDay, bool) {
	if d.Month != time.December {
		return HalfDay{}, false
	}
	var h HalfDay
	switch d.Day {
	case 24:
		h = c.ChristmasEve
	case 31:
		h = c.NewYearsEve
	default:
		return HalfDay{}, false
	}
	return h, h.Shortened
}

// ClosureDay reports whether d is one of the office's local closure days.
func (c Calendar) ClosureDay(d Date) bool {
	return slices.Contains(c.ClosureDays, d)
}

// closedAllDay reports whether the office is shut for the whole of d: a
// public holiday, a closure day, or an eve configured as closed.
func (c Calendar) closedAllDay(d Date) bool {
	if _, ok := PublicHoliday(d); ok || c.ClosureDay(d) {
		return true
	}
	h, ok := c.Eve(d)
	return ok && h.CloseMin == 0
}

// WorkingDay reports whether d counts when answer times are measured in
// working days: Monday to Friday, not a public holiday, not a closure day and
// not an eve configured as closed. A shortened eve still counts, because
// people are at work that morning.
func (c Calendar) WorkingDay(d Date) bool {
	if wd := d.Weekday(); wd == time.Saturday || wd == time.Sunday {
		return false
	}
	return !c.closedAllDay(d)
}

// Validate checks the calendar's settings. Fields are named "christmas_eve",
// "new_years_eve" and "closure_days[i]".
func (c Calendar) Validate() []FieldError {
	var errs []FieldError
	for _, e := range []struct {
		field string
		h     HalfDay
	}{{"christmas_eve", c.ChristmasEve}, {"new_years_eve", c.NewYearsEve}} {
		// A closing time of 24:00 would be no half day at all; say so
		// rather than silently keeping the office open.
		if e.h.Shortened && (e.h.CloseMin < 0 || e.h.CloseMin >= MinutesPerDay) {
			errs = append(errs, FieldError{Field: e.field, MessageID: AvailabilityTimeOutOfRange})
		}
	}
	for i, d := range c.ClosureDays {
		if !d.Valid() {
			errs = append(errs, FieldError{Field: fmt.Sprintf("closure_days[%d]", i), MessageID: AvailabilityDateInvalid})
		}
	}
	return errs
}
