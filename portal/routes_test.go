package portal

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestRoutes_everyPersonEveryPage is the access table for the pages that
// are not tied to one case or document (those are in
// TestAccess_everyPersonEveryRoute): every demo person, and nobody, against
// every signed-in page and every conversation. The expectations are written
// out by hand from DESIGN.md's access rules and the demo cast.
func TestRoutes_everyPersonEveryPage(t *testing.T) {
	e := newChatEnv(t)
	const (
		ok   = http.StatusOK
		see  = http.StatusSeeOther
		none = http.StatusNotFound
	)
	staff := map[string]bool{"kari": true, "ola": true, "ingrid": true}
	// Who may open each conversation: its member, the case's staff, the
	// team lead, and (Ola is away in the demo) his substitute Kari.
	convReaders := map[string][]string{
		"emma/sara":  {"sara", "kari", "ingrid"},
		"emma/jonas": {"jonas", "kari", "ingrid"},
		"noah/noah":  {"noah", "ola", "ingrid", "kari"},
		"noah/leila": {"leila", "ola", "ingrid", "kari"},
		"lina/maria": {"maria", "kari", "ingrid"},
		"adam/maria": {"maria", "kari", "ingrid"},
	}
	if len(e.convs) != len(convReaders) {
		t.Fatalf("demo has %d conversations, want %d", len(e.convs), len(convReaders))
	}
	expect := func(who, path string) int {
		if who == "" {
			return see
		}
		switch path {
		case "/cases":
			switch who {
			case "sara", "jonas", "noah", "leila":
				return see // one case: straight to it
			}
			return ok // several cases, none (Per), or staff
		case "/inbox", "/availability":
			if staff[who] {
				return ok
			}
			return none
		case "/waiting":
			if who == "ingrid" {
				return ok
			}
			return none
		}
		for key, readers := range convReaders {
			if path == "/conversations/"+e.convs[key] {
				if contains(readers, who) {
					return ok
				}
				return none
			}
		}
		t.Fatalf("no expectation for %s", path)
		return 0
	}
	paths := []string{"/cases", "/inbox", "/availability", "/waiting"}
	for _, id := range e.convs {
		paths = append(paths, "/conversations/"+id)
	}
	for _, who := range append([]string{""}, everyone...) {
		for _, path := range paths {
			want := expect(who, path)
			rec := e.get(who, path)
			if rec.Code != want {
				t.Errorf("%s: GET %s = %d, want %d", orNobody(who), path, rec.Code, want)
			}
			lang := "nb"
			if who == "maria" {
				lang = "en" // her saved language
			}
			notFound := e.bundle.Localizer(lang).T("error_not_found_title", nil)
			if want == none && !strings.Contains(rec.Body.String(), notFound) {
				t.Errorf("%s: GET %s: 404 without the ordinary not-found page", orNobody(who), path)
			}
		}
	}
}

// TestSecurityHeaders_everyRoute walks every registered route, as someone
// allowed and as nobody, plus a 404, a refused form (403) and a 500 page,
// and checks the header baseline of SECURITY.md on each response.
func TestSecurityHeaders_everyRoute(t *testing.T) {
	e := newChatEnv(t)
	check := func(name string, rec *httptest.ResponseRecorder) {
		t.Helper()
		h := rec.Header()
		for k, want := range map[string]string{
			"X-Content-Type-Options": "nosniff",
			"Referrer-Policy":        "no-referrer",
		} {
			if got := h.Get(k); got != want {
				t.Errorf("%s (%d): %s = %q, want %q", name, rec.Code, k, got, want)
			}
		}
		if !strings.Contains(h.Get("Strict-Transport-Security"), "max-age=") {
			t.Errorf("%s (%d): no HSTS", name, rec.Code)
		}
		csp := h.Get("Content-Security-Policy")
		if csp == "" || strings.Contains(csp, "unsafe-inline") || !strings.Contains(csp, "frame-ancestors") {
			t.Errorf("%s (%d): CSP = %q", name, rec.Code, csp)
		}
		// Everything personal is no-store; fingerprinted static files are
		// cached, and the public API description is revalidated.
		public := strings.HasPrefix(name, "GET /static/") || strings.HasPrefix(name, "GET /api/v1/openapi.yaml")
		if cc := h.Get("Cache-Control"); !public && cc != "no-store" {
			t.Errorf("%s (%d): Cache-Control = %q, want no-store", name, rec.Code, cc)
		}
	}
	// Fill each route's parameters with something real.
	param := map[string]string{
		":id":        e.cases["emma"],
		":hash":      e.srv.assets.hash["css/app.css"],
		"*":          "css/app.css",
		":meldingId": NewID(),
		":index":     "0",
	}
	n := 0
	for _, r := range e.srv.e.Routes() {
		path := r.Path
		for k, v := range param {
			path = strings.ReplaceAll(path, k, v)
		}
		if strings.HasPrefix(r.Path, "/documents/") {
			path = strings.ReplaceAll(r.Path, ":id", e.docs[emmaPlan])
		}
		if strings.HasPrefix(r.Path, "/conversations/") {
			path = strings.ReplaceAll(r.Path, ":id", e.convs["emma/sara"])
		}
		for _, who := range []string{"", "sara", "kari", "ingrid"} {
			req := httptest.NewRequest(r.Method, path, strings.NewReader(""))
			if who != "" {
				req.AddCookie(&http.Cookie{Name: sessionCookie, Value: e.tokens[who]})
			}
			rec := httptest.NewRecorder()
			e.srv.ServeHTTP(rec, req)
			check(r.Method+" "+path+" as "+orNobody(who), rec)
			n++
		}
	}
	if n < 40 {
		t.Fatalf("walked only %d route requests; the route list looks wrong", n)
	}
	check("unknown path", e.get("sara", "/no/such/page"))
	// A 500: the audit log cannot be written, so the read is refused.
	e.breakAudit()
	rec := e.get("sara", "/cases/"+e.cases["emma"])
	if rec.Code != http.StatusInternalServerError {
		t.Fatalf("GET case with a broken audit log = %d, want 500", rec.Code)
	}
	check("500 page", rec)
}
