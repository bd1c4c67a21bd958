package portal

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// A family member's request for access shows in the inbox of the staff who
// may see the case — and only theirs.
func TestInbox_accessRequests(t *testing.T) {
	e := newChatEnv(t)
	emma := e.cases["emma"]
	if rec := e.postForm("jonas", "/cases/"+emma+"/access-requests", url.Values{}); rec.Code != http.StatusSeeOther {
		t.Fatalf("Jonas's request for access = %d, want 303", rec.Code)
	}
	want := "Emma: Jonas Hansen ber om innsyn"
	for _, who := range []string{"kari", "ingrid"} {
		body := e.get(who, "/inbox").Body.String()
		if !strings.Contains(body, want) || !strings.Contains(body, `href="/cases/`+emma+`"`) ||
			!strings.Contains(body, "1 forespørsel om innsyn venter på svar") {
			t.Errorf("%s's inbox does not show Jonas's request:\n%s", who, body)
		}
	}
	var n int
	if err := e.db.Get(&n, e.db.Rebind(`SELECT COUNT(*) FROM audit WHERE actor_id = ? AND case_id = ? AND action = ?`),
		e.users["kari"], emma, string(ActCaseList)); err != nil || n == 0 {
		t.Errorf("kari's read of the request is not audited (%d rows, err %v)", n, err)
	}
	if body := e.get("ola", "/inbox").Body.String(); strings.Contains(body, "Jonas Hansen") || strings.Contains(body, "innsyn") {
		t.Errorf("Ola, not on Emma's case, sees the request:\n%s", body)
	}
	if rec := e.get("sara", "/inbox"); rec.Code != http.StatusNotFound {
		t.Errorf("sara GET /inbox = %d, want 404", rec.Code)
	}

	// Once the case system has answered, it leaves the inbox.
	e.db.MustExec(e.db.Rebind(`UPDATE access_requests SET status = ? WHERE case_id = ?`), "GODKJENT", emma)
	if strings.Contains(e.get("kari", "/inbox").Body.String(), want) {
		t.Error("an answered request is still in kari's inbox")
	}
}
