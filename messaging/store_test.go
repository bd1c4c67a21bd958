package messaging_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"familieportal/messaging"
	"familieportal/portal/db"
)

func draft(w *world, who, conv, clientID, body string) messaging.Draft {
	return messaging.Draft{
		ConversationID: w.conv[conv], SenderID: w.ids[who],
		ClientID: clientID, Body: body, Kind: messaging.KindText,
	}
}

func TestStore_InsertMessage(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()

	t.Run("sequences are per conversation and start at 1", func(t *testing.T) {
		for i, tt := range []struct {
			who, conv string
			want      int64
		}{
			{"sara", "emma-sara", 1}, {"kari", "emma-sara", 2}, {"jonas", "emma-jonas", 1}, {"sara", "emma-sara", 3},
		} {
			m, created, err := w.store.InsertMessage(ctx, draft(w, tt.who, tt.conv, fmt.Sprintf("seq-%d", i), "hei"))
			if err != nil || !created {
				t.Fatalf("InsertMessage #%d = %v, %v", i, created, err)
			}
			if m.Seq != tt.want {
				t.Errorf("InsertMessage #%d seq = %d, want %d", i, m.Seq, tt.want)
			}
		}
		c, err := w.store.Conversation(ctx, w.conv["emma-sara"])
		if err != nil || c.LastSeq != 3 {
			t.Errorf("Conversation = %+v, %v; want last_seq 3", c, err)
		}
	})

	t.Run("the stored message is read back with its sender", func(t *testing.T) {
		m, _, err := w.store.InsertMessage(ctx, draft(w, "kari", "emma-jonas", "back-1", "Hei Jonas"))
		if err != nil {
			t.Fatal(err)
		}
		if m.ID == "" || m.SenderName != "Kari Nordmann" || m.SenderRole != messaging.RoleCaseworker ||
			m.Body != "Hei Jonas" || m.Kind != messaging.KindText || m.CreatedAt.Location().String() != "UTC" {
			t.Errorf("InsertMessage = %+v", m)
		}
		got, err := w.store.MessagesAfter(ctx, w.conv["emma-jonas"], m.Seq-1, 10)
		if err != nil || len(got) != 1 || got[0] != m {
			t.Errorf("MessagesAfter = %+v, %v; want exactly %+v", got, err, m)
		}
	})

	t.Run("a resend returns the original and stores nothing", func(t *testing.T) {
		first, created, err := w.store.InsertMessage(ctx, draft(w, "sara", "emma-sara", "resend-1", "original"))
		if err != nil || !created {
			t.Fatal(created, err)
		}
		again, created, err := w.store.InsertMessage(ctx, draft(w, "sara", "emma-sara", "resend-1", "changed text"))
		if err != nil || created || again != first {
			t.Errorf("resend = %+v, %v, %v; want the original, not created", again, created, err)
		}
		// The same client id from another sender is another message.
		other, created, err := w.store.InsertMessage(ctx, draft(w, "kari", "emma-sara", "resend-1", "Kari's"))
		if err != nil || !created || other.ID == first.ID {
			t.Errorf("other sender = %+v, %v, %v; want a new message", other, created, err)
		}
		if n := w.count(t, `SELECT COUNT(*) FROM messages WHERE client_id = 'resend-1'`); n != 2 {
			t.Errorf("%d rows, want 2", n)
		}
	})

	t.Run("unknown conversation", func(t *testing.T) {
		d := draft(w, "sara", "emma-sara", "nowhere-1", "hei")
		d.ConversationID = "nowhere"
		if _, _, err := w.store.InsertMessage(ctx, d); !errors.Is(err, messaging.ErrNotFound) {
			t.Errorf("InsertMessage = %v, want ErrNotFound", err)
		}
	})
}

