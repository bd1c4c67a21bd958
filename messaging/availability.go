package messaging

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"
)

// This file answers "can the family reach someone now, and if not, when?".
// Everything here is a pure function of plain values and an instant, so the
// web layer, the hub and the notifier all give the same answer for the same
// moment, and tests can pin any moment without a clock.
//
// Rules that hold throughout:
//   - Windows are Europe/Oslo wall-clock minutes after local midnight, start
//     inclusive, end exclusive, and never cross midnight: 22:00–02:00 is two
//     windows (22:00–24:00 and 00:00–02:00 the next weekday). Periods that
//     touch across midnight are joined when we say "open until".
//   - On daylight-saving days a window keeps its wall-clock meaning: a window
//     02:00–03:00 lasts no time at all on the last Sunday of March and two
//     hours on the last Sunday of October. Instants are converted zone
//     segment by zone segment (time.Time.ZoneBounds), never by adding 24h.
//   - Precedence on a date, weakest first: weekly windows (or office hours),
//     then public holidays, closure days and half days, then date
//     exceptions (open ones, then closed ones), then absences.

// MinutesPerDay is the number of wall-clock minutes in a normal day; an EndMin
// of MinutesPerDay means "until midnight".
const MinutesPerDay = 24 * 60

// searchDays bounds every forward search. A little over a year covers every
// real gap (a long absence, Christmas) while guaranteeing that a schedule that
// never opens still returns.
const searchDays = 400

// Channel is a way a family can reach a caseworker.
type Channel string

// The contact channels a caseworker sets windows for.
const (
	ChannelChat    Channel = "chat"
	ChannelPhone   Channel = "phone"
	ChannelVideo   Channel = "video"
	ChannelMeeting Channel = "meeting"
)

// Channels returns every contact channel in display order.
func Channels() []Channel {
	return []Channel{ChannelChat, ChannelPhone, ChannelVideo, ChannelMeeting}
}

// Valid reports whether c is one of the known channels.
func (c Channel) Valid() bool {
	return slices.Contains(Channels(), c)
}

// osloLocation loads Europe/Oslo once. A missing zone database is a
// deployment error (cmd/portal imports time/tzdata), and every answer here
// would be wrong without it, so it panics rather than guessing an offset.
var osloLocation = sync.OnceValue(func() *time.Location {
	loc, err := time.LoadLocation("Europe/Oslo")
	if err != nil {
		panic("messaging: load Europe/Oslo (import time/tzdata in main): " + err.Error())
	}
	return loc
})

// Oslo returns the Europe/Oslo location every availability rule is expressed
// in. Returned instants are in this location so they can be formatted as is.
func Oslo() *time.Location {
	return osloLocation()
}

// Date is a calendar date in Europe/Oslo, without a time of day. Go has no
// civil date type, and a time.Time at midnight invites off-by-one-day errors
// once it meets UTC.
type Date struct {
	Year  int
	Month time.Month
	Day   int
}

// DateOf returns the Europe/Oslo calendar date of the instant t.
func DateOf(t time.Time) Date {
	y, m, d := t.In(Oslo()).Date()
	return Date{Year: y, Month: m, Day: d}
}

// ParseDate parses a date written as YYYY-MM-DD, rejecting dates that do not
// exist such as 2026-02-30.
func ParseDate(s string) (Date, error) {
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return Date{}, fmt.Errorf("parse date %q: %w", s, err)
	}
	y, m, d := t.Date()
	return Date{Year: y, Month: m, Day: d}, nil
}

// String formats d as YYYY-MM-DD.
func (d Date) String() string {
	return fmt.Sprintf("%04d-%02d-%02d", d.Year, int(d.Month), d.Day)
}

// Valid reports whether d exists in the calendar (no 30 February, no month
// 13) and has a four-digit year.
func (d Date) Valid() bool {
	if d.Year < 1 || d.Year > 9999 {
		return false
	}
	// time.Date normalises 2026-02-30 to 2026-03-02; a date exists exactly
	// when normalising leaves it unchanged.
	y, m, dd := time.Date(d.Year, d.Month, d.Day, 0, 0, 0, 0, time.UTC).Date()
	return y == d.Year && m == d.Month && dd == d.Day
}

