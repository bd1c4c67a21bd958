package portal

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"familieportal/i18n"
	"familieportal/portal/db"
	"familieportal/portal/db/dbtest"
)

// env is a portal over a real SQLite file loaded with the demo cast.
type env struct {
	t      *testing.T
	db     *sqlx.DB
	store  *Store
	srv    *Server
	bundle *i18n.Bundle
	cases  map[string]string // demo case key ("emma") -> id
	docs   map[string]string // document title -> id
	users  map[string]string // demo key -> user id
	tokens map[string]string // demo key -> session token
}

func newEnv(t *testing.T, opt Options) *env {
	t.Helper()
	ctx := context.Background()
	// SQLite, or PostgreSQL in the second run of TestMain (dialect_test.go).
	d, err := db.Open(ctx, dbtest.DSN(t, dbtest.Current()), db.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	if err := LoadDemo(ctx, d, os.DirFS("../testdata/demo"), time.Now()); err != nil {
		t.Fatal(err)
	}
	bundle, err := i18n.NewBundle()
	if err != nil {
		t.Fatal(err)
	}
	store := NewStore(d)
	srv, err := NewServer(store, bundle, slog.New(slog.NewTextHandler(io.Discard, nil)), opt)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, db: d, store: store, srv: srv, bundle: bundle,
		cases: map[string]string{}, docs: map[string]string{}, users: map[string]string{}, tokens: map[string]string{}}
	children := map[string]string{"Emma": "emma", "Noah": "noah", "Lina": "lina", "Adam": "adam"}
	var rows []struct{ ID, Child string }
	if err := d.Select(&rows, `SELECT id, child_name AS child FROM cases`); err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		e.cases[children[r.Child]] = r.ID
	}
	var docs []struct{ ID, Title string }
	if err := d.Select(&docs, `SELECT id, title FROM documents`); err != nil {
		t.Fatal(err)
	}
	for _, r := range docs {
		e.docs[r.Title] = r.ID
	}
	var users []struct{ ID, Key string }
	if err := d.Select(&users, `SELECT id, demo_key AS key FROM users`); err != nil {
		t.Fatal(err)
	}
	for _, u := range users {
		e.users[u.Key] = u.ID
		tok, err := store.CreateSession(ctx, u.ID)
		if err != nil {
			t.Fatal(err)
		}
		e.tokens[u.Key] = tok
	}
	return e
}

