package messaging

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
)

// This file stores what availability.go computes with: each caseworker's
// weekly windows, date exceptions and absences, and each office's hours,
// calendar and barnevernvakt (schema: portal/db migration
// 0005_availability.sql). The loaders put a Schedule together; deciding
// anything from it is left to availability.go.

// AvailabilitySubstituteInvalid is the FieldError message ID for an absence
// whose substitute is not a colleague who can answer (a member of staff of
// the same office, other than the absent person).
const AvailabilitySubstituteInvalid = "availability_error_substitute_invalid"

// AvailabilityStore reads and writes availability settings. Like Store it
// writes portable DML only and does no access control: the portal decides
// who may edit whose settings.
type AvailabilityStore struct {
	db *sqlx.DB
}

// NewAvailabilityStore returns an AvailabilityStore over an opened,
// migrated database.
func NewAvailabilityStore(db *sqlx.DB) *AvailabilityStore {
	return &AvailabilityStore{db: db}
}

// Settings are the availability settings a caseworker edits.
type Settings struct {
	// Windows are the weekly windows per channel. A channel without any
	// follows the office's hours.
	Windows    map[Channel][]Window
	Exceptions []Exception
	Absences   []Absence
}

// Validate checks s as Schedule.Validate does; field names are the same
// ("chat.windows[0].end", "exceptions[1].date", "absences[0].to").
func (s Settings) Validate() []FieldError {
	return Schedule{Windows: s.Windows, Exceptions: s.Exceptions, Absences: s.Absences}.Validate()
}

// OfficeSettings are an office's own hours and day rules.
type OfficeSettings struct {
	// Hours are the office's weekly opening hours.
	Hours    []Window
	Calendar Calendar
	// VaktEveningMin and VaktMorningMin are the barnevernvakt's weekday
	// hours (see Barnevernvakt).
	VaktEveningMin int
	VaktMorningMin int
	// AnswerDays is the answer time promised to families, in working days.
	AnswerDays int
}

// DefaultOfficeSettings are the settings of an office that has stored none:
// open 08:00–15:30 on weekdays, the barnevernvakt from 15:30 to 08:00,
// answers within two working days, and 24 and 31 December ordinary working
// days. An office without stored hours gets these hours rather than none,
// because "never open" would tell families that nobody will ever answer.
func DefaultOfficeSettings() OfficeSettings {
	var hours []Window
	for wd := time.Monday; wd <= time.Friday; wd++ {
		hours = append(hours, Window{Weekday: wd, StartMin: 8 * 60, EndMin: 15*60 + 30})
	}
	return OfficeSettings{Hours: hours, VaktEveningMin: 15*60 + 30, VaktMorningMin: 8 * 60, AnswerDays: 2}
}

// Barnevernvakt returns the office's emergency service.
func (o OfficeSettings) Barnevernvakt() Barnevernvakt {
	return Barnevernvakt{Calendar: o.Calendar, EveningMin: o.VaktEveningMin, MorningMin: o.VaktMorningMin}
}

// Schedule returns the office's own schedule: its hours on every channel,
// on its calendar. The team answers on it when a caseworker is away without
// a substitute.
func (o OfficeSettings) Schedule() Schedule {
	return Schedule{OfficeHours: o.Hours, Calendar: o.Calendar}
}

// Validate checks the office's settings. Fields are "office_hours[i].start"
// and so on, "calendar.christmas_eve", "calendar.closure_days[i]",
// "vakt.evening", "vakt.morning" and "answer_days".
func (o OfficeSettings) Validate() []FieldError {
	errs := Schedule{OfficeHours: o.Hours, Calendar: o.Calendar}.Validate()
	if o.VaktEveningMin < 0 || o.VaktEveningMin > MinutesPerDay {
		errs = append(errs, FieldError{"vakt.evening", AvailabilityTimeOutOfRange})
	}
	if o.VaktMorningMin < 0 || o.VaktMorningMin > MinutesPerDay {
		errs = append(errs, FieldError{"vakt.morning", AvailabilityTimeOutOfRange})
	}
	if o.AnswerDays < 1 || o.AnswerDays > 30 {
		errs = append(errs, FieldError{"answer_days", AvailabilityTimeOutOfRange})
	}
	return errs
}