// AddDays returns the date n days after d (before it if n is negative).
func (d Date) AddDays(n int) Date {
	y, m, dd := d.utcMidnight().AddDate(0, 0, n).Date()
	return Date{Year: y, Month: m, Day: dd}
}

// Weekday returns the day of the week of d.
func (d Date) Weekday() time.Weekday {
	return d.utcMidnight().Weekday()
}

// Compare returns -1, 0 or +1 as d is before, equal to or after e.
func (d Date) Compare(e Date) int {
	if c := cmp.Compare(d.Year, e.Year); c != 0 {
		return c
	}
	if c := cmp.Compare(d.Month, e.Month); c != 0 {
		return c
	}
	return cmp.Compare(d.Day, e.Day)
}

// Before reports whether d is before e.
func (d Date) Before(e Date) bool { return d.Compare(e) < 0 }

// After reports whether d is after e.
func (d Date) After(e Date) bool { return d.Compare(e) > 0 }

// utcMidnight is d's wall clock read as UTC: date arithmetic there never
// meets a daylight-saving jump.
func (d Date) utcMidnight() time.Time {
	return time.Date(d.Year, d.Month, d.Day, 0, 0, 0, 0, time.UTC)
}

// start returns the first instant of d in Oslo.
func (d Date) start() time.Time {
	// Oslo's transitions happen at 02:00/03:00, so local midnight always
	// exists and is unique.
	return time.Date(d.Year, d.Month, d.Day, 0, 0, 0, 0, Oslo())
}

// Window is a weekly period in which a channel is open: on Weekday from
// StartMin up to, but not including, EndMin, both in Europe/Oslo wall-clock
// minutes after local midnight. A window never crosses midnight, so
// 0 <= StartMin < EndMin <= MinutesPerDay; use two windows for a night.
type Window struct {
	Weekday  time.Weekday
	StartMin int
	EndMin   int
}

// Contains reports whether the instant t falls inside w, reading t's wall
// clock in loc (normally Oslo()).
func (w Window) Contains(t time.Time, loc *time.Location) bool {
	lt := t.In(loc)
	m := lt.Hour()*60 + lt.Minute()
	return lt.Weekday() == w.Weekday && w.StartMin <= m && m < w.EndMin
}

// Exception changes one date: it opens or closes a channel (or every channel)
// from StartMin to EndMin on Date. StartMin 0 and EndMin MinutesPerDay cover
// the whole day. Exceptions beat weekly windows and public holidays, because
// they are a deliberate decision about one particular day.
type Exception struct {
	Date Date
	// Channel limits the exception to one channel; empty means every channel.
	Channel Channel
	// Open adds an open period; false closes the period instead.
	Open     bool
	StartMin int
	EndMin   int
}

// appliesTo reports whether e concerns channel ch.
func (e Exception) appliesTo(ch Channel) bool {
	return e.Channel == "" || e.Channel == ch
}

// Absence is a period a caseworker is away, From and To both inclusive. While
// it lasts every channel of theirs is closed, and SubstituteID (a user id)
// answers; an empty SubstituteID means the team does.
type Absence struct {
	From         Date
	To           Date
	SubstituteID string
}

// covers reports whether d lies within a.
func (a Absence) covers(d Date) bool {
	return !d.Before(a.From) && !d.After(a.To)
}

// Schedule is everything that decides when one owner (a caseworker, or an
// office's service such as the barnevernvakt) can be reached.
type Schedule struct {
	// Windows are the owner's own weekly windows per channel.
	Windows map[Channel][]Window
	// OfficeHours apply to every channel that has no windows of its own, and
	// give the end of the working day for AnswerBy.
	OfficeHours []Window
	Exceptions  []Exception
	Absences    []Absence
	Calendar    Calendar
	// Emergency inverts the day rules for a service that covers when the
	// office is closed (the barnevernvakt): public holidays and closure days
	// are open around the clock, and a shortened eve is open from its
	// closing time on. Without it those days close every window.
	Emergency bool
}

// minuteSpan is a wall-clock period [start, end) on one date, in minutes
// after local midnight.
type minuteSpan struct{ start, end int }

// instantSpan is a period [start, end) of real time.
type instantSpan struct{ start, end time.Time }