func TestStore_InsertMessage_concurrent(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	const n = 20

	t.Run("same client id: one message, every caller gets it", func(t *testing.T) {
		got := make([]messaging.Message, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				got[i], _, errs[i] = w.store.InsertMessage(ctx, draft(w, "sara", "emma-sara", "same", "hei"))
			})
		}
		wg.Wait()
		for i := range n {
			if errs[i] != nil || got[i] != got[0] {
				t.Errorf("caller %d: %+v, %v; want %+v", i, got[i], errs[i], got[0])
			}
		}
		if c := w.count(t, `SELECT COUNT(*) FROM messages WHERE client_id = 'same'`); c != 1 {
			t.Errorf("%d rows, want 1", c)
		}
	})

	t.Run("different client ids: contiguous sequences", func(t *testing.T) {
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				if _, _, err := w.store.InsertMessage(ctx, draft(w, "kari", "emma-jonas", fmt.Sprintf("many-%d", i), "hei")); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		ms, err := w.store.MessagesAfter(ctx, w.conv["emma-jonas"], 0, 100)
		if err != nil || len(ms) != n {
			t.Fatalf("MessagesAfter = %d messages, %v; want %d", len(ms), err, n)
		}
		for i, m := range ms {
			if m.Seq != int64(i+1) {
				t.Errorf("message %d has seq %d, want %d", i, m.Seq, i+1)
			}
		}
	})
}

// TestStore_InsertMessage_groupCommit: writes that share a transaction
// (groupcommit.go) stand or fall alone. Many senders at once, a third of
// them into a conversation that does not exist and some resending: the
// bad ones fail with ErrNotFound, the resends get the original, and every
// good one is stored, acknowledged with its seq, without gaps.
func TestStore_InsertMessage_groupCommit(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	const n = 90
	type result struct {
		m       messaging.Message
		created bool
		err     error
	}
	res := make([]result, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			d := draft(w, "sara", "emma-sara", fmt.Sprintf("gc-%d", i), "hei")
			switch i % 3 {
			case 1:
				d.ConversationID = "no-such-conversation"
			case 2:
				d.ClientID = fmt.Sprintf("gc-%d", i-2) // a resend of the one before
			}
			res[i].m, res[i].created, res[i].err = w.store.InsertMessage(ctx, d)
		})
	}
	wg.Wait()
	seqs := map[int64]string{}
	for i, r := range res {
		switch i % 3 {
		case 0, 2:
			if r.err != nil {
				t.Errorf("write %d: %v", i, r.err)
				continue
			}
			if id, ok := seqs[r.m.Seq]; ok && id != r.m.ID {
				t.Errorf("seq %d acknowledged for two messages", r.m.Seq)
			}
			seqs[r.m.Seq] = r.m.ID
		case 1:
			if !errors.Is(r.err, messaging.ErrNotFound) {
				t.Errorf("write %d to no conversation = %v, want ErrNotFound", i, r.err)
			}
		}
	}
	for i := 0; i+2 < n; i += 3 {
		a, b := res[i], res[i+2]
		if a.err == nil && b.err == nil && a.m.ID != b.m.ID {
			t.Errorf("writes %d and %d share a client id but got messages %s and %s", i, i+2, a.m.ID, b.m.ID)
		}
		if a.created == b.created {
			t.Errorf("writes %d and %d: created %v and %v, want exactly one created", i, i+2, a.created, b.created)
		}
	}
	stored, err := w.store.MessagesAfter(ctx, w.conv["emma-sara"], 0, 1000)
	if err != nil || len(stored) != n/3 {
		t.Fatalf("stored %d messages (err %v), want %d", len(stored), err, n/3)
	}
	for i, m := range stored {
		if m.Seq != int64(i+1) || seqs[m.Seq] != m.ID {
			t.Errorf("stored message %d: seq %d id %s, acknowledged as %s", i, m.Seq, m.ID, seqs[m.Seq])
		}
	}
}