// WeeklyWindows returns the weekly windows that govern channel ch: the
// owner's own, or the office hours if they have none for ch. It is what a
// family reads as "the chat is open Mon–Fri 08.00–15.30".
func (s Schedule) WeeklyWindows(ch Channel) []Window {
	return slices.Clone(s.windowsFor(ch))
}

// Person is a member of staff as availability shows them.
type Person struct {
	ID   string `db:"id"`
	Name string `db:"name"`
}

// availabilityErr wraps an unexpected database error of this store.
func availabilityErr(op string, err error) error {
	return fmt.Errorf("messaging: %s: %w", op, err)
}

// windowRow, exceptionRow and absenceRow are the tables' rows.
type windowRow struct {
	Channel  Channel `db:"channel"`
	Weekday  int     `db:"weekday"`
	StartMin int     `db:"start_min"`
	EndMin   int     `db:"end_min"`
}

type exceptionRow struct {
	Day      string  `db:"day"`
	Channel  Channel `db:"channel"`
	Open     bool    `db:"is_open"`
	StartMin int     `db:"start_min"`
	EndMin   int     `db:"end_min"`
}

type absenceRow struct {
	From         string `db:"from_day"`
	To           string `db:"to_day"`
	SubstituteID string `db:"substitute_id"`
}

// Settings returns userID's availability settings, ordered as the page
// shows them: windows by weekday and start, exceptions and absences by date.
func (s *AvailabilityStore) Settings(ctx context.Context, userID string) (Settings, error) {
	st := Settings{Windows: map[Channel][]Window{}}
	var ws []windowRow
	if err := s.db.SelectContext(ctx, &ws, s.db.Rebind(`
		SELECT channel, weekday, start_min, end_min FROM availability_windows
		WHERE user_id = ? ORDER BY channel, weekday, start_min`), userID); err != nil {
		return Settings{}, availabilityErr("list windows", err)
	}
	for _, w := range ws {
		st.Windows[w.Channel] = append(st.Windows[w.Channel],
			Window{Weekday: time.Weekday(w.Weekday), StartMin: w.StartMin, EndMin: w.EndMin})
	}
	var es []exceptionRow
	if err := s.db.SelectContext(ctx, &es, s.db.Rebind(`
		SELECT day, channel, is_open, start_min, end_min FROM availability_exceptions
		WHERE user_id = ? ORDER BY day, start_min, channel`), userID); err != nil {
		return Settings{}, availabilityErr("list exceptions", err)
	}
	for _, e := range es {
		d, err := ParseDate(e.Day)
		if err != nil {
			return Settings{}, availabilityErr("list exceptions", err)
		}
		st.Exceptions = append(st.Exceptions, Exception{Date: d, Channel: e.Channel, Open: e.Open, StartMin: e.StartMin, EndMin: e.EndMin})
	}
	var as []absenceRow
	if err := s.db.SelectContext(ctx, &as, s.db.Rebind(`
		SELECT from_day, to_day, COALESCE(substitute_id, '') AS substitute_id FROM availability_absences
		WHERE user_id = ? ORDER BY from_day`), userID); err != nil {
		return Settings{}, availabilityErr("list absences", err)
	}
	for _, a := range as {
		from, err1 := ParseDate(a.From)
		to, err2 := ParseDate(a.To)
		if err := errors.Join(err1, err2); err != nil {
			return Settings{}, availabilityErr("list absences", err)
		}
		st.Absences = append(st.Absences, Absence{From: from, To: to, SubstituteID: a.SubstituteID})
	}
	return st, nil
}

