package messaging_test

import (
	"fmt"
	"slices"
	"testing"
	"time"
	_ "time/tzdata" // the tests must not depend on the host's zone files

	"familieportal/messaging"
)

// All expected dates and times below are written out by hand. Where daylight
// saving matters, the expectation is given in UTC with the Oslo wall clock in
// a comment, so a wrong offset cannot hide behind the code under test.

func date(y int, m time.Month, d int) messaging.Date {
	return messaging.Date{Year: y, Month: m, Day: d}
}

// oslo returns a wall-clock time in Europe/Oslo; use it only for times that
// exist exactly once.
func oslo(t *testing.T, y int, m time.Month, d, hh, mm int) time.Time {
	t.Helper()
	return time.Date(y, m, d, hh, mm, 0, 0, messaging.Oslo())
}

func utc(y int, m time.Month, d, hh, mm int) time.Time {
	return time.Date(y, m, d, hh, mm, 0, 0, time.UTC)
}

// hm is a wall-clock time as minutes after midnight.
func hm(h, m int) int { return h*60 + m }

// weekdays returns one window per weekday Monday to Friday.
func weekdays(start, end int) []messaging.Window {
	var ws []messaging.Window
	for wd := time.Monday; wd <= time.Friday; wd++ {
		ws = append(ws, messaging.Window{Weekday: wd, StartMin: start, EndMin: end})
	}
	return ws
}

// everyDay returns a window on all seven weekdays.
func everyDay(start, end int) []messaging.Window {
	var ws []messaging.Window
	for wd := time.Sunday; wd <= time.Saturday; wd++ {
		ws = append(ws, messaging.Window{Weekday: wd, StartMin: start, EndMin: end})
	}
	return ws
}

// office is Fjordvik's office: open 08:00–15:30 on weekdays.
func office(c messaging.Calendar) messaging.Schedule {
	return messaging.Schedule{OfficeHours: weekdays(hm(8, 0), hm(15, 30)), Calendar: c}
}

// fjordvikVakt is the demo barnevernvakt: weekdays 15:30–08:00.
func fjordvikVakt(c messaging.Calendar) messaging.Barnevernvakt {
	return messaging.Barnevernvakt{Calendar: c, EveningMin: hm(15, 30), MorningMin: hm(8, 0)}
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "zero"
	}
	return t.In(messaging.Oslo()).Format(time.RFC3339)
}

func TestWindow_Contains(t *testing.T) {
	mon9to15 := messaging.Window{Weekday: time.Monday, StartMin: 9 * 60, EndMin: 15 * 60}

	tests := []struct {
		name string
		at   time.Time
		want bool
	}{
		{"winter, inside", utc(2025, 3, 24, 8, 30), true},                  // 09:30 CET
		{"winter, before start", utc(2025, 3, 24, 7, 30), false},           // 08:30 CET
		{"summer, same UTC hour is inside", utc(2025, 3, 31, 7, 30), true}, // 09:30 CEST
		{"start is inclusive", utc(2025, 3, 31, 7, 0), true},               // 09:00 CEST
		{"end is exclusive", utc(2025, 3, 31, 13, 0), false},               // 15:00 CEST
		{"wrong weekday", utc(2025, 4, 1, 8, 0), false},                    // Tuesday
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := mon9to15.Contains(tt.at, messaging.Oslo()); got != tt.want {
				t.Errorf("Contains(%s) = %v, want %v", fmtTime(tt.at), got, tt.want)
			}
		})
	}
}