// get requests path as the demo person who ("" for signed out).
func (e *env) get(who, path string, header ...string) *httptest.ResponseRecorder {
	e.t.Helper()
	req := httptest.NewRequest(http.MethodGet, path, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	if who != "" {
		tok, ok := e.tokens[who]
		if !ok {
			e.t.Fatalf("no demo person %q", who)
		}
		req.AddCookie(&http.Cookie{Name: sessionCookie, Value: tok})
	}
	rec := httptest.NewRecorder()
	e.srv.ServeHTTP(rec, req)
	return rec
}

// The demo documents by title, and who may read each (besides the staff on
// the case). Written out by hand from DESIGN.md's demo cast, not derived
// from the code under test.
const (
	emmaLetter   = "Vi har mottatt en bekymringsmelding om Emma"
	emmaPlan     = "Plan for undersøkelsen"
	emmaMinutes  = "Referat fra samtale med Sara Hansen" // withheld from Jonas (§ 12-6)
	noahDecision = "Vedtak om hjelpetiltak"
	noahPlan     = "Tiltaksplan for Noah"
	noahNote     = "Notat fra samtale med Noah" // published only to Noah
	noahLetter   = "Innkalling til møte om tiltaksplanen"
	linaLetter   = "Vi har mottatt en bekymringsmelding om Lina"
	adamMinutes  = "Referat fra evalueringsmøte"
	adamDecision = "Vedtak om å avslutte saken"
)

var (
	everyone = []string{"sara", "jonas", "noah", "leila", "maria", "per", "kari", "ola", "ingrid"}

	caseReaders = map[string][]string{
		"emma": {"sara", "jonas", "kari", "ingrid"},
		"noah": {"noah", "leila", "ola", "ingrid"},
		"lina": {"maria", "kari", "ingrid"},
		"adam": {"maria", "kari", "ingrid"},
	}
	docReaders = map[string][]string{
		emmaLetter:   {"sara", "jonas", "kari", "ingrid"},
		emmaPlan:     {"sara", "jonas", "kari", "ingrid"},
		emmaMinutes:  {"sara", "kari", "ingrid"},
		noahDecision: {"noah", "leila", "ola", "ingrid"},
		noahPlan:     {"noah", "leila", "ola", "ingrid"},
		noahNote:     {"noah", "ola", "ingrid"},
		noahLetter:   {"noah", "leila", "ola", "ingrid"},
		linaLetter:   {"maria", "kari", "ingrid"},
		adamMinutes:  {"maria", "kari", "ingrid"},
		adamDecision: {"maria", "kari", "ingrid"},
	}
	pdfs = map[string]bool{emmaPlan: true, emmaMinutes: true, noahDecision: true, noahPlan: true, adamDecision: true}
)

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

// TestAccess_everyPersonEveryRoute is the access table: every demo person
// (and nobody) against every case, timeline, document list, document,
// download and embedded view. Not yours is 404, exactly like missing.
func TestAccess_everyPersonEveryRoute(t *testing.T) {
	e := newEnv(t, Options{Demo: true})
	type route struct{ name, path string }
	var routes []route
	allowed := map[string][]string{}
	for key, id := range e.cases {
		for _, suffix := range []string{"", "/documents", "/timeline"} {
			r := route{"case " + key + suffix, "/cases/" + id + suffix}
			routes = append(routes, r)
			allowed[r.path] = caseReaders[key]
		}
	}
	for title, id := range e.docs {
		for _, suffix := range []string{"", "/download", "/view"} {
			r := route{"document " + title + suffix, "/documents/" + id + suffix}
			routes = append(routes, r)
			if suffix == "/view" && !pdfs[title] {
				allowed[r.path] = nil // only PDFs are embedded
				continue
			}
			allowed[r.path] = docReaders[title]
		}
	}
	routes = append(routes,
		route{"unknown case", "/cases/" + NewID()},
		route{"unknown document", "/documents/" + NewID()},
		route{"unknown document download", "/documents/" + NewID() + "/download"},
	)
	if len(e.cases) != 4 || len(e.docs) != len(docReaders) {
		t.Fatalf("demo cast has %d cases and %d documents, want 4 and %d", len(e.cases), len(e.docs), len(docReaders))
	}

	for _, who := range append([]string{""}, everyone...) {
		for _, r := range routes {
			want := http.StatusNotFound
			switch {
			case who == "":
				want = http.StatusSeeOther
			case contains(allowed[r.path], who):
				want = http.StatusOK
			}
			rec := e.get(who, r.path)
			if rec.Code != want {
				t.Errorf("%s: GET %s = %d, want %d", orNobody(who), r.name, rec.Code, want)
			}
			if want == http.StatusSeeOther && rec.Header().Get("Location") != "/signin" {
				t.Errorf("%s: GET %s redirects to %q, want /signin", orNobody(who), r.name, rec.Header().Get("Location"))
			}
		}
	}
}

func orNobody(who string) string {
	if who == "" {
		return "signed out"
	}
	return who
}

// TestAccess_hiddenDocumentsAppearNowhere checks that a document a person
// may not read is not in any list, count or page they can reach.
func TestAccess_hiddenDocumentsAppearNowhere(t *testing.T) {
	e := newEnv(t, Options{Demo: true})
	for _, tt := range []struct {
		who, caseKey, hidden string
		wantNew              string // the "new documents" count they should see
	}{
		{"jonas", "emma", emmaMinutes, "2 nye dokumenter"},
		{"leila", "noah", noahNote, "3 nye dokumenter"},
	} {
		id := e.cases[tt.caseKey]
		for _, path := range []string{"/cases", "/cases/" + id, "/cases/" + id + "/documents", "/cases/" + id + "/timeline"} {
			rec := e.get(tt.who, path)
			if rec.Code != http.StatusOK && rec.Code != http.StatusSeeOther {
				t.Fatalf("%s: GET %s = %d", tt.who, path, rec.Code)
			}
			body := rec.Body.String()
			if strings.Contains(body, tt.hidden) || strings.Contains(body, e.docs[tt.hidden]) {
				t.Errorf("%s: GET %s shows the hidden document %q", tt.who, path, tt.hidden)
			}
		}
		if body := e.get(tt.who, "/cases/"+id).Body.String(); !strings.Contains(body, tt.wantNew) {
			t.Errorf("%s: case page does not count %q", tt.who, tt.wantNew)
		}
	}
	// Sara sees all three of Emma's documents, and no withheld notice.
	sara := e.get("sara", "/cases/"+e.cases["emma"]).Body.String()
	if !strings.Contains(sara, emmaMinutes) || !strings.Contains(sara, "3 nye dokumenter") {
		t.Errorf("sara: case page lacks the minutes or the count of 3")
	}
	// The general notice: Jonas gets it, Sara and Leila do not (a document
	// not published to Leila is not withheld from her).
	notice := "Noen dokumenter vises ikke for deg"
	for who, want := range map[string]bool{"jonas": true, "sara": false, "leila": false} {
		caseKey := "emma"
		if who == "leila" {
			caseKey = "noah"
		}
		if got := strings.Contains(e.get(who, "/cases/"+e.cases[caseKey]).Body.String(), notice); got != want {
			t.Errorf("%s: withheld notice shown = %v, want %v", who, got, want)
		}
	}
	// Staff see who can and cannot see each document, with the reason.
	kari := e.get("kari", "/cases/"+e.cases["emma"]+"/documents").Body.String()
	if !strings.Contains(kari, "Holdt tilbake fra Jonas Hansen") || !strings.Contains(kari, "§ 12-6") {
		t.Errorf("kari: documents page does not show that the minutes are withheld from Jonas")
	}
}

// TestAccess_deniedIsIndistinguishableAndAudited: a 404 for someone else's
// document looks exactly like one for a document that does not exist, and
// the refusal is in the audit log.
func TestAccess_deniedIsIndistinguishableAndAudited(t *testing.T) {
	e := newEnv(t, Options{Demo: true})
	hidden := e.docs[emmaMinutes]
	denied := e.get("jonas", "/documents/"+hidden)
	missing := e.get("jonas", "/documents/"+NewID())
	if denied.Code != http.StatusNotFound || missing.Code != http.StatusNotFound {
		t.Fatalf("codes = %d and %d, want 404 and 404", denied.Code, missing.Code)
	}
	if a, b := normalize(denied.Body.String()), normalize(missing.Body.String()); a != b {
		t.Errorf("404 bodies differ:\n%s\n---\n%s", a, b)
	}
	var n int
	if err := e.db.Get(&n, e.db.Rebind(`SELECT COUNT(*) FROM audit WHERE actor_id = ? AND object_id = ? AND outcome = 'denied'`),
		e.users["jonas"], hidden); err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Errorf("denied audit rows for jonas on the withheld document = %d, want 1", n)
	}
	e.get("sara", "/documents/"+hidden)
	if err := e.db.Get(&n, e.db.Rebind(`SELECT COUNT(*) FROM audit WHERE actor_id = ? AND object_id = ? AND outcome = 'allowed' AND action = 'document.read'`),
		e.users["sara"], hidden); err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Errorf("allowed audit rows for sara reading the minutes = %d, want 1", n)
	}
}

