package messaging

import (
	"strings"
	"testing"
	"time"
)

// TestNewMessageID: ids sort by the time they were made, down to the
// millisecond, are as long as the other ids, and two made in the same
// millisecond still differ.
func TestNewMessageID(t *testing.T) {
	t0 := time.Date(2026, 11, 23, 6, 0, 0, 0, time.UTC)
	var prev string
	for i, at := range []time.Time{
		t0, t0.Add(time.Millisecond), t0.Add(time.Second), t0.Add(time.Hour), t0.AddDate(1, 0, 0), t0.AddDate(60, 0, 0),
	} {
		id := newMessageID(at)
		if len(id) != len(newID()) || strings.Trim(id, "0123456789abcdefghijklmnopqrstuv") != "" {
			t.Errorf("newMessageID(%v) = %q: want %d characters of lowercase base32hex", at, id, len(newID()))
		}
		if i > 0 && id <= prev {
			t.Errorf("newMessageID(%v) = %q, not after the id made before it, %q", at, id, prev)
		}
		prev = id
	}
	seen := map[string]bool{}
	for range 1000 {
		id := newMessageID(t0)
		if seen[id] {
			t.Fatalf("newMessageID made %q twice in one millisecond", id)
		}
		seen[id] = true
	}
}