func TestSchedule_OpenAt(t *testing.T) {
	mon := time.Monday
	chatMon9to15 := messaging.Schedule{Windows: map[messaging.Channel][]messaging.Window{
		messaging.ChannelChat: {{Weekday: mon, StartMin: hm(9, 0), EndMin: hm(15, 0)}},
	}}
	severalPerDay := messaging.Schedule{Windows: map[messaging.Channel][]messaging.Window{
		messaging.ChannelChat: {
			{Weekday: mon, StartMin: hm(13, 0), EndMin: hm(14, 30)},
			{Weekday: mon, StartMin: hm(9, 0), EndMin: hm(11, 0)},
			{Weekday: mon, StartMin: hm(11, 0), EndMin: hm(12, 0)}, // touches 09–11
		},
	}}
	acrossMidnight := messaging.Schedule{Windows: map[messaging.Channel][]messaging.Window{
		messaging.ChannelChat: {
			{Weekday: mon, StartMin: hm(22, 0), EndMin: messaging.MinutesPerDay},
			{Weekday: time.Tuesday, StartMin: 0, EndMin: hm(2, 0)},
		},
	}}
	untilMidnight := messaging.Schedule{Windows: map[messaging.Channel][]messaging.Window{
		messaging.ChannelChat: {{Weekday: mon, StartMin: hm(22, 0), EndMin: messaging.MinutesPerDay}},
	}}
	withFallback := messaging.Schedule{
		Windows: map[messaging.Channel][]messaging.Window{
			messaging.ChannelChat:  {{Weekday: mon, StartMin: hm(9, 0), EndMin: hm(10, 0)}},
			messaging.ChannelVideo: {}, // empty counts as none
		},
		OfficeHours: weekdays(hm(8, 0), hm(15, 30)),
	}
	sunday := func(start, end int) messaging.Schedule {
		return messaging.Schedule{Windows: map[messaging.Channel][]messaging.Window{
			messaging.ChannelChat: {{Weekday: time.Sunday, StartMin: start, EndMin: end}},
		}}
	}
	easterOpen27 := messaging.Schedule{Exceptions: []messaging.Exception{
		{Date: date(2027, 3, 28), Open: true, StartMin: hm(1, 0), EndMin: hm(4, 0)},
	}}
	newYork, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name      string
		s         messaging.Schedule
		ch        messaging.Channel
		at        time.Time
		wantOpen  bool
		wantUntil time.Time
	}{
		// Weekly windows. 2026-03-16 is a Monday.
		{"inside a window is open until its end", chatMon9to15, messaging.ChannelChat,
			oslo(t, 2026, 3, 16, 10, 0), true, oslo(t, 2026, 3, 16, 15, 0)},
		{"before a window is closed until its start", chatMon9to15, messaging.ChannelChat,
			oslo(t, 2026, 3, 16, 8, 59), false, oslo(t, 2026, 3, 16, 9, 0)},
		{"start is inclusive", chatMon9to15, messaging.ChannelChat,
			oslo(t, 2026, 3, 16, 9, 0), true, oslo(t, 2026, 3, 16, 15, 0)},
		{"end is exclusive and the next opening is a week later", chatMon9to15, messaging.ChannelChat,
			oslo(t, 2026, 3, 16, 15, 0), false, oslo(t, 2026, 3, 23, 9, 0)},
		{"other channels without windows or office hours are closed", chatMon9to15, messaging.ChannelPhone,
			oslo(t, 2026, 3, 16, 10, 0), false, time.Time{}},
		{"an unknown channel is never open", chatMon9to15, messaging.Channel("fax"),
			oslo(t, 2026, 3, 16, 10, 0), false, time.Time{}},
		{"now in another zone is read in Oslo", chatMon9to15, messaging.ChannelChat,
			time.Date(2026, 3, 16, 5, 0, 0, 0, newYork), true, oslo(t, 2026, 3, 16, 15, 0)}, // 10:00 CET

		// Several windows per day.
		{"touching windows count as one period", severalPerDay, messaging.ChannelChat,
			oslo(t, 2026, 3, 16, 10, 0), true, oslo(t, 2026, 3, 16, 12, 0)},
		{"in the gap between windows it opens at the next one", severalPerDay, messaging.ChannelChat,
			oslo(t, 2026, 3, 16, 12, 0), false, oslo(t, 2026, 3, 16, 13, 0)},
		{"the second window is open until its own end", severalPerDay, messaging.ChannelChat,
			oslo(t, 2026, 3, 16, 14, 29), true, oslo(t, 2026, 3, 16, 14, 30)},
		{"after the last window it opens next week", severalPerDay, messaging.ChannelChat,
			oslo(t, 2026, 3, 16, 14, 30), false, oslo(t, 2026, 3, 23, 9, 0)},

		// Midnight.
		{"windows touching at midnight are open until the next morning", acrossMidnight, messaging.ChannelChat,
			oslo(t, 2026, 3, 16, 23, 0), true, oslo(t, 2026, 3, 17, 2, 0)},
		{"one second before midnight is still open", acrossMidnight, messaging.ChannelChat,
			oslo(t, 2026, 3, 16, 23, 59).Add(59 * time.Second), true, oslo(t, 2026, 3, 17, 2, 0)},
		{"midnight belongs to the next day's window", acrossMidnight, messaging.ChannelChat,
			oslo(t, 2026, 3, 17, 0, 0), true, oslo(t, 2026, 3, 17, 2, 0)},
		{"a window ending at 24:00 closes at midnight", untilMidnight, messaging.ChannelChat,
			oslo(t, 2026, 3, 16, 23, 0), true, oslo(t, 2026, 3, 17, 0, 0)},
		{"after a window ending at 24:00 it is closed", untilMidnight, messaging.ChannelChat,
			oslo(t, 2026, 3, 17, 0, 0), false, oslo(t, 2026, 3, 23, 22, 0)},

		// Office hours as fallback.
		{"own windows beat office hours", withFallback, messaging.ChannelChat,
			oslo(t, 2026, 3, 16, 11, 0), false, oslo(t, 2026, 3, 23, 9, 0)},
		{"a channel without windows uses office hours", withFallback, messaging.ChannelPhone,
			oslo(t, 2026, 3, 16, 11, 0), true, oslo(t, 2026, 3, 16, 15, 30)},
		{"an empty window list uses office hours", withFallback, messaging.ChannelVideo,
			oslo(t, 2026, 3, 16, 7, 0), false, oslo(t, 2026, 3, 16, 8, 0)},

		// Daylight saving, 2026. Clocks go 02:00 CET → 03:00 CEST on 29 March
		// and 03:00 CEST → 02:00 CET on 25 October (both Sundays).
		{"spring 2026: 01:00–04:00 lasts two hours", sunday(hm(1, 0), hm(4, 0)), messaging.ChannelChat,
			utc(2026, 3, 29, 0, 30), true, utc(2026, 3, 29, 2, 0)}, // 01:30 CET → 04:00 CEST
		{"spring 2026: the skipped hour never opens, nor does the holiday after", sunday(hm(2, 0), hm(3, 0)), messaging.ChannelChat,
			utc(2026, 3, 29, 0, 59), false, utc(2026, 4, 12, 0, 0)}, // 5 April is 1. påskedag; 12 April 02:00 CEST
		{"spring 2026: a window from 02:30 opens at 03:00 CEST", sunday(hm(2, 30), hm(4, 0)), messaging.ChannelChat,
			utc(2026, 3, 29, 0, 59), false, utc(2026, 3, 29, 1, 0)}, // 01:59 CET → 03:00 CEST
		{"autumn 2026: 02:00–03:00 is open in the first 02:30", sunday(hm(2, 0), hm(3, 0)), messaging.ChannelChat,
			utc(2026, 10, 25, 0, 30), true, utc(2026, 10, 25, 2, 0)}, // 02:30 CEST → 03:00 CET
		{"autumn 2026: and in the second 02:30", sunday(hm(2, 0), hm(3, 0)), messaging.ChannelChat,
			utc(2026, 10, 25, 1, 30), true, utc(2026, 10, 25, 2, 0)}, // 02:30 CET → 03:00 CET
		{"autumn 2026: a weekday window the day after is in CET", office(messaging.Calendar{}), messaging.ChannelChat,
			utc(2026, 10, 26, 7, 0), true, utc(2026, 10, 26, 14, 30)}, // 08:00 CET → 15:30 CET
		{"autumn 2026: the same UTC time the week before is in CEST", office(messaging.Calendar{}), messaging.ChannelChat,
			utc(2026, 10, 19, 6, 0), true, utc(2026, 10, 19, 13, 30)}, // 08:00 CEST → 15:30 CEST

		// Daylight saving, 2027: 28 March (also 1. påskedag) and 31 October.
		{"spring 2027: Easter Sunday closes a Sunday window", sunday(hm(1, 0), hm(4, 0)), messaging.ChannelChat,
			utc(2027, 3, 27, 23, 30), false, utc(2027, 4, 3, 23, 0)}, // 00:30 CET; 4 April 01:00 CEST
		{"spring 2027: an open exception 01:00–04:00 lasts two hours", easterOpen27, messaging.ChannelChat,
			utc(2027, 3, 28, 0, 30), true, utc(2027, 3, 28, 2, 0)}, // 01:30 CET → 04:00 CEST
		{"spring 2027: before the change, winter time", chatMon9to15, messaging.ChannelChat,
			utc(2027, 3, 22, 8, 0), true, utc(2027, 3, 22, 14, 0)}, // 09:00 CET → 15:00 CET
		{"spring 2027: after the change, summer time", chatMon9to15, messaging.ChannelChat,
			utc(2027, 4, 5, 7, 0), true, utc(2027, 4, 5, 13, 0)}, // 09:00 CEST → 15:00 CEST
		{"autumn 2027: 02:00–03:00 is open in the second 02:00", sunday(hm(2, 0), hm(3, 0)), messaging.ChannelChat,
			utc(2027, 10, 31, 1, 0), true, utc(2027, 10, 31, 2, 0)}, // 02:00 CET → 03:00 CET
		{"autumn 2027: closed at 03:00 CET, opens the next Sunday", sunday(hm(2, 0), hm(3, 0)), messaging.ChannelChat,
			utc(2027, 10, 31, 2, 0), false, utc(2027, 11, 7, 1, 0)}, // 03:00 CET; 7 Nov 02:00 CET
		{"autumn 2027: Monday after the change opens in CET", chatMon9to15, messaging.ChannelChat,
			utc(2027, 10, 30, 12, 0), false, utc(2027, 11, 1, 8, 0)}, // 09:00 CET
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			open, until := tt.s.OpenAt(tt.ch, tt.at)
			if open != tt.wantOpen || !until.Equal(tt.wantUntil) {
				t.Errorf("OpenAt(%s, %s) = %v, %s, want %v, %s",
					tt.ch, fmtTime(tt.at), open, fmtTime(until), tt.wantOpen, fmtTime(tt.wantUntil))
			}
		})
	}
}