func TestStore_messagesAreImmutable(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	m, _, err := w.store.InsertMessage(ctx, draft(w, "sara", "emma-sara", "imm-1", "hei"))
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`UPDATE messages SET body = 'endret' WHERE id = ?`,
		`UPDATE messages SET seq = 7 WHERE id = ?`,
		`DELETE FROM messages WHERE id = ?`,
	} {
		if _, err := w.db.Exec(w.db.Rebind(q), m.ID); err == nil {
			t.Errorf("%s: allowed, want refused", q)
		}
	}
	for _, q := range []string{
		`DELETE FROM conversations WHERE id = ?`,
		`UPDATE conversations SET last_seq = 0 WHERE id = ?`,
		`UPDATE conversations SET case_id = 'case-noah' WHERE id = ?`,
	} {
		if _, err := w.db.Exec(w.db.Rebind(q), w.conv["emma-sara"]); err == nil {
			t.Errorf("%s: allowed, want refused", q)
		}
	}
	if got, _ := w.store.MessagesAfter(ctx, w.conv["emma-sara"], 0, 10); len(got) != 1 || got[0] != m {
		t.Errorf("message changed: %+v", got)
	}

	// Retention: deleting the case removes its conversations and messages.
	w.db.MustExec(`DELETE FROM cases WHERE id = 'case-emma'`)
	if n := w.count(t, `SELECT COUNT(*) FROM messages`); n != 0 {
		t.Errorf("%d messages left after deleting the case", n)
	}
	if n := w.count(t, `SELECT COUNT(*) FROM conversations WHERE case_id = 'case-emma'`); n != 0 {
		t.Errorf("%d conversations left after deleting the case", n)
	}
}

func TestStore_lockedDatabase(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for SQLite's busy timeout (5 s)")
	}
	w := newWorld(t)
	ctx := context.Background()

	// Another writer holds the database (BEGIN IMMEDIATE) past the busy
	// timeout.
	holder, err := w.db.BeginTxx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	holder.MustExec(`INSERT INTO audit (at, action, outcome) VALUES (CURRENT_TIMESTAMP, 'test.lock', 'allowed')`)
	opCtx := ctx
	if db.Dialect(w.db) == db.Postgres {
		// PostgreSQL locks rows, not the database: hold the conversation's
		// row, and stop waiting where a frame's deadline would.
		holder.MustExec(holder.Rebind(`UPDATE conversations SET last_seq = last_seq WHERE id = ?`), w.conv["emma-sara"])
		var cancel context.CancelFunc
		opCtx, cancel = context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
	}

	_, _, err = w.store.InsertMessage(opCtx, draft(w, "sara", "emma-sara", "locked-1", "hei"))
	if !errors.Is(err, messaging.ErrUnavailable) {
		t.Fatalf("InsertMessage on a locked database = %v, want ErrUnavailable", err)
	}
	if err := holder.Rollback(); err != nil {
		t.Fatal(err)
	}

	// Nothing was half-written: the retry gets seq 1, no gap, no duplicate.
	m, created, err := w.store.InsertMessage(ctx, draft(w, "sara", "emma-sara", "locked-1", "hei"))
	if err != nil || !created || m.Seq != 1 {
		t.Errorf("retry = %+v, %v, %v; want seq 1, created", m, created, err)
	}
}

func TestStore_readCursorsAndUnread(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	conv := w.conv["emma-sara"]
	for i, who := range []string{"kari", "kari", "sara", "kari"} {
		if _, _, err := w.store.InsertMessage(ctx, draft(w, who, "emma-sara", fmt.Sprintf("r-%d", i), "hei")); err != nil {
			t.Fatal(err)
		}
	}
	unread := func(who string) int {
		t.Helper()
		sums, err := w.store.Summaries(ctx, w.ids[who], []string{conv, "missing", conv})
		if err != nil || len(sums) != 1 || sums[0].ID != conv || sums[0].CaseID != "case-emma" || sums[0].LastSeq != 4 {
			t.Fatalf("Summaries(%s) = %+v, %v", who, sums, err)
		}
		return sums[0].Unread
	}
	// Nobody has read anything; own messages never count.
	if got := unread("sara"); got != 3 {
		t.Errorf("Sara's unread = %d, want 3", got)
	}
	if got := unread("kari"); got != 1 {
		t.Errorf("Kari's unread = %d, want 1", got)
	}

	tests := []struct {
		name         string
		who          string
		staff        bool
		seq          int64
		wantCursor   int64
		wantAdvanced bool
		wantUnread   int
	}{
		{"member reads up to 2", "sara", false, 2, 2, true, 1},
		{"member cannot go back", "sara", false, 1, 1, false, 1},
		{"member reads past the end: clamped", "sara", false, 99, 4, true, 0},
		{"staff reads up to 2", "kari", true, 2, 2, true, 1},
		{"staff reads to the end", "kari", true, 4, 4, true, 0},
		{"staff repeat changes nothing", "kari", true, 4, 4, false, 0},
		{"a citizen who is not a member has no cursor", "jonas", false, 4, 4, false, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cursor, advanced, err := w.store.MarkRead(ctx, conv, w.ids[tt.who], tt.staff, tt.seq)
			if err != nil || cursor != tt.wantCursor || advanced != tt.wantAdvanced {
				t.Errorf("MarkRead(%d) = %d, %v, %v; want %d, %v", tt.seq, cursor, advanced, err, tt.wantCursor, tt.wantAdvanced)
			}
			if tt.wantUnread >= 0 {
				if got := unread(tt.who); got != tt.wantUnread {
					t.Errorf("unread = %d, want %d", got, tt.wantUnread)
				}
			}
		})
	}
	if _, _, err := w.store.MarkRead(ctx, "missing", w.ids["sara"], false, 1); !errors.Is(err, messaging.ErrNotFound) {
		t.Errorf("MarkRead on a missing conversation = %v, want ErrNotFound", err)
	}
}

