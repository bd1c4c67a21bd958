package main

import (
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

// TestGen_messageID: the dataset's message ids are shaped like the
// portal's (24 characters of lowercase base32hex) and sort by the time
// their message was written, so the run's new messages are added at the
// end of the index, as in a portal that made them all.
func TestGen_messageID(t *testing.T) {
	g := &gen{r: rand.New(rand.NewPCG(1, 2))}
	t0 := time.Date(2022, 3, 1, 12, 0, 0, 0, time.UTC)
	prev := ""
	for i, at := range []time.Time{t0, t0.Add(time.Millisecond), t0.Add(time.Minute), t0.AddDate(4, 0, 0), time.Now()} {
		id := g.messageID(at)
		if len(id) != 24 || strings.Trim(id, "0123456789abcdefghijklmnopqrstuv") != "" {
			t.Errorf("messageID(%v) = %q, want 24 characters of lowercase base32hex", at, id)
		}
		if i > 0 && id <= prev {
			t.Errorf("messageID(%v) = %q sorts before the earlier message's %q", at, id, prev)
		}
		prev = id
	}
	if a, b := g.messageID(t0), g.messageID(t0); a == b {
		t.Errorf("two messages of the same millisecond got the same id %q", a)
	}
}