// windowsFor returns the weekly windows that govern channel ch.
func (s Schedule) windowsFor(ch Channel) []Window {
	if ws := s.Windows[ch]; len(ws) > 0 {
		return ws
	}
	return s.OfficeHours
}

// absentOn reports whether any absence covers d.
func (s Schedule) absentOn(d Date) bool {
	return slices.ContainsFunc(s.Absences, func(a Absence) bool { return a.covers(d) })
}

// openMinutes returns the wall-clock periods on d when channel ch is open,
// sorted and merged, applying the precedence described at the top of the file.
func (s Schedule) openMinutes(ch Channel, d Date) []minuteSpan {
	// An absence beats everything, even an open exception made before the
	// absence was planned: appearing open would keep messages away from the
	// substitute.
	if s.absentOn(d) {
		return nil
	}
	var open []minuteSpan
	wd := d.Weekday()
	for _, w := range s.windowsFor(ch) {
		if w.Weekday == wd {
			open = append(open, minuteSpan{w.StartMin, w.EndMin})
		}
	}
	_, holiday := PublicHoliday(d)
	switch eve, isEve := s.Calendar.Eve(d); {
	case (holiday || s.Calendar.ClosureDay(d)) && s.Emergency:
		open = []minuteSpan{{0, MinutesPerDay}}
	case holiday || s.Calendar.ClosureDay(d):
		open = nil
	case isEve && s.Emergency:
		open = append(open, minuteSpan{eve.CloseMin, MinutesPerDay})
	case isEve:
		open = subtractMinutes(open, minuteSpan{eve.CloseMin, MinutesPerDay})
	}
	// Open exceptions first, closed ones last: should two ever overlap
	// (validation refuses it), "closed" wins, since wrongly promising an
	// answer is worse than a cautious "opens at".
	for _, e := range s.Exceptions {
		if e.Open && e.Date == d && e.appliesTo(ch) {
			open = append(open, minuteSpan{e.StartMin, e.EndMin})
		}
	}
	open = mergeMinutes(open)
	for _, e := range s.Exceptions {
		if !e.Open && e.Date == d && e.appliesTo(ch) {
			open = subtractMinutes(open, minuteSpan{e.StartMin, e.EndMin})
		}
	}
	return open
}

// mergeMinutes sorts spans and joins overlapping or touching ones, dropping
// empty ones, so "09–11 and 11–12" reads as one period until 12.
func mergeMinutes(spans []minuteSpan) []minuteSpan {
	spans = slices.DeleteFunc(slices.Clone(spans), func(m minuteSpan) bool { return m.start >= m.end })
	slices.SortFunc(spans, func(a, b minuteSpan) int { return cmp.Compare(a.start, b.start) })
	var out []minuteSpan
	for _, m := range spans {
		if n := len(out); n > 0 && m.start <= out[n-1].end {
			out[n-1].end = max(out[n-1].end, m.end)
			continue
		}
		out = append(out, m)
	}
	return out
}

// subtractMinutes removes cut from the merged spans.
func subtractMinutes(spans []minuteSpan, cut minuteSpan) []minuteSpan {
	var out []minuteSpan
	for _, m := range mergeMinutes(spans) {
		if cut.end <= m.start || m.end <= cut.start {
			out = append(out, m)
			continue
		}
		if m.start < cut.start {
			out = append(out, minuteSpan{m.start, cut.start})
		}
		if cut.end < m.end {
			out = append(out, minuteSpan{cut.end, m.end})
		}
	}
	return out
}

// zoneSegment is a stretch of one date during which Oslo's UTC offset is
// constant; within it wall clock and real time move in step.
type zoneSegment struct {
	start, end time.Time
	offset     time.Duration
}

// zoneSegments splits the date d at its daylight-saving transitions: one
// segment on most days, two on the days the clocks change.
func zoneSegments(d Date) []zoneSegment {
	var segs []zoneSegment
	dayEnd := d.AddDays(1).start()
	for t := d.start(); t.Before(dayEnd); {
		_, off := t.Zone()
		_, zoneEnd := t.ZoneBounds()
		end := dayEnd
		if !zoneEnd.IsZero() && zoneEnd.Before(dayEnd) {
			end = zoneEnd
		}
		segs = append(segs, zoneSegment{start: t, end: end, offset: time.Duration(off) * time.Second})
		t = end
	}
	return segs
}