// Norway's public holidays, worked out by hand from Easter Sunday
// (5 April 2026, 28 March 2027): Skjærtorsdag −3, Langfredag −2, 2. påskedag
// +1, Kristi himmelfartsdag +39, 1. pinsedag +49, 2. pinsedag +50.
var holidays2026 = []messaging.Holiday{
	{Date: date(2026, 1, 1), Name: "1. nyttårsdag"},          // Thursday
	{Date: date(2026, 4, 2), Name: "Skjærtorsdag"},           // Thursday
	{Date: date(2026, 4, 3), Name: "Langfredag"},             // Friday
	{Date: date(2026, 4, 5), Name: "1. påskedag"},            // Sunday
	{Date: date(2026, 4, 6), Name: "2. påskedag"},            // Monday
	{Date: date(2026, 5, 1), Name: "1. mai"},                 // Friday
	{Date: date(2026, 5, 14), Name: "Kristi himmelfartsdag"}, // Thursday
	{Date: date(2026, 5, 17), Name: "17. mai"},               // Sunday
	{Date: date(2026, 5, 24), Name: "1. pinsedag"},           // Sunday
	{Date: date(2026, 5, 25), Name: "2. pinsedag"},           // Monday
	{Date: date(2026, 12, 25), Name: "1. juledag"},           // Friday
	{Date: date(2026, 12, 26), Name: "2. juledag"},           // Saturday
}

var holidays2027 = []messaging.Holiday{
	{Date: date(2027, 1, 1), Name: "1. nyttårsdag"},         // Friday
	{Date: date(2027, 3, 25), Name: "Skjærtorsdag"},         // Thursday
	{Date: date(2027, 3, 26), Name: "Langfredag"},           // Friday
	{Date: date(2027, 3, 28), Name: "1. påskedag"},          // Sunday, also the spring DST change
	{Date: date(2027, 3, 29), Name: "2. påskedag"},          // Monday
	{Date: date(2027, 5, 1), Name: "1. mai"},                // Saturday
	{Date: date(2027, 5, 6), Name: "Kristi himmelfartsdag"}, // Thursday
	{Date: date(2027, 5, 16), Name: "1. pinsedag"},          // Sunday
	{Date: date(2027, 5, 17), Name: "17. mai"},              // Monday
	{Date: date(2027, 5, 17), Name: "2. pinsedag"},          // the same Monday
	{Date: date(2027, 12, 25), Name: "1. juledag"},          // Saturday
	{Date: date(2027, 12, 26), Name: "2. juledag"},          // Sunday
}

func TestHolidays(t *testing.T) {
	for _, tt := range []struct {
		year int
		want []messaging.Holiday
	}{{2026, holidays2026}, {2027, holidays2027}} {
		t.Run(fmt.Sprintf("all of %d and nothing else", tt.year), func(t *testing.T) {
			if got := messaging.Holidays(tt.year); !slices.Equal(got, tt.want) {
				t.Errorf("Holidays(%d) = %v, want %v", tt.year, got, tt.want)
			}
		})
	}
	t.Run("the result is a copy", func(t *testing.T) {
		messaging.Holidays(2026)[0].Name = "changed"
		if got := messaging.Holidays(2026)[0].Name; got != "1. nyttårsdag" {
			t.Errorf("Holidays(2026)[0].Name = %q after changing a copy, want %q", got, "1. nyttårsdag")
		}
	})
}

func TestPublicHoliday(t *testing.T) {
	for _, h := range slices.Concat(holidays2026, holidays2027) {
		t.Run(h.Date.String()+" is "+h.Name, func(t *testing.T) {
			name, ok := messaging.PublicHoliday(h.Date)
			// On 2027-05-17 either name is right; the date must be a holiday.
			if !ok || (name != h.Name && h.Date != date(2027, 5, 17)) {
				t.Errorf("PublicHoliday(%s) = %q, %v, want %q, true", h.Date, name, ok, h.Name)
			}
		})
	}
	notHolidays := []messaging.Date{
		date(2026, 12, 24), // julaften: a half day at most
		date(2026, 12, 31), // nyttårsaften
		date(2026, 4, 1),   // the Wednesday before Easter
		date(2026, 4, 4),   // påskeaften
		date(2026, 4, 7),   // the Tuesday after Easter
		date(2026, 5, 16),
		date(2026, 11, 1), // allehelgensdag is not a public holiday
		date(2027, 1, 2),
		date(2027, 3, 24),
		date(2027, 5, 18),
	}
	for _, d := range notHolidays {
		t.Run(d.String()+" is not a holiday", func(t *testing.T) {
			if name, ok := messaging.PublicHoliday(d); ok {
				t.Errorf("PublicHoliday(%s) = %q, true, want false", d, name)
			}
		})
	}
}

func TestSchedule_OpenAt_publicHolidays(t *testing.T) {
	// Windows around the clock on every channel and every weekday, so only
	// the holiday can close them.
	allDay := everyDay(0, messaging.MinutesPerDay)
	s := messaging.Schedule{
		Windows:     map[messaging.Channel][]messaging.Window{messaging.ChannelChat: allDay},
		OfficeHours: allDay,
	}
	for _, h := range slices.Concat(holidays2026, holidays2027) {
		t.Run(h.Name+" "+h.Date.String()+" closes every channel", func(t *testing.T) {
			noon := oslo(t, h.Date.Year, h.Date.Month, h.Date.Day, 12, 0)
			for _, ch := range messaging.Channels() {
				if open, until := s.OpenAt(ch, noon); open {
					t.Errorf("OpenAt(%s, %s) = true, %s, want false", ch, fmtTime(noon), fmtTime(until))
				}
			}
		})
	}
	t.Run("the day before Easter is open", func(t *testing.T) {
		at := oslo(t, 2026, 4, 4, 12, 0)
		want := oslo(t, 2026, 4, 5, 0, 0)
		if open, until := s.OpenAt(messaging.ChannelChat, at); !open || !until.Equal(want) {
			t.Errorf("OpenAt(chat, %s) = %v, %s, want true, %s", fmtTime(at), open, fmtTime(until), fmtTime(want))
		}
	})
}