var volatile = regexp.MustCompile(`(nonce|value)="[^"]*"|[0-9a-zA-Z]{32}`)

func normalize(s string) string { return volatile.ReplaceAllString(s, "") }

// breakAudit makes every insert into the audit log fail, as a full disk
// would, on either database.
func (e *env) breakAudit() {
	e.t.Helper()
	if db.Dialect(e.db) == db.Postgres {
		e.db.MustExec(`CREATE FUNCTION audit_broken() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'disk full'; END $$`)
		e.db.MustExec(`CREATE TRIGGER audit_broken BEFORE INSERT ON audit FOR EACH ROW EXECUTE FUNCTION audit_broken()`)
		return
	}
	e.db.MustExec(`CREATE TRIGGER audit_broken BEFORE INSERT ON audit BEGIN SELECT RAISE(ABORT, 'disk full'); END`)
}

// TestAudit_failsClosed: when the audit entry cannot be written, the read
// is refused and nothing of the case is shown.
func TestAudit_failsClosed(t *testing.T) {
	e := newEnv(t, Options{Demo: true})
	e.breakAudit()
	for _, path := range []string{"/cases", "/cases/" + e.cases["emma"], "/documents/" + e.docs[emmaPlan] + "/download"} {
		rec := e.get("sara", path)
		if rec.Code != http.StatusInternalServerError {
			t.Errorf("GET %s with a broken audit log = %d, want 500", path, rec.Code)
		}
		if body := rec.Body.String(); strings.Contains(body, "Emma") || strings.Contains(body, emmaPlan) {
			t.Errorf("GET %s with a broken audit log shows case data", path)
		}
	}
}