// Colleagues returns the staff who can stand in for userID during an
// absence: the other caseworkers and team leads of their office, by name.
func (s *AvailabilityStore) Colleagues(ctx context.Context, userID string) ([]Person, error) {
	var ps []Person
	err := s.db.SelectContext(ctx, &ps, s.db.Rebind(`
		SELECT c.id, c.name FROM users me
		JOIN users c ON c.office_id = me.office_id AND c.id <> me.id
		WHERE me.id = ? AND c.kind IN ('caseworker', 'teamlead')
		ORDER BY c.name, c.id`), userID)
	if err != nil {
		return nil, availabilityErr("list colleagues", err)
	}
	return ps, nil
}

// SaveSettings replaces all of userID's settings with st. It validates st
// first, including that every substitute is one of Colleagues, and if
// anything is wrong returns the field errors and changes nothing. A valid
// st is written in one transaction, so a reader sees the old settings or
// the new ones, never a mix.
func (s *AvailabilityStore) SaveSettings(ctx context.Context, userID string, st Settings) ([]FieldError, error) {
	errs := st.Validate()
	colleagues, err := s.Colleagues(ctx, userID)
	if err != nil {
		return nil, err
	}
	for i, a := range st.Absences {
		if a.SubstituteID != "" && !slices.ContainsFunc(colleagues, func(p Person) bool { return p.ID == a.SubstituteID }) {
			errs = append(errs, FieldError{fmt.Sprintf("absences[%d].substitute", i), AvailabilitySubstituteInvalid})
		}
	}
	if len(errs) > 0 {
		return errs, nil
	}

	tx, err := s.db.BeginTxx(ctx, nil)
	if err != nil {
		return nil, availabilityErr("save settings", err)
	}
	defer tx.Rollback() // no-op after Commit
	exec := func(q string, args ...any) {
		if err == nil {
			_, err = tx.ExecContext(ctx, tx.Rebind(q), args...)
		}
	}
	exec(`DELETE FROM availability_windows WHERE user_id = ?`, userID)
	exec(`DELETE FROM availability_exceptions WHERE user_id = ?`, userID)
	exec(`DELETE FROM availability_absences WHERE user_id = ?`, userID)
	for _, ch := range slices.Sorted(maps.Keys(st.Windows)) {
		for _, w := range st.Windows[ch] {
			exec(`INSERT INTO availability_windows (user_id, channel, weekday, start_min, end_min)
			      VALUES (?, ?, ?, ?, ?)`, userID, ch, int(w.Weekday), w.StartMin, w.EndMin)
		}
	}
	for _, e := range st.Exceptions {
		exec(`INSERT INTO availability_exceptions (user_id, day, channel, is_open, start_min, end_min)
		      VALUES (?, ?, ?, ?, ?, ?)`, userID, e.Date.String(), e.Channel, e.Open, e.StartMin, e.EndMin)
	}
	for _, a := range st.Absences {
		var sub any
		if a.SubstituteID != "" {
			sub = a.SubstituteID
		}
		exec(`INSERT INTO availability_absences (user_id, from_day, to_day, substitute_id)
		      VALUES (?, ?, ?, ?)`, userID, a.From.String(), a.To.String(), sub)
	}
	if err != nil {
		return nil, availabilityErr("save settings", err)
	}
	if err := tx.Commit(); err != nil {
		return nil, availabilityErr("save settings", err)
	}
	return nil, nil
}