func TestSchedule_OpenAt_halfDaysClosuresAndExceptions(t *testing.T) {
	noon := messaging.HalfDay{Shortened: true, CloseMin: hm(12, 0)}
	closed := messaging.HalfDay{Shortened: true, CloseMin: 0}
	halfDays := office(messaging.Calendar{ChristmasEve: noon, NewYearsEve: noon})
	eveClosed := office(messaging.Calendar{ChristmasEve: closed, NewYearsEve: closed})
	ordinary := office(messaging.Calendar{})
	closure := office(messaging.Calendar{ClosureDays: []messaging.Date{date(2026, 6, 19)}})

	withExceptions := office(messaging.Calendar{})
	withExceptions.Exceptions = []messaging.Exception{
		{Date: date(2026, 3, 10), StartMin: 0, EndMin: messaging.MinutesPerDay},                    // Tuesday, closed all day
		{Date: date(2026, 3, 11), StartMin: hm(13, 0), EndMin: hm(15, 0)},                          // Wednesday afternoon off
		{Date: date(2026, 3, 12), Channel: messaging.ChannelPhone, StartMin: 0, EndMin: hm(12, 0)}, // phone only
		{Date: date(2026, 3, 14), Open: true, StartMin: hm(10, 0), EndMin: hm(12, 0)},              // Saturday
		{Date: date(2026, 5, 14), Open: true, StartMin: hm(10, 0), EndMin: hm(12, 0)},              // Kristi himmelfartsdag
		{Date: date(2026, 3, 13), Open: true, StartMin: hm(15, 30), EndMin: hm(17, 0)},             // Friday, extends the day
	}

	tests := []struct {
		name      string
		s         messaging.Schedule
		ch        messaging.Channel
		at        time.Time
		wantOpen  bool
		wantUntil time.Time
	}{
		// 24 December 2026 is a Thursday; 25 and 26 are holidays.
		{"Christmas Eve half day is open until 12:00", halfDays, messaging.ChannelChat,
			oslo(t, 2026, 12, 24, 10, 0), true, utc(2026, 12, 24, 11, 0)},
		{"Christmas Eve half day is closed after 12:00 until Monday", halfDays, messaging.ChannelChat,
			oslo(t, 2026, 12, 24, 12, 0), false, utc(2026, 12, 28, 7, 0)},
		{"Christmas Eve configured closed is closed all day", eveClosed, messaging.ChannelChat,
			oslo(t, 2026, 12, 24, 9, 0), false, utc(2026, 12, 28, 7, 0)},
		{"Christmas Eve not shortened is an ordinary day", ordinary, messaging.ChannelChat,
			oslo(t, 2026, 12, 24, 13, 0), true, utc(2026, 12, 24, 14, 30)},
		{"New Year's Eve half day is open until 12:00", halfDays, messaging.ChannelPhone,
			oslo(t, 2026, 12, 31, 11, 59), true, utc(2026, 12, 31, 11, 0)},
		{"New Year's Eve half day reopens after the weekend", halfDays, messaging.ChannelPhone,
			oslo(t, 2026, 12, 31, 13, 0), false, utc(2027, 1, 4, 7, 0)},
		{"New Year's Eve configured closed opens on 4 January", eveClosed, messaging.ChannelPhone,
			oslo(t, 2026, 12, 30, 16, 0), false, utc(2027, 1, 4, 7, 0)},

		// 19 June 2026 is a Friday.
		{"a closure day is closed", closure, messaging.ChannelChat,
			oslo(t, 2026, 6, 19, 10, 0), false, utc(2026, 6, 22, 6, 0)}, // Monday 08:00 CEST
		{"the day before a closure day reopens after it", closure, messaging.ChannelChat,
			oslo(t, 2026, 6, 18, 16, 0), false, utc(2026, 6, 22, 6, 0)},

		// Exceptions, March 2026: 10th is a Tuesday.
		{"closed all day by exception", withExceptions, messaging.ChannelChat,
			oslo(t, 2026, 3, 10, 10, 0), false, oslo(t, 2026, 3, 11, 8, 0)},
		{"open until a closed exception starts", withExceptions, messaging.ChannelChat,
			oslo(t, 2026, 3, 11, 12, 0), true, oslo(t, 2026, 3, 11, 13, 0)},
		{"inside a closed exception it reopens when it ends", withExceptions, messaging.ChannelChat,
			oslo(t, 2026, 3, 11, 14, 0), false, oslo(t, 2026, 3, 11, 15, 0)},
		{"a channel's exception leaves other channels alone", withExceptions, messaging.ChannelChat,
			oslo(t, 2026, 3, 12, 9, 0), true, oslo(t, 2026, 3, 12, 15, 30)},
		{"a channel's exception closes that channel", withExceptions, messaging.ChannelPhone,
			oslo(t, 2026, 3, 12, 9, 0), false, oslo(t, 2026, 3, 12, 12, 0)},
		{"an open exception extends the day", withExceptions, messaging.ChannelChat,
			oslo(t, 2026, 3, 13, 15, 0), true, oslo(t, 2026, 3, 13, 17, 0)},
		{"an open exception opens a Saturday", withExceptions, messaging.ChannelVideo,
			oslo(t, 2026, 3, 14, 9, 0), false, oslo(t, 2026, 3, 14, 10, 0)},
		{"an open exception beats a holiday", withExceptions, messaging.ChannelMeeting,
			oslo(t, 2026, 5, 14, 11, 0), true, oslo(t, 2026, 5, 14, 12, 0)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			open, until := tt.s.OpenAt(tt.ch, tt.at)
			if open != tt.wantOpen || !until.Equal(tt.wantUntil) {
				t.Errorf("OpenAt(%s, %s) = %v, %s, want %v, %s",
					tt.ch, fmtTime(tt.at), open, fmtTime(until), tt.wantOpen, fmtTime(tt.wantUntil))
			}
		})
	}
}

func TestSchedule_Absent(t *testing.T) {
	single := office(messaging.Calendar{})
	// 3–14 August 2026 are Monday to Friday two weeks later.
	single.Absences = []messaging.Absence{{From: date(2026, 8, 3), To: date(2026, 8, 14), SubstituteID: "ola"}}
	chained := office(messaging.Calendar{})
	chained.Absences = []messaging.Absence{
		{From: date(2026, 8, 8), To: date(2026, 8, 14), SubstituteID: "kari"},
		{From: date(2026, 8, 3), To: date(2026, 8, 7), SubstituteID: "ola"},
	}
	olaToFourteenth := messaging.Absence{From: date(2026, 8, 3), To: date(2026, 8, 14), SubstituteID: "ola"}

	tests := []struct {
		name   string
		s      messaging.Schedule
		at     time.Time
		want   messaging.Absence
		wantOK bool
	}{
		{"inside the absence names the substitute", single, oslo(t, 2026, 8, 10, 12, 0), olaToFourteenth, true},
		{"the first day counts from local midnight", single, utc(2026, 8, 2, 22, 30), olaToFourteenth, true}, // 00:30 CEST
		{"the evening before is not absent", single, utc(2026, 8, 2, 21, 59), messaging.Absence{}, false},    // 23:59 CEST
		{"the last day is inclusive", single, oslo(t, 2026, 8, 14, 23, 59), olaToFourteenth, true},
		{"the day after is back", single, oslo(t, 2026, 8, 15, 0, 0), messaging.Absence{}, false},
		{"following absences report the last day of the run", chained, oslo(t, 2026, 8, 5, 12, 0), olaToFourteenth, true},
		{"the later absence names its own substitute", chained, oslo(t, 2026, 8, 10, 12, 0),
			messaging.Absence{From: date(2026, 8, 8), To: date(2026, 8, 14), SubstituteID: "kari"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := tt.s.Absent(tt.at)
			if got != tt.want || ok != tt.wantOK {
				t.Errorf("Absent(%s) = %+v, %v, want %+v, %v", fmtTime(tt.at), got, ok, tt.want, tt.wantOK)
			}
		})
	}

	t.Run("an absence closes every channel until the first window after it", func(t *testing.T) {
		s := single
		s.Exceptions = []messaging.Exception{{Date: date(2026, 8, 12), Open: true, StartMin: hm(8, 0), EndMin: hm(9, 0)}}
		at := oslo(t, 2026, 8, 10, 10, 0)
		want := utc(2026, 8, 17, 6, 0) // Monday 08:00 CEST
		for _, ch := range messaging.Channels() {
			if open, until := s.OpenAt(ch, at); open || !until.Equal(want) {
				t.Errorf("OpenAt(%s, %s) = %v, %s, want false, %s", ch, fmtTime(at), open, fmtTime(until), fmtTime(want))
			}
		}
	})
}