// TestAudit_appendOnly: the database itself refuses to change or remove
// audit rows.
func TestAudit_appendOnly(t *testing.T) {
	e := newEnv(t, Options{Demo: true})
	e.get("sara", "/cases/"+e.cases["emma"])
	if _, err := e.db.Exec(`UPDATE audit SET outcome = 'denied'`); err == nil {
		t.Error("UPDATE audit succeeded, want an error")
	}
	if _, err := e.db.Exec(`DELETE FROM audit`); err == nil {
		t.Error("DELETE FROM audit succeeded, want an error")
	}
	var n int
	if err := e.db.Get(&n, `SELECT COUNT(*) FROM audit WHERE outcome = 'allowed'`); err != nil || n == 0 {
		t.Errorf("allowed audit rows = %d (err %v), want them untouched", n, err)
	}
}

// TestDocument_download checks the download headers and that the bytes are
// exactly what was stored.
func TestDocument_download(t *testing.T) {
	e := newEnv(t, Options{Demo: true})
	for _, tt := range []struct {
		title, wantType, wantName string
	}{
		{emmaPlan, "application/pdf", "emma-plan-undersokelse.pdf"},
		{emmaLetter, "text/plain; charset=utf-8", "emma-brev-melding.txt"},
	} {
		rec := e.get("sara", "/documents/"+e.docs[tt.title]+"/download")
		if rec.Code != http.StatusOK {
			t.Fatalf("download %q = %d", tt.title, rec.Code)
		}
		h := rec.Header()
		if got := h.Get("Content-Type"); got != tt.wantType {
			t.Errorf("Content-Type = %q, want %q", got, tt.wantType)
		}
		if got := h.Get("X-Content-Type-Options"); got != "nosniff" {
			t.Errorf("X-Content-Type-Options = %q, want nosniff", got)
		}
		if got, want := h.Get("Content-Disposition"), "attachment; filename="+tt.wantName; got != want {
			t.Errorf("Content-Disposition = %q, want %q", got, want)
		}
		if got := h.Get("Cache-Control"); got != "no-store" {
			t.Errorf("Cache-Control = %q, want no-store", got)
		}
		var stored string
		if err := e.db.Get(&stored, e.db.Rebind(`SELECT sha256 FROM documents WHERE id = ?`), e.docs[tt.title]); err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(rec.Body.Bytes())
		if hex.EncodeToString(sum[:]) != stored {
			t.Errorf("downloaded bytes of %q do not match the stored sha256", tt.title)
		}
	}
	// The embedded view of a PDF is inline, may be framed only by the portal.
	rec := e.get("sara", "/documents/"+e.docs[emmaPlan]+"/view")
	if got := rec.Header().Get("Content-Disposition"); !strings.HasPrefix(got, "inline;") {
		t.Errorf("view Content-Disposition = %q, want inline", got)
	}
	if got := rec.Header().Get("Content-Security-Policy"); !strings.Contains(got, "frame-ancestors 'self'") {
		t.Errorf("view CSP = %q, want frame-ancestors 'self'", got)
	}
}