// OfficeSettings returns the settings of officeID, with DefaultOfficeSettings
// for whatever the office has not stored (no hours, or no calendar row).
func (s *AvailabilityStore) OfficeSettings(ctx context.Context, officeID string) (OfficeSettings, error) {
	o := DefaultOfficeSettings()
	var hours []windowRow
	if err := s.db.SelectContext(ctx, &hours, s.db.Rebind(`
		SELECT '' AS channel, weekday, start_min, end_min FROM office_hours
		WHERE office_id = ? ORDER BY weekday, start_min`), officeID); err != nil {
		return OfficeSettings{}, availabilityErr("list office hours", err)
	}
	if len(hours) > 0 {
		o.Hours = nil
		for _, h := range hours {
			o.Hours = append(o.Hours, Window{Weekday: time.Weekday(h.Weekday), StartMin: h.StartMin, EndMin: h.EndMin})
		}
	}
	var cal struct {
		ChristmasEve sql.NullInt64 `db:"christmas_eve_close_min"`
		NewYearsEve  sql.NullInt64 `db:"new_years_eve_close_min"`
		Evening      int           `db:"vakt_evening_min"`
		Morning      int           `db:"vakt_morning_min"`
		AnswerDays   int           `db:"answer_days"`
	}
	err := s.db.GetContext(ctx, &cal, s.db.Rebind(`
		SELECT christmas_eve_close_min, new_years_eve_close_min, vakt_evening_min, vakt_morning_min, answer_days
		FROM office_calendar WHERE office_id = ?`), officeID)
	switch {
	case errors.Is(err, sql.ErrNoRows):
	case err != nil:
		return OfficeSettings{}, availabilityErr("get office calendar", err)
	default:
		o.Calendar.ChristmasEve = HalfDay{Shortened: cal.ChristmasEve.Valid, CloseMin: int(cal.ChristmasEve.Int64)}
		o.Calendar.NewYearsEve = HalfDay{Shortened: cal.NewYearsEve.Valid, CloseMin: int(cal.NewYearsEve.Int64)}
		o.VaktEveningMin, o.VaktMorningMin, o.AnswerDays = cal.Evening, cal.Morning, cal.AnswerDays
	}
	var days []string
	if err := s.db.SelectContext(ctx, &days, s.db.Rebind(`
		SELECT day FROM office_closure_days WHERE office_id = ? ORDER BY day`), officeID); err != nil {
		return OfficeSettings{}, availabilityErr("list closure days", err)
	}
	for _, day := range days {
		d, err := ParseDate(day)
		if err != nil {
			return OfficeSettings{}, availabilityErr("list closure days", err)
		}
		o.Calendar.ClosureDays = append(o.Calendar.ClosureDays, d)
	}
	return o, nil
}

// SaveOfficeSettings replaces officeID's settings with o, in one
// transaction, after validating them; invalid settings change nothing and
// come back as field errors.
func (s *AvailabilityStore) SaveOfficeSettings(ctx context.Context, officeID string, o OfficeSettings) ([]FieldError, error) {
	if errs := o.Validate(); len(errs) > 0 {
		return errs, nil
	}
	tx, err := s.db.BeginTxx(ctx, nil)
	if err != nil {
		return nil, availabilityErr("save office settings", err)
	}
	defer tx.Rollback() // no-op after Commit
	exec := func(q string, args ...any) {
		if err == nil {
			_, err = tx.ExecContext(ctx, tx.Rebind(q), args...)
		}
	}
	eve := func(h HalfDay) any {
		if !h.Shortened {
			return nil
		}
		return h.CloseMin
	}
	exec(`DELETE FROM office_hours WHERE office_id = ?`, officeID)
	exec(`DELETE FROM office_calendar WHERE office_id = ?`, officeID)
	exec(`DELETE FROM office_closure_days WHERE office_id = ?`, officeID)
	for _, h := range o.Hours {
		exec(`INSERT INTO office_hours (office_id, weekday, start_min, end_min) VALUES (?, ?, ?, ?)`,
			officeID, int(h.Weekday), h.StartMin, h.EndMin)
	}
	exec(`INSERT INTO office_calendar (office_id, christmas_eve_close_min, new_years_eve_close_min,
	                                   vakt_evening_min, vakt_morning_min, answer_days)
	      VALUES (?, ?, ?, ?, ?, ?)`, officeID, eve(o.Calendar.ChristmasEve), eve(o.Calendar.NewYearsEve),
		o.VaktEveningMin, o.VaktMorningMin, o.AnswerDays)
	seen := map[Date]bool{}
	for _, d := range o.Calendar.ClosureDays {
		if !seen[d] {
			seen[d] = true
			exec(`INSERT INTO office_closure_days (office_id, day) VALUES (?, ?)`, officeID, d.String())
		}
	}
	if err != nil {
		return nil, availabilityErr("save office settings", err)
	}
	if err := tx.Commit(); err != nil {
		return nil, availabilityErr("save office settings", err)
	}
	return nil, nil
}