func TestSchedule_NextOpening(t *testing.T) {
	never := messaging.Schedule{}
	tests := []struct {
		name   string
		s      messaging.Schedule
		at     time.Time
		want   time.Time
		wantOK bool
	}{
		{"open now is now", office(messaging.Calendar{}), oslo(t, 2026, 3, 18, 10, 0), oslo(t, 2026, 3, 18, 10, 0), true},
		{"later the same morning", office(messaging.Calendar{}), oslo(t, 2026, 3, 18, 6, 0), utc(2026, 3, 18, 7, 0), true},
		{"across a weekend", office(messaging.Calendar{}), oslo(t, 2026, 3, 20, 16, 0), utc(2026, 3, 23, 7, 0), true},                   // Mon 08:00 CET
		{"across a weekend and the spring change", office(messaging.Calendar{}), utc(2026, 3, 27, 15, 0), utc(2026, 3, 30, 6, 0), true}, // Mon 08:00 CEST
		{"across Easter 2026", office(messaging.Calendar{}), oslo(t, 2026, 4, 1, 16, 0), utc(2026, 4, 7, 6, 0), true},                   // Tue 08:00 CEST
		{"across Easter 2027 and the spring change", office(messaging.Calendar{}), utc(2027, 3, 24, 15, 0), utc(2027, 3, 30, 6, 0), true},
		{"across the autumn change 2027", office(messaging.Calendar{}), utc(2027, 10, 29, 14, 0), utc(2027, 11, 1, 7, 0), true}, // Mon 08:00 CET
		{"across Christmas with closed eves", office(messaging.Calendar{ChristmasEve: messaging.HalfDay{Shortened: true}}),
			oslo(t, 2026, 12, 23, 16, 0), utc(2026, 12, 28, 7, 0), true},
		{"a schedule without windows never opens", never, oslo(t, 2026, 3, 18, 10, 0), time.Time{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := tt.s.NextOpening(messaging.ChannelChat, tt.at)
			if !got.Equal(tt.want) || ok != tt.wantOK {
				t.Errorf("NextOpening(chat, %s) = %s, %v, want %s, %v", fmtTime(tt.at), fmtTime(got), ok, fmtTime(tt.want), tt.wantOK)
			}
		})
	}
}

func TestSchedule_AnswerBy(t *testing.T) {
	plain := office(messaging.Calendar{})
	halfDays := office(messaging.Calendar{
		ChristmasEve: messaging.HalfDay{Shortened: true, CloseMin: hm(12, 0)},
		NewYearsEve:  messaging.HalfDay{Shortened: true, CloseMin: hm(12, 0)},
	})
	eveClosed := office(messaging.Calendar{
		ChristmasEve: messaging.HalfDay{Shortened: true},
		NewYearsEve:  messaging.HalfDay{Shortened: true},
	})
	closure := office(messaging.Calendar{ClosureDays: []messaging.Date{date(2026, 6, 19)}})
	noOfficeHours := messaging.Schedule{}

	tests := []struct {
		name string
		s    messaging.Schedule
		at   time.Time
		n    int
		want time.Time
	}{
		{"one working day from a Tuesday is Wednesday's close", plain, oslo(t, 2026, 3, 17, 9, 0), 1, utc(2026, 3, 18, 14, 30)},
		{"the hour of sending does not matter", plain, oslo(t, 2026, 3, 17, 23, 0), 1, utc(2026, 3, 18, 14, 30)},
		{"from Friday, one working day is Monday", plain, oslo(t, 2026, 3, 20, 10, 0), 1, utc(2026, 3, 23, 14, 30)},
		{"from a Saturday, one working day is Monday", plain, oslo(t, 2026, 3, 21, 10, 0), 1, utc(2026, 3, 23, 14, 30)},
		{"across the spring change the close is in CEST", plain, oslo(t, 2026, 3, 27, 10, 0), 1, utc(2026, 3, 30, 13, 30)},
		{"zero working days counts as one", plain, oslo(t, 2026, 3, 17, 9, 0), 0, utc(2026, 3, 18, 14, 30)},
		{"more than 400 working days is refused", plain, oslo(t, 2026, 3, 17, 9, 0), 401, time.Time{}},

		// Easter 2026: 2 (Thu) to 6 (Mon) April are closed.
		{"two working days from Skjærtorsdag land after Easter Monday", plain, oslo(t, 2026, 4, 2, 10, 0), 2, utc(2026, 4, 8, 13, 30)},
		{"two working days from the Wednesday before Easter", plain, oslo(t, 2026, 4, 1, 10, 0), 2, utc(2026, 4, 8, 13, 30)},
		{"one working day from the Wednesday before Easter is the Tuesday after", plain, oslo(t, 2026, 4, 1, 10, 0), 1, utc(2026, 4, 7, 13, 30)},
		// Easter 2027 (25–29 March) with the spring change on Easter Sunday.
		{"one working day from the Wednesday before Easter 2027", plain, utc(2027, 3, 24, 9, 0), 1, utc(2027, 3, 30, 13, 30)},
		{"Kristi himmelfartsdag is skipped", plain, oslo(t, 2026, 5, 13, 10, 0), 1, utc(2026, 5, 15, 13, 30)},
		{"17. mai and 2. pinsedag 2027 on one Monday are skipped", plain, oslo(t, 2027, 5, 14, 10, 0), 1, utc(2027, 5, 18, 13, 30)},
		{"a closure day is skipped", closure, oslo(t, 2026, 6, 18, 10, 0), 1, utc(2026, 6, 22, 13, 30)},

		// Christmas 2026: 24 Thu, 25 Fri, 26 Sat; 31 Thu, 1 January Fri.
		{"a half Christmas Eve counts and closes at 12:00", halfDays, oslo(t, 2026, 12, 23, 10, 0), 1, utc(2026, 12, 24, 11, 0)},
		{"two working days from 23 December with half days", halfDays, oslo(t, 2026, 12, 23, 10, 0), 2, utc(2026, 12, 28, 14, 30)},
		{"two working days from 23 December with closed eves", eveClosed, oslo(t, 2026, 12, 23, 10, 0), 2, utc(2026, 12, 29, 14, 30)},
		{"ordinary eves are full working days", plain, oslo(t, 2026, 12, 23, 10, 0), 1, utc(2026, 12, 24, 14, 30)},
		{"two working days from 30 December reach into January", halfDays, oslo(t, 2026, 12, 30, 10, 0), 2, utc(2027, 1, 4, 14, 30)},
		{"with closed eves, one working day from 30 December is 4 January", eveClosed, oslo(t, 2026, 12, 30, 10, 0), 1, utc(2027, 1, 4, 14, 30)},
		{"from Christmas Day, three working days", halfDays, oslo(t, 2026, 12, 25, 10, 0), 3, utc(2026, 12, 30, 14, 30)},

		{"without office hours the day ends at midnight", noOfficeHours, oslo(t, 2026, 3, 17, 9, 0), 1, oslo(t, 2026, 3, 19, 0, 0)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.s.AnswerBy(tt.at, tt.n); !got.Equal(tt.want) {
				t.Errorf("AnswerBy(%s, %d) = %s, want %s", fmtTime(tt.at), tt.n, fmtTime(got), fmtTime(tt.want))
			}
		})
	}
}