func TestSafeFilename(t *testing.T) {
	for in, want := range map[string]string{
		"vedtak.pdf":              "vedtak.pdf",
		"../../etc/passwd":        "_.._etc_passwd",
		"a\"; filename=evil.html": "a___filename_evil.html",
		"møte referat.txt":        "m_te_referat.txt",
		"":                        "document",
		"...":                     "document",
	} {
		if got := safeFilename(in); got != want {
			t.Errorf("safeFilename(%q) = %q, want %q", in, got, want)
		}
	}
}

var tagRE = regexp.MustCompile(`<[^>]*>`)

// TestPages_renderInEveryLanguage renders every page for a parent, a youth
// and a caseworker in nb, nn and en, and checks the language is declared
// and no message id leaked into the text.
func TestPages_renderInEveryLanguage(t *testing.T) {
	e := newEnv(t, Options{Demo: true})
	var ids []string
	for _, k := range e.bundle.Keys("nb") {
		if strings.Contains(k, "_") {
			ids = append(ids, k)
		}
	}
	pages := map[string][]string{
		"":      {"/signin", "/demo", "/privacy", "/accessibility", "/words", "/no-such-page"},
		"sara":  {"/cases/" + e.cases["emma"], "/cases/" + e.cases["emma"] + "/documents", "/cases/" + e.cases["emma"] + "/timeline", "/documents/" + e.docs[emmaPlan], "/documents/" + e.docs[emmaLetter]},
		"noah":  {"/cases/" + e.cases["noah"], "/documents/" + e.docs[noahNote]},
		"per":   {"/cases"},
		"maria": {"/cases"},
		"kari":  {"/cases", "/cases/" + e.cases["emma"], "/cases/" + e.cases["emma"] + "/documents"},
	}
	markers := map[string]string{"nb": "Lukk siden raskt", "nn": "Lukk sida raskt", "en": "Quick exit"}
	for _, lang := range i18n.Supported() {
		for who, paths := range pages {
			for _, path := range paths {
				// Maria saved English; the others follow the language cookie.
				req := httptest.NewRequest(http.MethodGet, path, nil)
				req.AddCookie(&http.Cookie{Name: langCookie, Value: lang})
				if who != "" {
					req.AddCookie(&http.Cookie{Name: sessionCookie, Value: e.tokens[who]})
				}
				rec := httptest.NewRecorder()
				e.srv.ServeHTTP(rec, req)
				wantLang := lang
				if who == "maria" {
					wantLang = "en"
				}
				if rec.Code >= 500 {
					t.Fatalf("%s %s %s = %d", lang, orNobody(who), path, rec.Code)
				}
				body := rec.Body.String()
				if !strings.Contains(body, `<html lang="`+wantLang+`">`) {
					t.Errorf("%s %s %s: not declared as %s", lang, orNobody(who), path, wantLang)
				}
				if !strings.Contains(body, markers[wantLang]) {
					t.Errorf("%s %s %s: quick exit is not in %s", lang, orNobody(who), path, wantLang)
				}
				text := tagRE.ReplaceAllString(body, " ")
				for _, id := range ids {
					if strings.Contains(text, id) {
						t.Errorf("%s %s %s: message id %q shown instead of text", lang, orNobody(who), path, id)
					}
				}
			}
		}
	}
}