// Schedule returns userID's schedule on office: their own windows,
// exceptions and absences, with the office's hours as the fallback for
// channels they have no windows for, and the office's calendar.
func (s *AvailabilityStore) Schedule(ctx context.Context, userID string, office OfficeSettings) (Schedule, error) {
	st, err := s.Settings(ctx, userID)
	if err != nil {
		return Schedule{}, err
	}
	return st.on(office), nil
}

// on returns the schedule of the owner of st on office.
func (st Settings) on(office OfficeSettings) Schedule {
	return Schedule{
		Windows:     st.Windows,
		OfficeHours: office.Hours,
		Exceptions:  st.Exceptions,
		Absences:    st.Absences,
		Calendar:    office.Calendar,
	}
}

// Contact is who answers a case's family and when, at one moment: the
// case's primary caseworker, their schedule, and while they are away the
// substitute (or the team) who answers instead.
type Contact struct {
	CaseID         string
	OfficeID       string
	OfficePhone    string
	EmergencyPhone string
	Office         OfficeSettings
	// Caseworker is the primary caseworker; its ID is "" when the case has
	// none, and then the team answers on the office's hours.
	Caseworker Person
	// Schedule is the caseworker's.
	Schedule Schedule
	// Away is true while an absence of the caseworker covers the moment
	// the contact was made for; Absence is that absence (To extended over
	// absences that follow on).
	Away    bool
	Absence Absence
	// Substitute answers during the absence; its ID is "" when the team
	// does. SubstituteSchedule is the substitute's own schedule.
	Substitute         Person
	SubstituteSchedule Schedule
}

// Responder returns who answers the family now and on which schedule: the
// substitute during an absence that has one, the team (an empty Person, on
// the office's hours) during one that has none or when the case has no
// caseworker, and otherwise the caseworker.
func (c Contact) Responder() (Person, Schedule) {
	switch {
	case c.Caseworker.ID == "":
		return Person{}, c.Office.Schedule()
	case c.Away && c.Substitute.ID != "":
		return c.Substitute, c.SubstituteSchedule
	case c.Away:
		return Person{}, c.Office.Schedule()
	}
	return c.Caseworker, c.Schedule
}

// Sender returns the user id automatic replies are sent in the name of:
// the responder, or the caseworker when the team answers. It is "" when
// the case has no caseworker.
func (c Contact) Sender() string {
	if p, _ := c.Responder(); p.ID != "" {
		return p.ID
	}
	return c.Caseworker.ID
}

// A contact is put together from three parts (makeContact), read
// separately so that the auto-replier can keep the two that many cases
// share (autoreply.go):
//   - the case's row (caseContactRow, read by contactRow): its office with the office's phone
//     numbers, and its primary caseworker; one query;
//   - the office's settings (OfficeSettings), the same for all its cases;
//   - what the contact needs of a member of staff (staffMember: their name
//     and own settings), the same for every case they answer.

// caseContactRow is what a contact needs of one case.
type caseContactRow struct {
	CaseID       string `db:"case_id"`
	OfficeID     string `db:"office_id"`
	Phone        string `db:"phone"`
	Emergency    string `db:"emergency_phone"`
	CaseworkerID string `db:"caseworker_id"` // the primary one; "" if none
}