// TestStore_InboxSummaries: the inbox's summaries are Summaries with the
// newest message a person wrote; automatic replies and notices do not
// count, and a conversation without such a message has none.
func TestStore_InboxSummaries(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	var stored []messaging.Message
	for i, d := range []messaging.Draft{
		draft(w, "kari", "emma-sara", "i-0", "hei"),
		draft(w, "sara", "emma-sara", "i-1", "hei"),
		{ConversationID: w.conv["emma-sara"], SenderID: w.ids["kari"], ClientID: "i-2", Body: "stengt", Kind: messaging.KindAutoReply},
		{ConversationID: w.conv["emma-jonas"], SenderID: w.ids["kari"], ClientID: "i-3", Body: "stengt", Kind: messaging.KindAutoReply},
		draft(w, "sara", "emma-sara", "i-1", "hei"), // a resend changes nothing
	} {
		m, _, err := w.store.InsertMessage(ctx, d)
		if err != nil {
			t.Fatalf("InsertMessage #%d: %v", i, err)
		}
		stored = append(stored, m)
	}
	ids := []string{w.conv["emma-jonas"], "missing", w.conv["emma-sara"]}
	got, err := w.store.InboxSummaries(ctx, w.ids["kari"], ids)
	if err != nil {
		t.Fatal(err)
	}
	want, err := w.store.Summaries(ctx, w.ids["kari"], ids)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || len(want) != 2 {
		t.Fatalf("InboxSummaries = %+v, Summaries = %+v; want 2 each", got, want)
	}
	for i := range got {
		if got[i].ConversationSummary != want[i] {
			t.Errorf("InboxSummaries[%d] = %+v, want Summaries' %+v", i, got[i].ConversationSummary, want[i])
		}
	}
	if got[0].Last != (messaging.LastText{}) {
		t.Errorf("last text with only an automatic reply = %+v, want none", got[0].Last)
	}
	if l := got[1].Last; l.SenderRole != messaging.RoleCitizen || !l.At.Equal(stored[1].CreatedAt) || l.At.Location() != time.UTC {
		t.Errorf("last text = %+v, want Sara's (at %v), in UTC", l, stored[1].CreatedAt)
	}
}

func TestStore_CreateConversation(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	c, err := w.store.CreateConversation(ctx, "case-emma", messaging.ConversationShared, []string{w.ids["sara"], w.ids["jonas"]})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.store.AddMember(ctx, c.ID, w.ids["sara"]); err != nil { // twice is fine
		t.Fatal(err)
	}
	if n := w.count(t, `SELECT COUNT(*) FROM conversation_members WHERE conversation_id = ?`, c.ID); n != 2 {
		t.Errorf("%d members, want 2", n)
	}
	if _, err := w.store.CreateConversation(ctx, "case-emma", "group", nil); !errors.Is(err, messaging.ErrInvalidMessage) {
		t.Errorf("unknown kind: %v", err)
	}
	if _, err := w.store.CreateConversation(ctx, "no-such-case", messaging.ConversationParty, nil); err == nil {
		t.Errorf("conversation in a missing case was created")
	}
	if _, err := w.store.Conversation(ctx, "missing"); !errors.Is(err, messaging.ErrNotFound) {
		t.Errorf("Conversation(missing) = %v, want ErrNotFound", err)
	}
}