func TestBarnevernvakt_OpenAt(t *testing.T) {
	plain := fjordvikVakt(messaging.Calendar{})
	halfDays := fjordvikVakt(messaging.Calendar{ChristmasEve: messaging.HalfDay{Shortened: true, CloseMin: hm(12, 0)}})
	closure := fjordvikVakt(messaging.Calendar{ClosureDays: []messaging.Date{date(2026, 6, 19)}})

	tests := []struct {
		name      string
		b         messaging.Barnevernvakt
		at        time.Time
		wantOpen  bool
		wantUntil time.Time
	}{
		{"a weekday afternoon is closed until 15:30", plain, oslo(t, 2026, 3, 10, 12, 0), false, oslo(t, 2026, 3, 10, 15, 30)},
		{"a weekday evening is open until 08:00 the next morning", plain, oslo(t, 2026, 3, 10, 16, 0), true, oslo(t, 2026, 3, 11, 8, 0)},
		{"a weekday early morning is open until 08:00", plain, oslo(t, 2026, 3, 11, 7, 0), true, oslo(t, 2026, 3, 11, 8, 0)},
		{"08:00 is closed again", plain, oslo(t, 2026, 3, 11, 8, 0), false, oslo(t, 2026, 3, 11, 15, 30)},
		{"Friday evening is open until Monday 08:00", plain, oslo(t, 2026, 3, 13, 16, 0), true, oslo(t, 2026, 3, 16, 8, 0)},
		{"a Saturday is open until Monday 08:00", plain, oslo(t, 2026, 3, 14, 3, 0), true, oslo(t, 2026, 3, 16, 8, 0)},
		{"from the Wednesday before Easter until the Tuesday after", plain, oslo(t, 2026, 4, 1, 16, 0), true, utc(2026, 4, 7, 6, 0)},
		{"a holiday on a weekday is open all day", plain, oslo(t, 2026, 5, 14, 12, 0), true, utc(2026, 5, 15, 6, 0)},

		// All four daylight-saving weekends of 2026 and 2027.
		{"spring 2026 weekend", plain, utc(2026, 3, 27, 15, 0), true, utc(2026, 3, 30, 6, 0)},   // Fri 16:00 CET → Mon 08:00 CEST
		{"autumn 2026 weekend", plain, utc(2026, 10, 23, 14, 0), true, utc(2026, 10, 26, 7, 0)}, // Fri 16:00 CEST → Mon 08:00 CET
		{"spring 2027 weekend, which is Easter", plain, utc(2027, 3, 24, 15, 0), true, utc(2027, 3, 30, 6, 0)},
		{"autumn 2027 weekend", plain, utc(2027, 10, 29, 14, 0), true, utc(2027, 11, 1, 7, 0)},
		{"inside the repeated hour of autumn 2027", plain, utc(2027, 10, 31, 0, 30), true, utc(2027, 11, 1, 7, 0)}, // 02:30 CEST

		{"Christmas Eve half day is closed before 12:00", halfDays, oslo(t, 2026, 12, 24, 11, 0), false, utc(2026, 12, 24, 11, 0)},
		{"Christmas Eve half day is covered from 12:00 until after Christmas", halfDays, oslo(t, 2026, 12, 24, 13, 0), true, utc(2026, 12, 28, 7, 0)},
		{"a closure day is covered around the clock", closure, oslo(t, 2026, 6, 18, 16, 0), true, utc(2026, 6, 22, 6, 0)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			open, until := tt.b.OpenAt(tt.at)
			if open != tt.wantOpen || !until.Equal(tt.wantUntil) {
				t.Errorf("OpenAt(%s) = %v, %s, want %v, %s", fmtTime(tt.at), open, fmtTime(until), tt.wantOpen, fmtTime(tt.wantUntil))
			}
		})
	}
}

func TestBarnevernvakt_Windows(t *testing.T) {
	got := fjordvikVakt(messaging.Calendar{}).Windows()
	var want []messaging.Window
	for wd := time.Sunday; wd <= time.Saturday; wd++ {
		if wd == time.Sunday || wd == time.Saturday {
			want = append(want, messaging.Window{Weekday: wd, StartMin: 0, EndMin: 1440})
			continue
		}
		want = append(want,
			messaging.Window{Weekday: wd, StartMin: 0, EndMin: 480},
			messaging.Window{Weekday: wd, StartMin: 930, EndMin: 1440})
	}
	if !slices.Equal(got, want) {
		t.Errorf("Windows() = %v, want %v", got, want)
	}
	if errs := messaging.ValidateWindows(got); len(errs) != 0 {
		t.Errorf("ValidateWindows(Windows()) = %v, want none", errs)
	}
}

