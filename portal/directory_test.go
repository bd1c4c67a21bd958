package portal

import (
	"context"
	"fmt"
	"testing"

	"familieportal/messaging"
)

// TestStore_directoryAnswersFollowEveryChange: the footer's office, the
// contact card, a member of staff's own schedule and the conversation
// titles are kept in memory (directory.go), so each change to what they
// are made from must reach them at once. Each case reads everything once
// (so it is kept), changes the database the way an import, the API or a
// settings page would, and reads again: the answers must differ. A table
// or column the migration's triggers forget fails here.
func TestStore_directoryAnswersFollowEveryChange(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name   string
		change string // SQL; ? are the demo ids of args
		args   []string
	}{
		{"the office's emergency number changes", `UPDATE offices SET emergency_phone = '+47 11 22 33 44'`, nil},
		{"the office's name changes", `UPDATE offices SET name = 'Nytt navn'`, nil},
		{"office hours change", `UPDATE office_hours SET end_min = end_min - 30`, nil},
		{"the barnevernvakt's hours change", `UPDATE office_calendar SET vakt_evening_min = 1000`, nil},
		{"a closure day is added", `INSERT INTO office_closure_days (office_id, day) SELECT id, '2031-01-02' FROM offices`, nil},
		{"the caseworker adds a chat window", `INSERT INTO availability_windows (user_id, channel, weekday, start_min, end_min)
			VALUES (?, 'chat', 3, 60, 120)`, []string{"kari"}},
		{"the caseworker adds an exception", `INSERT INTO availability_exceptions (user_id, day, channel, is_open, start_min, end_min)
			VALUES (?, '2031-01-02', 'chat', true, 60, 120)`, []string{"kari"}},
		{"the caseworker is renamed", `UPDATE users SET name = 'Kari Ny' WHERE id = ?`, []string{"kari"}},
		{"the caseworker moves office", `UPDATE users SET office_id = NULL WHERE id = ?`, []string{"kari"}},
		{"the caseworker is taken off the case", `DELETE FROM case_caseworkers WHERE case_id = ?`, []string{"@case"}},
		{"the child is renamed", `UPDATE cases SET child_name = 'Ny' WHERE id = ?`, []string{"@case"}},
		{"a party is renamed", `UPDATE users SET name = 'Sara Ny' WHERE id = ?`, []string{"sara"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, Options{Demo: true})
			s := e.store
			caseID := e.cases["emma"]
			kari := User{ID: e.users["kari"], Kind: KindCaseworker}
			read := func() string {
				o, settings, ok, err := s.footerOffice(ctx)
				if err != nil || !ok {
					t.Fatalf("footerOffice = %v, %v", ok, err)
				}
				c, err := s.caseContact(ctx, caseID)
				if err != nil {
					t.Fatal(err)
				}
				sched, err := s.ownSchedule(ctx, kari.ID)
				if err != nil {
					t.Fatal(err)
				}
				refs, err := s.ChatAccess().Conversations(ctx, messaging.Participant{UserID: kari.ID, Role: messaging.Role(kari.Kind)})
				if err != nil {
					t.Fatal(err)
				}
				return fmt.Sprintf("%+v %+v %+v %+v %+v", o, settings, c, sched, refs)
			}
			before := read()
			if again := read(); again != before { // from memory
				t.Fatalf("a second read differs:\n%s\n%s", before, again)
			}
			var args []any
			for _, k := range tt.args {
				if k == "@case" {
					args = append(args, caseID)
				} else {
					args = append(args, e.users[k])
				}
			}
			e.db.MustExec(e.db.Rebind(tt.change), args...)
			if after := read(); after == before {
				t.Errorf("after the change the answers are still\n%s", before)
			}
		})
	}
}