// TestDemoSignIn goes through the demo form: CSRF is required, a new
// session is made, and /demo does not exist outside demo mode.
func TestDemoSignIn(t *testing.T) {
	e := newEnv(t, Options{Demo: true})
	page := e.get("", "/demo")
	if page.Code != http.StatusOK || !strings.Contains(page.Body.String(), "Sara Hansen") {
		t.Fatalf("GET /demo = %d, or it lacks Sara Hansen", page.Code)
	}
	var csrfCookie *http.Cookie
	for _, c := range page.Result().Cookies() {
		if c.Name == "__Host-csrf" {
			csrfCookie = c
		}
	}
	if csrfCookie == nil {
		t.Fatal("GET /demo set no CSRF cookie")
	}
	m := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(page.Body.String())
	if m == nil {
		t.Fatal("demo form has no csrf field")
	}
	post := func(form url.Values, withCookie bool) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodPost, "/demo", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if withCookie {
			req.AddCookie(csrfCookie)
		}
		rec := httptest.NewRecorder()
		e.srv.ServeHTTP(rec, req)
		return rec
	}
	if rec := post(url.Values{"person": {"sara"}}, true); rec.Code != http.StatusForbidden {
		t.Errorf("POST /demo without a CSRF token = %d, want 403", rec.Code)
	}
	if rec := post(url.Values{"person": {"sara"}, "csrf": {"forged"}}, true); rec.Code != http.StatusForbidden {
		t.Errorf("POST /demo with a wrong CSRF token = %d, want 403", rec.Code)
	}
	if rec := post(url.Values{"person": {"nobody"}, "csrf": {m[1]}}, true); rec.Code != http.StatusBadRequest {
		t.Errorf("POST /demo for an unknown person = %d, want 400", rec.Code)
	}
	rec := post(url.Values{"person": {"sara"}, "csrf": {m[1]}}, true)
	if rec.Code != http.StatusSeeOther {
		t.Fatalf("POST /demo = %d, want 303", rec.Code)
	}
	var session *http.Cookie
	for _, c := range rec.Result().Cookies() {
		if c.Name == sessionCookie {
			session = c
		}
	}
	if session == nil || !session.Secure || !session.HttpOnly || session.SameSite != http.SameSiteLaxMode || session.Path != "/" {
		t.Fatalf("session cookie = %+v, want Secure, HttpOnly, SameSite=Lax, Path=/", session)
	}
	u, err := e.store.SessionUser(context.Background(), session.Value)
	if err != nil || u.ID != e.users["sara"] {
		t.Errorf("session belongs to %q (err %v), want sara", u.ID, err)
	}

	prod := newEnv(t, Options{})
	if rec := prod.get("", "/demo"); rec.Code != http.StatusNotFound {
		t.Errorf("GET /demo outside demo mode = %d, want 404", rec.Code)
	}
}

// TestSecurityHeaders checks the baseline on pages, errors and files.
func TestSecurityHeaders(t *testing.T) {
	e := newEnv(t, Options{Demo: true})
	for _, tt := range []struct{ who, path string }{
		{"", "/signin"}, {"", "/no-such-page"}, {"", "/healthz"}, {"", "/cases"},
		{"sara", "/cases/" + e.cases["emma"]}, {"jonas", "/documents/" + e.docs[emmaMinutes]},
		{"sara", "/documents/" + e.docs[emmaPlan] + "/download"},
	} {
		h := e.get(tt.who, tt.path).Header()
		for k, want := range map[string]string{
			"X-Content-Type-Options": "nosniff",
			"Referrer-Policy":        "no-referrer",
			"Cache-Control":          "no-store",
		} {
			if got := h.Get(k); got != want {
				t.Errorf("%s %s: %s = %q, want %q", orNobody(tt.who), tt.path, k, got, want)
			}
		}
		if !strings.Contains(h.Get("Strict-Transport-Security"), "max-age=") {
			t.Errorf("%s %s: no HSTS", orNobody(tt.who), tt.path)
		}
		csp := h.Get("Content-Security-Policy")
		if !strings.Contains(csp, "frame-ancestors 'none'") || strings.Contains(csp, "unsafe-inline") {
			t.Errorf("%s %s: CSP = %q", orNobody(tt.who), tt.path, csp)
		}
	}
}