func TestValidateWindows(t *testing.T) {
	mon, tue := time.Monday, time.Tuesday
	tests := []struct {
		name string
		in   []messaging.Window
		want []messaging.FieldError
	}{
		{"several windows a day, touching, are fine", []messaging.Window{
			{Weekday: mon, StartMin: hm(9, 0), EndMin: hm(11, 0)},
			{Weekday: mon, StartMin: hm(11, 0), EndMin: hm(12, 0)},
			{Weekday: mon, StartMin: hm(22, 0), EndMin: 1440},
			{Weekday: tue, StartMin: 0, EndMin: hm(2, 0)},
		}, nil},
		{"end before start", []messaging.Window{{Weekday: mon, StartMin: hm(10, 0), EndMin: hm(9, 0)}},
			[]messaging.FieldError{{Field: "windows[0].end", MessageID: messaging.AvailabilityEndBeforeStart}}},
		{"end equal to start", []messaging.Window{{Weekday: mon, StartMin: hm(10, 0), EndMin: hm(10, 0)}},
			[]messaging.FieldError{{Field: "windows[0].end", MessageID: messaging.AvailabilityEndBeforeStart}}},
		{"a window across midnight must be split", []messaging.Window{{Weekday: mon, StartMin: hm(22, 0), EndMin: hm(2, 0)}},
			[]messaging.FieldError{{Field: "windows[0].end", MessageID: messaging.AvailabilityEndBeforeStart}}},
		{"times out of range", []messaging.Window{{Weekday: mon, StartMin: -1, EndMin: 1441}},
			[]messaging.FieldError{
				{Field: "windows[0].start", MessageID: messaging.AvailabilityTimeOutOfRange},
				{Field: "windows[0].end", MessageID: messaging.AvailabilityTimeOutOfRange},
			}},
		{"a start at 24:00 is out of range", []messaging.Window{{Weekday: mon, StartMin: 1440, EndMin: 1440}},
			[]messaging.FieldError{{Field: "windows[0].start", MessageID: messaging.AvailabilityTimeOutOfRange}}},
		{"an unknown weekday", []messaging.Window{{Weekday: 7, StartMin: hm(9, 0), EndMin: hm(10, 0)}},
			[]messaging.FieldError{{Field: "windows[0].weekday", MessageID: messaging.AvailabilityWeekdayInvalid}}},
		{"overlap is reported on the later window", []messaging.Window{
			{Weekday: mon, StartMin: hm(9, 0), EndMin: hm(11, 0)},
			{Weekday: tue, StartMin: hm(10, 0), EndMin: hm(12, 0)},
			{Weekday: mon, StartMin: hm(10, 0), EndMin: hm(12, 0)},
		}, []messaging.FieldError{{Field: "windows[2].start", MessageID: messaging.AvailabilityOverlap}}},
		{"overlap is reported on the later window whatever the input order", []messaging.Window{
			{Weekday: mon, StartMin: hm(10, 0), EndMin: hm(12, 0)},
			{Weekday: mon, StartMin: hm(9, 0), EndMin: hm(11, 0)},
		}, []messaging.FieldError{{Field: "windows[0].start", MessageID: messaging.AvailabilityOverlap}}},
		{"a window inside another overlaps", []messaging.Window{
			{Weekday: mon, StartMin: hm(8, 0), EndMin: hm(16, 0)},
			{Weekday: mon, StartMin: hm(9, 0), EndMin: hm(10, 0)},
		}, []messaging.FieldError{{Field: "windows[1].start", MessageID: messaging.AvailabilityOverlap}}},
		{"identical windows overlap", []messaging.Window{
			{Weekday: mon, StartMin: hm(9, 0), EndMin: hm(10, 0)},
			{Weekday: mon, StartMin: hm(9, 0), EndMin: hm(10, 0)},
		}, []messaging.FieldError{{Field: "windows[1].start", MessageID: messaging.AvailabilityOverlap}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := messaging.ValidateWindows(tt.in); !slices.Equal(got, tt.want) {
				t.Errorf("ValidateWindows(%v) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}

func TestValidateExceptions(t *testing.T) {
	day := func(d messaging.Date, start, end int) messaging.Exception {
		return messaging.Exception{Date: d, StartMin: start, EndMin: end}
	}
	spring26, autumn26 := date(2026, 3, 29), date(2026, 10, 25)
	spring27, autumn27 := date(2027, 3, 28), date(2027, 10, 31)
	tests := []struct {
		name string
		in   []messaging.Exception
		want []messaging.FieldError
	}{
		{"whole days are fine, even on daylight-saving days", []messaging.Exception{
			day(spring26, 0, 1440), day(autumn26, 0, 1440), day(spring27, 0, 1440), day(autumn27, 0, 1440),
		}, nil},
		{"times just outside the changes are fine", []messaging.Exception{
			day(spring26, hm(1, 59), hm(3, 0)), day(autumn26, hm(1, 0), hm(1, 59)), day(autumn27, hm(3, 0), hm(4, 0)),
		}, nil},
		{"a date that does not exist", []messaging.Exception{day(date(2026, 2, 29), 0, 1440)},
			[]messaging.FieldError{{Field: "exceptions[0].date", MessageID: messaging.AvailabilityDateInvalid}}},
		{"29 February exists in a leap year", []messaging.Exception{day(date(2028, 2, 29), 0, 1440)}, nil},
		{"02:30 on 29 March 2026 does not exist", []messaging.Exception{day(spring26, hm(2, 30), hm(4, 0))},
			[]messaging.FieldError{{Field: "exceptions[0].start", MessageID: messaging.AvailabilityTimeDoesNotExist}}},
		{"an end of 02:00 on 28 March 2027 does not exist", []messaging.Exception{day(spring27, hm(1, 0), hm(2, 0))},
			[]messaging.FieldError{{Field: "exceptions[0].end", MessageID: messaging.AvailabilityTimeDoesNotExist}}},
		{"02:30 on 25 October 2026 occurs twice", []messaging.Exception{day(autumn26, hm(2, 30), hm(4, 0))},
			[]messaging.FieldError{{Field: "exceptions[0].start", MessageID: messaging.AvailabilityTimeAmbiguous}}},
		{"02:00 and 02:59 on 31 October 2027 occur twice", []messaging.Exception{day(autumn27, hm(2, 0), hm(2, 59))},
			[]messaging.FieldError{
				{Field: "exceptions[0].start", MessageID: messaging.AvailabilityTimeAmbiguous},
				{Field: "exceptions[0].end", MessageID: messaging.AvailabilityTimeAmbiguous},
			}},
		{"02:30 on an ordinary Sunday is fine", []messaging.Exception{day(date(2026, 3, 22), hm(2, 30), hm(4, 0))}, nil},
		{"end before start", []messaging.Exception{day(date(2026, 3, 10), hm(14, 0), hm(13, 0))},
			[]messaging.FieldError{{Field: "exceptions[0].end", MessageID: messaging.AvailabilityEndBeforeStart}}},
		{"an unknown channel", []messaging.Exception{{Date: date(2026, 3, 10), Channel: "fax", StartMin: 0, EndMin: 60}},
			[]messaging.FieldError{{Field: "exceptions[0].channel", MessageID: messaging.AvailabilityChannelInvalid}}},
		{"an all-channel exception overlaps a channel's", []messaging.Exception{
			day(date(2026, 3, 10), hm(9, 0), hm(12, 0)),
			{Date: date(2026, 3, 10), Channel: messaging.ChannelChat, Open: true, StartMin: hm(11, 0), EndMin: hm(13, 0)},
		}, []messaging.FieldError{{Field: "exceptions[1].start", MessageID: messaging.AvailabilityOverlap}}},
		{"different channels or dates do not overlap", []messaging.Exception{
			{Date: date(2026, 3, 10), Channel: messaging.ChannelChat, StartMin: hm(9, 0), EndMin: hm(12, 0)},
			{Date: date(2026, 3, 10), Channel: messaging.ChannelPhone, StartMin: hm(9, 0), EndMin: hm(12, 0)},
			day(date(2026, 3, 11), hm(9, 0), hm(12, 0)),
		}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := messaging.ValidateExceptions(tt.in); !slices.Equal(got, tt.want) {
				t.Errorf("ValidateExceptions(%v) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}

func TestValidateAbsences(t *testing.T) {
	tests := []struct {
		name string
		in   []messaging.Absence
		want []messaging.FieldError
	}{
		{"one day and following absences are fine", []messaging.Absence{
			{From: date(2026, 8, 3), To: date(2026, 8, 3)},
			{From: date(2026, 8, 4), To: date(2026, 8, 14), SubstituteID: "ola"},
		}, nil},
		{"to before from", []messaging.Absence{{From: date(2026, 8, 14), To: date(2026, 8, 3)}},
			[]messaging.FieldError{{Field: "absences[0].to", MessageID: messaging.AvailabilityToBeforeFrom}}},
		{"dates that do not exist", []messaging.Absence{{From: date(2026, 4, 31), To: date(2026, 13, 1)}},
			[]messaging.FieldError{
				{Field: "absences[0].from", MessageID: messaging.AvailabilityDateInvalid},
				{Field: "absences[0].to", MessageID: messaging.AvailabilityDateInvalid},
			}},
		{"overlapping absences", []messaging.Absence{
			{From: date(2026, 8, 10), To: date(2026, 8, 20)},
			{From: date(2026, 8, 3), To: date(2026, 8, 10)},
		}, []messaging.FieldError{{Field: "absences[0].from", MessageID: messaging.AvailabilityOverlap}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := messaging.ValidateAbsences(tt.in); !slices.Equal(got, tt.want) {
				t.Errorf("ValidateAbsences(%v) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}

func TestSchedule_Validate(t *testing.T) {
	s := messaging.Schedule{
		Windows: map[messaging.Channel][]messaging.Window{
			messaging.ChannelPhone: {{Weekday: time.Monday, StartMin: hm(10, 0), EndMin: hm(9, 0)}},
			messaging.ChannelChat:  {{Weekday: time.Monday, StartMin: hm(9, 0), EndMin: hm(10, 0)}},
			"fax":                  {{Weekday: time.Monday, StartMin: hm(9, 0), EndMin: hm(10, 0)}},
		},
		OfficeHours: []messaging.Window{{Weekday: time.Monday, StartMin: hm(8, 0), EndMin: 1441}},
		Exceptions:  []messaging.Exception{{Date: date(2026, 2, 30), StartMin: 0, EndMin: 1440}},
		Absences:    []messaging.Absence{{From: date(2026, 8, 14), To: date(2026, 8, 3)}},
		Calendar: messaging.Calendar{
			ChristmasEve: messaging.HalfDay{Shortened: true, CloseMin: 1440},
			NewYearsEve:  messaging.HalfDay{Shortened: true, CloseMin: hm(13, 0)},
			ClosureDays:  []messaging.Date{date(2026, 6, 19), date(2026, 6, 31)},
		},
	}
	want := []messaging.FieldError{
		{Field: "fax.windows", MessageID: messaging.AvailabilityChannelInvalid},
		{Field: "phone.windows[0].end", MessageID: messaging.AvailabilityEndBeforeStart},
		{Field: "office_hours[0].end", MessageID: messaging.AvailabilityTimeOutOfRange},
		{Field: "exceptions[0].date", MessageID: messaging.AvailabilityDateInvalid},
		{Field: "absences[0].to", MessageID: messaging.AvailabilityToBeforeFrom},
		{Field: "calendar.christmas_eve", MessageID: messaging.AvailabilityTimeOutOfRange},
		{Field: "calendar.closure_days[1]", MessageID: messaging.AvailabilityDateInvalid},
	}
	if got := s.Validate(); !slices.Equal(got, want) {
		t.Errorf("Validate() = %v, want %v", got, want)
	}
	if got := office(messaging.Calendar{}).Validate(); len(got) != 0 {
		t.Errorf("Validate() of the plain office = %v, want none", got)
	}
}

func TestCalendar_WorkingDay(t *testing.T) {
	c := messaging.Calendar{
		ChristmasEve: messaging.HalfDay{Shortened: true, CloseMin: hm(12, 0)},
		NewYearsEve:  messaging.HalfDay{Shortened: true},
		ClosureDays:  []messaging.Date{date(2026, 6, 19)},
	}
	tests := []struct {
		name string
		d    messaging.Date
		want bool
	}{
		{"an ordinary Tuesday", date(2026, 3, 17), true},
		{"a Saturday", date(2026, 3, 21), false},
		{"a Sunday", date(2026, 3, 22), false},
		{"Langfredag", date(2026, 4, 3), false},
		{"a closure day", date(2026, 6, 19), false},
		{"a half Christmas Eve", date(2026, 12, 24), true},
		{"a closed New Year's Eve", date(2026, 12, 31), false},
		{"17. mai on a Monday", date(2027, 5, 17), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := c.WorkingDay(tt.d); got != tt.want {
				t.Errorf("WorkingDay(%s) = %v, want %v", tt.d, got, tt.want)
			}
		})
	}
}

func TestDate(t *testing.T) {
	t.Run("DateOf reads the Oslo date, not the UTC one", func(t *testing.T) {
		at := utc(2026, 3, 28, 23, 30) // 00:30 CET on the 29th
		if got, want := messaging.DateOf(at), date(2026, 3, 29); got != want {
			t.Errorf("DateOf(%s) = %s, want %s", at.Format(time.RFC3339), got, want)
		}
	})
	t.Run("ParseDate refuses dates that do not exist", func(t *testing.T) {
		for _, s := range []string{"2026-02-30", "2026-13-01", "2026-4-1", ""} {
			if d, err := messaging.ParseDate(s); err == nil {
				t.Errorf("ParseDate(%q) = %s, nil, want an error", s, d)
			}
		}
	})
	t.Run("ParseDate and String round-trip", func(t *testing.T) {
		d, err := messaging.ParseDate("2028-02-29")
		if err != nil || d != date(2028, 2, 29) || d.String() != "2028-02-29" {
			t.Errorf("ParseDate(%q) = %s, %v, want 2028-02-29, nil", "2028-02-29", d, err)
		}
	})
	t.Run("AddDays crosses months and years", func(t *testing.T) {
		if got, want := date(2026, 12, 30).AddDays(3), date(2027, 1, 2); got != want {
			t.Errorf("AddDays(3) from 2026-12-30 = %s, want %s", got, want)
		}
		if got, want := date(2028, 3, 1).AddDays(-1), date(2028, 2, 29); got != want {
			t.Errorf("AddDays(-1) from 2028-03-01 = %s, want %s", got, want)
		}
	})
	t.Run("Valid", func(t *testing.T) {
		for _, tt := range []struct {
			d    messaging.Date
			want bool
		}{{date(2026, 2, 28), true}, {date(2026, 2, 29), false}, {date(2026, 0, 1), false}, {date(0, 1, 1), false}} {
			if got := tt.d.Valid(); got != tt.want {
				t.Errorf("%+v.Valid() = %v, want %v", tt.d, got, tt.want)
			}
		}
	})
}