// contactRow returns the caseContactRow of the case that from selects (a
// FROM and WHERE clause of the case k, joined with its office o, with one
// parameter: id), or ErrNotFound. One query.
func (s *AvailabilityStore) contactRow(ctx context.Context, from, id string) (caseContactRow, error) {
	var row caseContactRow
	err := s.db.GetContext(ctx, &row, s.db.Rebind(`
		SELECT k.id AS case_id, k.office_id, o.phone, o.emergency_phone,
		       COALESCE((SELECT a.user_id FROM case_caseworkers a
		                 WHERE a.case_id = k.id ORDER BY a.is_primary DESC, a.user_id LIMIT 1), '') AS caseworker_id
		`+from), id)
	if errors.Is(err, sql.ErrNoRows) {
		return caseContactRow{}, ErrNotFound
	}
	if err != nil {
		return caseContactRow{}, availabilityErr("get contact", err)
	}
	return row, nil
}

// What contactRow selects by: a case's id, or a conversation's.
const (
	byCase         = `FROM cases k JOIN offices o ON o.id = k.office_id WHERE k.id = ?`
	byConversation = `FROM conversations c JOIN cases k ON k.id = c.case_id JOIN offices o ON o.id = k.office_id WHERE c.id = ?`
)

// staffMember is what a contact needs of a member of staff, whichever case
// and office it is for.
type staffMember struct {
	Person   Person
	Settings Settings
}

// staffMember returns userID's name and own settings, or ErrNotFound.
func (s *AvailabilityStore) staffMember(ctx context.Context, userID string) (staffMember, error) {
	p, err := s.person(ctx, userID)
	if err != nil {
		return staffMember{}, err
	}
	st, err := s.Settings(ctx, userID)
	if err != nil {
		return staffMember{}, err
	}
	return staffMember{Person: p, Settings: st}, nil
}

// makeContact puts row's contact at now together: office is the settings
// of row's office, and staff returns a member of staff's part (the
// caseworker's, and during an absence the substitute's, whose schedule is
// also on the case's office). The result shares office's and staff's
// slices and maps; nothing modifies them.
func makeContact(row caseContactRow, office OfficeSettings, now time.Time, staff func(userID string) (staffMember, error)) (Contact, error) {
	c := Contact{CaseID: row.CaseID, OfficeID: row.OfficeID, OfficePhone: row.Phone, EmergencyPhone: row.Emergency, Office: office}
	if row.CaseworkerID == "" {
		return c, nil
	}
	cw, err := staff(row.CaseworkerID)
	if err != nil {
		return Contact{}, err
	}
	c.Caseworker, c.Schedule = cw.Person, cw.Settings.on(office)
	c.Absence, c.Away = c.Schedule.Absent(now)
	if c.Away && c.Absence.SubstituteID != "" {
		sub, err := staff(c.Absence.SubstituteID)
		if err != nil {
			return Contact{}, err
		}
		c.Substitute, c.SubstituteSchedule = sub.Person, sub.Settings.on(office)
	}
	return c, nil
}

// contactOf reads the parts of row's contact and puts it together at now.
func (s *AvailabilityStore) contactOf(ctx context.Context, row caseContactRow, now time.Time) (Contact, error) {
	office, err := s.OfficeSettings(ctx, row.OfficeID)
	if err != nil {
		return Contact{}, err
	}
	return makeContact(row, office, now, s.staffOf(ctx))
}

// contact puts a Contact together for caseworkerID ("" for none) on office,
// without the case's and office's ids and phone numbers.
func (s *AvailabilityStore) contact(ctx context.Context, caseworkerID string, office OfficeSettings, now time.Time) (Contact, error) {
	return makeContact(caseContactRow{CaseworkerID: caseworkerID}, office, now, s.staffOf(ctx))
}

// staffOf returns staffMember as makeContact takes it.
func (s *AvailabilityStore) staffOf(ctx context.Context) func(userID string) (staffMember, error) {
	return func(userID string) (staffMember, error) { return s.staffMember(ctx, userID) }
}