// TestStatic serves fingerprinted files, cacheable forever, and nothing else.
func TestStatic(t *testing.T) {
	e := newEnv(t, Options{Demo: true})
	u := e.srv.assets.url("css/app.css")
	rec := e.get("", u)
	if rec.Code != http.StatusOK || !strings.Contains(rec.Header().Get("Cache-Control"), "immutable") ||
		!strings.HasPrefix(rec.Header().Get("Content-Type"), "text/css") {
		t.Errorf("GET %s = %d %q %q", u, rec.Code, rec.Header().Get("Cache-Control"), rec.Header().Get("Content-Type"))
	}

	// Compressed for a browser that takes gzip, the same bytes once
	// unpacked; plain for one that does not (or refuses it with q=0).
	plain := rec.Body.Bytes()
	for _, tt := range []struct {
		accept string
		gz     bool
	}{{"gzip, deflate, br", true}, {"br;q=1.0, gzip;q=0.8", true}, {"", false}, {"gzip;q=0", false}, {"identity", false}} {
		req := httptest.NewRequest(http.MethodGet, u, nil)
		if tt.accept != "" {
			req.Header.Set("Accept-Encoding", tt.accept)
		}
		rec := httptest.NewRecorder()
		e.srv.ServeHTTP(rec, req)
		got := rec.Body.Bytes()
		if isGz := rec.Header().Get("Content-Encoding") == "gzip"; isGz != tt.gz {
			t.Errorf("Accept-Encoding %q: Content-Encoding %q, want gzip %v", tt.accept, rec.Header().Get("Content-Encoding"), tt.gz)
			continue
		}
		if !strings.Contains(strings.Join(rec.Header().Values("Vary"), ","), "Accept-Encoding") {
			t.Errorf("Accept-Encoding %q: Vary = %q, want Accept-Encoding among them", tt.accept, rec.Header().Values("Vary"))
		}
		if tt.gz {
			zr, err := gzip.NewReader(bytes.NewReader(got))
			if err != nil {
				t.Fatal(err)
			}
			if got, err = io.ReadAll(zr); err != nil {
				t.Fatal(err)
			}
			if rec.Body.Len() >= len(plain)/2 {
				t.Errorf("compressed CSS is %d of %d bytes", rec.Body.Len(), len(plain))
			}
		}
		if !bytes.Equal(got, plain) {
			t.Errorf("Accept-Encoding %q: body differs from the file", tt.accept)
		}
	}
	for _, p := range []string{
		"/static/000000000000/css/app.css",
		"/static/" + e.srv.assets.hash["css/app.css"] + "/../static.go",
		"/static/" + e.srv.assets.hash["css/app.css"] + "/%2e%2e/static.go",
	} {
		if rec := e.get("", p); rec.Code != http.StatusNotFound {
			t.Errorf("GET %s = %d, want 404", p, rec.Code)
		}
	}
}

func TestLocalPath(t *testing.T) {
	for in, want := range map[string]string{
		"/cases/x":           "/cases/x",
		"https://evil.test/": "/",
		"//evil.test/":       "/",
		"/\\evil.test":       "/",
		"":                   "/",
		"cases":              "/",
	} {
		if got := localPath(in); got != want {
			t.Errorf("localPath(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestReadyz answers 200 when the database is migrated, 503 after Drain.
func TestReadyz(t *testing.T) {
	e := newEnv(t, Options{Demo: true})
	if rec := e.get("", "/readyz"); rec.Code != http.StatusOK {
		t.Errorf("GET /readyz = %d, want 200", rec.Code)
	}
	e.srv.Drain()
	if rec := e.get("", "/readyz"); rec.Code != http.StatusServiceUnavailable {
		t.Errorf("GET /readyz while draining = %d, want 503", rec.Code)
	}
	if rec := e.get("", "/healthz"); rec.Code != http.StatusOK {
		t.Errorf("GET /healthz while draining = %d, want 200", rec.Code)
	}
}