// wallInstant returns the instant at which the wall clock in seg reads
// minute of date d, if it ever does while seg lasts.
func (seg zoneSegment) wallInstant(d Date, minute int) time.Time {
	return d.utcMidnight().Add(time.Duration(minute)*time.Minute - seg.offset).In(Oslo())
}

// instantSpans turns wall-clock spans on d into real-time periods. A wall
// time that the spring transition skips yields nothing, and one the autumn
// transition repeats yields both occurrences, because each zone segment is
// intersected separately.
func instantSpans(d Date, spans []minuteSpan) []instantSpan {
	var out []instantSpan
	for _, seg := range zoneSegments(d) {
		for _, m := range spans {
			start := laterOf(seg.wallInstant(d, m.start), seg.start)
			end := earlierOf(seg.wallInstant(d, m.end), seg.end)
			if !start.Before(end) {
				continue
			}
			// Segments come in time order and spans within one are sorted,
			// so joining with the previous period is all the merging needed.
			if n := len(out); n > 0 && !out[n-1].end.Before(start) {
				out[n-1].end = laterOf(out[n-1].end, end)
				continue
			}
			out = append(out, instantSpan{start, end})
		}
	}
	return out
}

// laterOf returns the later of two instants.
func laterOf(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// earlierOf returns the earlier of two instants.
func earlierOf(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// OpenAt reports whether channel ch is open at the instant now, and until
// when that state lasts: the closing time if open, the next opening if
// closed. Periods that touch across midnight count as one, so the
// barnevernvakt on a Friday evening is open "until Monday 08.00". until is
// the zero time when the state does not change within about 400 days (always
// open, or never open). An unknown channel is never open.
func (s Schedule) OpenAt(ch Channel, now time.Time) (open bool, until time.Time) {
	if !ch.Valid() {
		return false, time.Time{}
	}
	var cur *instantSpan // the open period containing now, once found
	d := DateOf(now)
	for range searchDays {
		for _, sp := range instantSpans(d, s.openMinutes(ch, d)) {
			switch {
			case cur != nil && sp.start.Equal(cur.end):
				cur.end = sp.end
			case cur != nil:
				return true, cur.end
			case !sp.end.After(now):
				// Already over before now.
			case !sp.start.After(now):
				cur = &instantSpan{sp.start, sp.end}
			default:
				return false, sp.start
			}
		}
		d = d.AddDays(1)
		// A period that ends before midnight cannot continue the next day;
		// stop here instead of walking to the horizon through empty days.
		if cur != nil && cur.end.Before(d.start()) {
			return true, cur.end
		}
	}
	return cur != nil, time.Time{}
}

// NextOpening returns the first instant at or after now at which channel ch
// is open: now itself when it is open already. ok is false when the channel
// does not open within about 400 days.
func (s Schedule) NextOpening(ch Channel, now time.Time) (at time.Time, ok bool) {
	open, until := s.OpenAt(ch, now)
	if open {
		return now.In(Oslo()), true
	}
	return until, !until.IsZero()
}

// Absent returns the absence covering now's Oslo date, if any. When
// absences follow on from each other (or overlap), To is extended to the
// last day of the whole run, so the family reads when their caseworker is
// really back, while SubstituteID stays that of the absence covering today,
// who is the person answering now. Of several absences covering today, the
// one that starts latest wins, as the most recent plan.
func (s Schedule) Absent(now time.Time) (Absence, bool) {
	d := DateOf(now)
	var cur Absence
	found := false
	for _, a := range s.Absences {
		if a.covers(d) && (!found || a.From.After(cur.From)) {
			cur, found = a, true
		}
	}
	if !found {
		return Absence{}, false
	}
	for extended := true; extended; {
		extended = false
		for _, a := range s.Absences {
			if !a.From.After(cur.To.AddDays(1)) && a.To.After(cur.To) && !a.To.Before(a.From) {
				cur.To, extended = a.To, true
			}
		}
	}
	return cur, true
}

// AnswerBy returns when an answer can be expected to a message sent at now:
// the end of office hours on the workingDays-th working day after now's Oslo
// date (see Calendar.WorkingDay). The day the message is sent never counts,
// whatever the hour, so the promise is the same for a message at 08.00 and
// one at 23.00. End of office hours is the latest end of OfficeHours that
// weekday, cut short on a half day, or midnight when OfficeHours has nothing
// that weekday. It uses the office calendar, not the caseworker's own
// windows or absences, because someone (a substitute, the team) answers
// even when the caseworker does not. workingDays below 1 counts as 1, so the
// answer time is never in the past. The zero time is returned for more than
// 400 working days, or if no working day occurs within 400 days, since a
// promise that far out is a configuration error, not an answer time.
func (s Schedule) AnswerBy(now time.Time, workingDays int) time.Time {
	if workingDays > searchDays {
		return time.Time{}
	}
	workingDays = max(workingDays, 1)
	d := DateOf(now)
	// gap counts consecutive days without work, so the loop ends even for a
	// calendar whose closure days cover everything.
	for gap := 0; gap < searchDays; {
		d = d.AddDays(1)
		if !s.Calendar.WorkingDay(d) {
			gap++
			continue
		}
		gap = 0
		if workingDays--; workingDays == 0 {
			return s.endOfWorkingDay(d)
		}
	}
	return time.Time{}
}

// endOfWorkingDay returns when office hours end on the working day d.
func (s Schedule) endOfWorkingDay(d Date) time.Time {
	var spans []minuteSpan
	for _, w := range s.OfficeHours {
		if w.Weekday == d.Weekday() {
			spans = append(spans, minuteSpan{w.StartMin, w.EndMin})
		}
	}
	if eve, ok := s.Calendar.Eve(d); ok {
		spans = subtractMinutes(spans, minuteSpan{eve.CloseMin, MinutesPerDay})
	}
	periods := instantSpans(d, mergeMinutes(spans))
	if len(periods) == 0 {
		return d.AddDays(1).start()
	}
	return periods[len(periods)-1].end
}

// Barnevernvakt describes the emergency service's hours: on weekdays from
// EveningMin until MorningMin the next morning, and around the clock on
// weekends, public holidays and the office's closure days (and from the
// closing time of a shortened eve), because it covers whenever the office
// is closed. In Fjordvik that is 15:30–08:00 (EveningMin 930, MorningMin 480).
type Barnevernvakt struct {
	Calendar   Calendar
	EveningMin int
	MorningMin int
}

// Windows returns the weekly windows for b. The night is split at midnight
// (15:30–24:00 and 00:00–08:00 the next day), and weekends are whole days.
func (b Barnevernvakt) Windows() []Window {
	var ws []Window
	for wd := time.Sunday; wd <= time.Saturday; wd++ {
		if wd == time.Saturday || wd == time.Sunday {
			ws = append(ws, Window{Weekday: wd, StartMin: 0, EndMin: MinutesPerDay})
			continue
		}
		ws = append(ws,
			Window{Weekday: wd, StartMin: 0, EndMin: b.MorningMin},
			Window{Weekday: wd, StartMin: b.EveningMin, EndMin: MinutesPerDay})
	}
	return ws
}

// Schedule returns b as an emergency Schedule whose hours apply to every
// channel.
func (b Barnevernvakt) Schedule() Schedule {
	return Schedule{OfficeHours: b.Windows(), Calendar: b.Calendar, Emergency: true}
}

// OpenAt reports whether the barnevernvakt is open at now and until when
// (the next opening when closed), as Schedule.OpenAt does.
func (b Barnevernvakt) OpenAt(now time.Time) (open bool, until time.Time) {
	return b.Schedule().OpenAt(ChannelPhone, now)
}

// FieldError is one problem with submitted availability settings. The web
// layer localizes MessageID and shows it next to Field.
type FieldError struct {
	// Field names the input, e.g. "windows[2].end" or "exceptions[0].date".
	Field string
	// MessageID is a stable i18n message ID, one of the Availability*
	// constants.
	MessageID string
}

// Error implements error so a FieldError can travel in error values.
func (e FieldError) Error() string {
	return e.Field + ": " + e.MessageID
}

// Message IDs for FieldError. They are stable: locale files and tests use
// them.
const (
	AvailabilityWeekdayInvalid   = "availability_error_weekday_invalid"
	AvailabilityChannelInvalid   = "availability_error_channel_invalid"
	AvailabilityTimeOutOfRange   = "availability_error_time_out_of_range"
	AvailabilityEndBeforeStart   = "availability_error_end_before_start"
	AvailabilityOverlap          = "availability_error_overlap"
	AvailabilityDateInvalid      = "availability_error_date_invalid"
	AvailabilityToBeforeFrom     = "availability_error_to_before_from"
	AvailabilityTimeDoesNotExist = "availability_error_time_does_not_exist"
	AvailabilityTimeAmbiguous    = "availability_error_time_ambiguous"
)

// validateRange checks one start/end pair and reports whether it is usable
// for further checks (overlaps, daylight saving).
func validateRange(prefix string, start, end int) ([]FieldError, bool) {
	var errs []FieldError
	if start < 0 || start >= MinutesPerDay {
		errs = append(errs, FieldError{prefix + ".start", AvailabilityTimeOutOfRange})
	}
	if end <= 0 || end > MinutesPerDay {
		errs = append(errs, FieldError{prefix + ".end", AvailabilityTimeOutOfRange})
	}
	if len(errs) == 0 && end <= start {
		errs = append(errs, FieldError{prefix + ".end", AvailabilityEndBeforeStart})
	}
	return errs, len(errs) == 0
}

// overlapErrors reports, for items whose periods overlap, an error on the one
// that starts later (by input order when they start together), so the
// caseworker is pointed at the row they most likely just added. same says
// whether two items compete at all (same weekday, same date and channel).
func overlapErrors(prefix string, spans []minuteSpan, usable []bool, same func(i, j int) bool) []FieldError {
	var errs []FieldError
	for j := range spans {
		if !usable[j] {
			continue
		}
		for i := range spans {
			if i == j || !usable[i] || !same(i, j) {
				continue
			}
			earlier := spans[i].start < spans[j].start || (spans[i].start == spans[j].start && i < j)
			if earlier && spans[i].start < spans[j].end && spans[j].start < spans[i].end {
				errs = append(errs, FieldError{fmt.Sprintf("%s[%d].start", prefix, j), AvailabilityOverlap})
				break
			}
		}
	}
	return errs
}

// ValidateWindows checks weekly windows: a real weekday, times within the day
// (start 00:00–23:59, end 00:01–24:00), end after start, and no two windows
// overlapping on the same weekday (touching is fine). Fields are named
// "windows[i].weekday", "windows[i].start" and "windows[i].end". Weekly
// windows are not checked against daylight saving: they mean wall-clock time
// on every week, and a window that falls in the skipped hour simply does not
// happen that one Sunday.
func ValidateWindows(ws []Window) []FieldError {
	return validateWindows("windows", ws)
}

// validateWindows is ValidateWindows with a caller-chosen field prefix.
func validateWindows(prefix string, ws []Window) []FieldError {
	var errs []FieldError
	spans := make([]minuteSpan, len(ws))
	usable := make([]bool, len(ws))
	for i, w := range ws {
		p := fmt.Sprintf("%s[%d]", prefix, i)
		rangeErrs, ok := validateRange(p, w.StartMin, w.EndMin)
		if w.Weekday < time.Sunday || w.Weekday > time.Saturday {
			errs = append(errs, FieldError{p + ".weekday", AvailabilityWeekdayInvalid})
			ok = false
		}
		errs = append(errs, rangeErrs...)
		spans[i], usable[i] = minuteSpan{w.StartMin, w.EndMin}, ok
	}
	return append(errs, overlapErrors(prefix, spans, usable, func(i, j int) bool {
		return ws[i].Weekday == ws[j].Weekday
	})...)
}

// ValidateExceptions checks date exceptions: the date exists, the channel is
// known (or empty), the times are in range with end after start, neither
// time is skipped or repeated by a daylight-saving change on that date
// (02:30 on 2026-03-29 does not exist; 02:30 on 2026-10-25 happens twice),
// and no two exceptions for the same channel overlap on the same date.
// Fields are named "exceptions[i].date", ".channel", ".start" and ".end".
func ValidateExceptions(es []Exception) []FieldError {
	var errs []FieldError
	spans := make([]minuteSpan, len(es))
	usable := make([]bool, len(es))
	for i, e := range es {
		p := fmt.Sprintf("exceptions[%d]", i)
		ok := true
		if !e.Date.Valid() {
			errs = append(errs, FieldError{p + ".date", AvailabilityDateInvalid})
			ok = false
		}
		if e.Channel != "" && !e.Channel.Valid() {
			errs = append(errs, FieldError{p + ".channel", AvailabilityChannelInvalid})
		}
		rangeErrs, rangeOK := validateRange(p, e.StartMin, e.EndMin)
		errs = append(errs, rangeErrs...)
		ok = ok && rangeOK
		if ok {
			for _, f := range []struct {
				name   string
				minute int
			}{{".start", e.StartMin}, {".end", e.EndMin}} {
				if id := wallTimeProblem(e.Date, f.minute); id != "" {
					errs = append(errs, FieldError{p + f.name, id})
				}
			}
		}
		spans[i], usable[i] = minuteSpan{e.StartMin, e.EndMin}, ok
	}
	return append(errs, overlapErrors("exceptions", spans, usable, func(i, j int) bool {
		return es[i].Date == es[j].Date && (es[i].Channel == "" || es[j].Channel == "" || es[i].Channel == es[j].Channel)
	})...)
}

// wallTimeProblem returns AvailabilityTimeDoesNotExist or
// AvailabilityTimeAmbiguous when minute on d is skipped or repeated by a
// daylight-saving change in Oslo, and "" when it happens exactly once.
func wallTimeProblem(d Date, minute int) string {
	if minute == MinutesPerDay {
		// 24:00 is the next day's 00:00.
		d, minute = d.AddDays(1), 0
	}
	n := 0
	for _, seg := range zoneSegments(d) {
		if t := seg.wallInstant(d, minute); !t.Before(seg.start) && t.Before(seg.end) {
			n++
		}
	}
	switch {
	case n == 0:
		return AvailabilityTimeDoesNotExist
	case n > 1:
		return AvailabilityTimeAmbiguous
	}
	return ""
}

// ValidateAbsences checks absences: both dates exist, To is not before From,
// and no two absences overlap (they may follow on from each other), since an
// overlap would leave it unclear who answers. Fields are named
// "absences[i].from" and "absences[i].to"; an overlap is reported on ".from"
// of the later one.
func ValidateAbsences(as []Absence) []FieldError {
	var errs []FieldError
	usable := make([]bool, len(as))
	for i, a := range as {
		p := fmt.Sprintf("absences[%d]", i)
		ok := true
		if !a.From.Valid() {
			errs = append(errs, FieldError{p + ".from", AvailabilityDateInvalid})
			ok = false
		}
		if !a.To.Valid() {
			errs = append(errs, FieldError{p + ".to", AvailabilityDateInvalid})
			ok = false
		}
		if ok && a.To.Before(a.From) {
			errs = append(errs, FieldError{p + ".to", AvailabilityToBeforeFrom})
			ok = false
		}
		usable[i] = ok
	}
	for j, b := range as {
		if !usable[j] {
			continue
		}
		for i, a := range as {
			if i == j || !usable[i] {
				continue
			}
			earlier := a.From.Before(b.From) || (a.From == b.From && i < j)
			if earlier && !b.From.After(a.To) {
				errs = append(errs, FieldError{fmt.Sprintf("absences[%d].from", j), AvailabilityOverlap})
				break
			}
		}
	}
	return errs
}

// Validate checks every part of s. Window fields are prefixed with their
// channel ("chat.windows[0].end") or "office_hours", and calendar fields with
// "calendar.".
func (s Schedule) Validate() []FieldError {
	var errs []FieldError
	for _, ch := range slices.Sorted(maps.Keys(s.Windows)) {
		if !ch.Valid() {
			errs = append(errs, FieldError{string(ch) + ".windows", AvailabilityChannelInvalid})
			continue
		}
		errs = append(errs, validateWindows(string(ch)+".windows", s.Windows[ch])...)
	}
	errs = append(errs, validateWindows("office_hours", s.OfficeHours)...)
	errs = append(errs, ValidateExceptions(s.Exceptions)...)
	errs = append(errs, ValidateAbsences(s.Absences)...)
	for _, e := range s.Calendar.Validate() {
		e.Field = "calendar." + e.Field
		errs = append(errs, e)
	}
	return errs
}