// CaseContact returns the contact of caseID at now.
func (s *AvailabilityStore) CaseContact(ctx context.Context, caseID string, now time.Time) (Contact, error) {
	row, err := s.contactRow(ctx, byCase, caseID)
	if err != nil {
		return Contact{}, err
	}
	return s.contactOf(ctx, row, now)
}

// ConversationContact returns the contact of conversationID's case at now.
func (s *AvailabilityStore) ConversationContact(ctx context.Context, conversationID string, now time.Time) (Contact, error) {
	row, err := s.contactRow(ctx, byConversation, conversationID)
	if err != nil {
		return Contact{}, err
	}
	return s.contactOf(ctx, row, now)
}

// CaseworkerContact returns the contact a family of one of userID's cases
// would have at now: the preview on the caseworker's availability page.
// It uses userID's own office.
func (s *AvailabilityStore) CaseworkerContact(ctx context.Context, userID string, now time.Time) (Contact, error) {
	row := caseContactRow{CaseworkerID: userID}
	err := s.db.GetContext(ctx, &row, s.db.Rebind(`
		SELECT COALESCE(u.office_id, '') AS office_id, COALESCE(o.phone, '') AS phone,
		       COALESCE(o.emergency_phone, '') AS emergency_phone
		FROM users u LEFT JOIN offices o ON o.id = u.office_id
		WHERE u.id = ?`), userID)
	if errors.Is(err, sql.ErrNoRows) {
		return Contact{}, ErrNotFound
	}
	if err != nil {
		return Contact{}, availabilityErr("get caseworker office", err)
	}
	return s.contactOf(ctx, row, now)
}

// person returns the user id's name.
func (s *AvailabilityStore) person(ctx context.Context, id string) (Person, error) {
	var p Person
	err := s.db.GetContext(ctx, &p, s.db.Rebind(`SELECT id, name FROM users WHERE id = ?`), id)
	if errors.Is(err, sql.ErrNoRows) {
		return Person{}, ErrNotFound
	}
	if err != nil {
		return Person{}, availabilityErr("get person", err)
	}
	return p, nil
}

// UserLang returns the language userID saved ("nb", "nn", "en"), or "" if
// they never chose one.
func (s *AvailabilityStore) UserLang(ctx context.Context, userID string) (string, error) {
	var lang string
	err := s.db.GetContext(ctx, &lang, s.db.Rebind(`SELECT lang FROM users WHERE id = ?`), userID)
	if errors.Is(err, sql.ErrNoRows) {
		return "", ErrNotFound
	}
	if err != nil {
		return "", availabilityErr("get language", err)
	}
	return lang, nil
}

// UserOffice returns the office userID works at, or "" if none is set.
func (s *AvailabilityStore) UserOffice(ctx context.Context, userID string) (string, error) {
	var office string
	err := s.db.GetContext(ctx, &office, s.db.Rebind(`SELECT COALESCE(office_id, '') FROM users WHERE id = ?`), userID)
	if errors.Is(err, sql.ErrNoRows) {
		return "", ErrNotFound
	}
	if err != nil {
		return "", availabilityErr("get office", err)
	}
	return office, nil
}

// repliedBetween reports whether conversationID has, from since up to and
// including now, an automatic reply or a message written by a member of
// staff.
//
// A message's created_at is taken while its seq is (Store.InsertMessage),
// so times grow with seqs, and there is no index by time: the statement
// finds the last message before since by walking the conversation's seq
// index back from the newest, then reads forward from there and stops at
// the first reply (usually the period's second message).
func (s *AvailabilityStore) repliedBetween(ctx context.Context, conversationID string, since, now time.Time) (bool, error) {
	var replied bool
	err := s.db.GetContext(ctx, &replied, s.db.Rebind(`
		SELECT EXISTS (
			SELECT 1 FROM messages m JOIN users u ON u.id = m.sender_id
			WHERE m.conversation_id = ?
			  AND m.seq > COALESCE((SELECT b.seq FROM messages b
			                        WHERE b.conversation_id = ? AND b.created_at < ?
			                        ORDER BY b.seq DESC LIMIT 1), 0)
			  AND m.created_at >= ? AND m.created_at <= ?
			  AND (m.kind = 'auto_reply' OR (m.kind = 'text' AND u.kind <> 'citizen')))`),
		conversationID, conversationID, since.UTC(), since.UTC(), now.UTC())
	if err != nil {
		return false, availabilityErr("check replies", err)
	}
	return replied, nil
}

