package portal

import (
	"strings"
	"testing"
)

// TestAccessLog: a parent sees staff accesses to their case, newest first,
// with role and unit but not names by default, and never another party's
// reads; people who are not parties get 404.
func TestAccessLog(t *testing.T) {
	e := newEnv(t, Options{Demo: true})
	emma := e.cases["emma"]
	e.get("kari", "/documents/"+e.docs[emmaPlan])
	e.get("jonas", "/cases/"+emma) // the other parent: must not show up for Sara

	rec := e.get("sara", "/cases/"+emma+"/access-log")
	if rec.Code != 200 {
		t.Fatalf("sara GET access log = %d", rec.Code)
	}
	body := rec.Body.String()
	if !strings.Contains(body, "saksbehandler (Team 1)") || !strings.Contains(body, "åpnet et dokument") {
		t.Errorf("sara's access log lacks Kari's document read as role and unit:\n%s", body)
	}
	if strings.Contains(body, "Kari Nordmann") {
		t.Error("sara's access log names Kari, want role and unit only by default")
	}
	var jonasRows int
	if err := e.db.Get(&jonasRows, e.db.Rebind(`SELECT COUNT(*) FROM audit WHERE actor_id = ? AND case_id = ?`), e.users["jonas"], emma); err != nil || jonasRows == 0 {
		t.Fatalf("jonas's read was not audited (%d, %v)", jonasRows, err)
	}
	if got, want := strings.Count(body, "<li><time"), countStaffRows(t, e, emma); got != want || want == 0 {
		t.Errorf("access log lists %d entries, want only the %d staff accesses", got, want)
	}
	for _, who := range []string{"per", "leila", "noah"} {
		if rec := e.get(who, "/cases/"+emma+"/access-log"); rec.Code != 404 {
			t.Errorf("%s GET Emma's access log = %d, want 404", who, rec.Code)
		}
	}

	named := newEnv(t, Options{Demo: true, ShowStaffNames: true})
	named.get("kari", "/cases/"+named.cases["emma"])
	if body := named.get("sara", "/cases/"+named.cases["emma"]+"/access-log").Body.String(); !strings.Contains(body, "Kari Nordmann") {
		t.Error("with ShowStaffNames the access log does not name Kari")
	}
}

func countStaffRows(t *testing.T, e *env, caseID string) int {
	t.Helper()
	var n int
	if err := e.db.Get(&n, e.db.Rebind(`SELECT COUNT(*) FROM audit WHERE case_id = ? AND outcome = 'allowed' AND actor_kind IN ('caseworker', 'teamlead')`), caseID); err != nil {
		t.Fatal(err)
	}
	return n
}