// WaitingSince returns, for each of conversationIDs in which a family
// member wrote after the last message from staff, when the first of those
// unanswered messages was sent. Automatic replies and notices do not count
// as answers. Conversations nobody waits in are missing from the map.
func (s *AvailabilityStore) WaitingSince(ctx context.Context, conversationIDs []string) (map[string]time.Time, error) {
	out := make(map[string]time.Time, len(conversationIDs))
	for start := 0; start < len(conversationIDs); start += summaryBatch {
		ids := conversationIDs[start:min(start+summaryBatch, len(conversationIDs))]
		// The first citizen text after the last staff text; reading
		// created_at from the row (not MIN()) keeps its declared type.
		q, args, err := sqlx.In(`
			SELECT m.conversation_id, m.created_at FROM messages m
			WHERE m.conversation_id IN (?) AND m.seq = (
				SELECT MIN(f.seq) FROM messages f JOIN users fu ON fu.id = f.sender_id
				WHERE f.conversation_id = m.conversation_id AND f.kind = 'text' AND fu.kind = 'citizen'
				  AND f.seq > COALESCE((
					SELECT MAX(r.seq) FROM messages r JOIN users ru ON ru.id = r.sender_id
					WHERE r.conversation_id = m.conversation_id AND r.kind = 'text' AND ru.kind <> 'citizen'), 0))`, ids)
		if err != nil {
			return nil, availabilityErr("waiting since", err)
		}
		var rows []struct {
			ConversationID string    `db:"conversation_id"`
			At             time.Time `db:"created_at"`
		}
		if err := s.db.SelectContext(ctx, &rows, s.db.Rebind(q), args...); err != nil {
			return nil, availabilityErr("waiting since", err)
		}
		for _, r := range rows {
			out[r.ConversationID] = r.At.UTC()
		}
	}
	return out, nil
}

// chatRow is one conversation with what decides its chat's availability.
type chatRow struct {
	ConversationID string `db:"conversation_id"`
	OfficeID       string `db:"office_id"`
	CaseworkerID   string `db:"caseworker_id"`
}

// chats lists every conversation with its case's office and primary
// caseworker, for the availability notifier, in no particular order:
// sorting them by id tripled the query's time (60,000 conversations: 0.65
// against 0.18 s, each minute), and the notifier keeps them by id anyway.
func (s *AvailabilityStore) chats(ctx context.Context) ([]chatRow, error) {
	var rows []chatRow
	err := s.db.SelectContext(ctx, &rows, `
		SELECT c.id AS conversation_id, k.office_id,
		       COALESCE((SELECT a.user_id FROM case_caseworkers a
		                 WHERE a.case_id = k.id ORDER BY a.is_primary DESC, a.user_id LIMIT 1), '') AS caseworker_id
		FROM conversations c JOIN cases k ON k.id = c.case_id`)
	if err != nil {
		return nil, availabilityErr("list chats", err)
	}
	return rows, nil
}

// FirstName returns the first word of a person's name ("Kari" of "Kari
// Nordmann"), which is how families are addressed about their caseworker.
func FirstName(name string) string {
	if f := strings.Fields(name); len(f) > 0 {
		return f[0]
	}
	return name
}

// WithClock makes s stamp what it stores with the time now returns instead
// of the real time, and returns s. It is the clock seam for tests that move
// through open and closed chat periods (give the AutoReplier the same
// clock); set it before s is used.
func (s *Store) WithClock(now func() time.Time) *Store {
	s.now = now
	return s
}
