package portal

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/jmoiron/sqlx"

	"familieportal/i18n"
	"familieportal/messaging"
	"familieportal/portal/db"
	"familieportal/portal/db/dbtest"
)

// testPIDKey keys the national-id hash in these tests, as --pid-key would.
var testPIDKey = []byte("test key for national ids, 32+ bytes long")

// fiksPID are the sample people's national ids (fictional, in the
// synthetic range: month + 80), as written in testdata/fiks.
var fiksPID = map[string]string{
	"sara": "14838949512", "jonas": "02878741236", "noah": "07891012345",
	"leila": "30848465432", "maria": "11869078901",
}

// fiksEnv is a portal whose office has its staff but no cases yet: the
// cases come from the case system, through the API or an import.
type fiksEnv struct {
	t        *testing.T
	dsn      string
	db       *sqlx.DB
	store    *Store
	srv      *Server
	officeID string
	staff    map[string]string // kari, ola, ingrid -> user id
	key      string            // an API key of the office with every scope
	keyID    string
}

func newFiksEnv(t *testing.T) *fiksEnv {
	t.Helper()
	ctx := context.Background()
	e := &fiksEnv{t: t, dsn: dbtest.DSN(t, dbtest.Current()), staff: map[string]string{}}
	e.open()
	e.officeID = NewID()
	team := NewID()
	e.exec(`INSERT INTO offices (id, name, municipality, phone, emergency_phone) VALUES (?, 'Fjordvik barneverntjeneste', 'Fjordvik', '21 00 00 00', '21 99 99 99')`, e.officeID)
	e.exec(`INSERT INTO teams (id, office_id, name) VALUES (?, ?, 'Team 1')`, team, e.officeID)
	for key, u := range map[string][2]string{"kari": {"Kari Nordmann", "caseworker"}, "ola": {"Ola Berg", "caseworker"}, "ingrid": {"Ingrid Dahl", "teamlead"}} {
		id := NewID()
		e.staff[key] = id
		e.exec(`INSERT INTO users (id, kind, name, office_id, team_id, unit, created_at) VALUES (?, ?, ?, ?, ?, 'Team 1', ?)`,
			id, u[1], u[0], e.officeID, team, e.store.now())
	}
	var err error
	if e.keyID, e.key, err = e.store.CreateAPIKey(ctx, e.officeID, []string{ScopeCasesWrite, ScopeFeedRead}); err != nil {
		t.Fatal(err)
	}
	return e
}

// open (re)opens the database and the server on it, as a restart would.
func (e *fiksEnv) open() {
	e.t.Helper()
	d, err := db.Open(context.Background(), e.dsn, db.Options{})
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { d.Close() })
	bundle, err := i18n.NewBundle()
	if err != nil {
		e.t.Fatal(err)
	}
	e.db, e.store = d, NewStore(d)
	if e.srv, err = NewServer(e.store, bundle, slog.New(slog.NewTextHandler(io.Discard, nil)), Options{PIDKey: testPIDKey}); err != nil {
		e.t.Fatal(err)
	}
}

func (e *fiksEnv) exec(q string, args ...any) {
	e.t.Helper()
	if _, err := e.db.Exec(e.db.Rebind(q), args...); err != nil {
		e.t.Fatal(err)
	}
}

func (e *fiksEnv) count(q string, args ...any) int {
	e.t.Helper()
	var n int
	if err := e.db.Get(&n, e.db.Rebind(q), args...); err != nil {
		e.t.Fatal(err)
	}
	return n
}

// importSamples imports testdata/fiks into the office.
func (e *fiksEnv) importSamples() ImportReport {
	e.t.Helper()
	in, err := e.store.NewIngest(testPIDKey, e.officeID, "import")
	if err != nil {
		e.t.Fatal(err)
	}
	rep, err := Import(context.Background(), in, os.DirFS("../testdata/fiks"))
	if err != nil {
		e.t.Fatal(err)
	}
	return rep
}

// citizen returns the sample person who, found as sign-in finds them.
func (e *fiksEnv) citizen(who string) User {
	e.t.Helper()
	u, err := e.store.citizenByPIDHash(context.Background(), PIDHash(testPIDKey, fiksPID[who]))
	if err != nil {
		e.t.Fatalf("%s: %v", who, err)
	}
	return u
}

func (e *fiksEnv) session(who string) string {
	e.t.Helper()
	id := e.staff[who]
	if id == "" {
		id = e.citizen(who).ID
	}
	tok, err := e.store.CreateSession(context.Background(), id)
	if err != nil {
		e.t.Fatal(err)
	}
	return tok
}

// api sends a request to the API with key ("" for none).
func (e *fiksEnv) api(method, path, key string, body []byte, header ...string) *httptest.ResponseRecorder {
	e.t.Helper()
	req := httptest.NewRequest(method, path, bytes.NewReader(body))
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	rec := httptest.NewRecorder()
	e.srv.ServeHTTP(rec, req)
	return rec
}

// page gets path as the session token's owner.
func (e *fiksEnv) page(token, path string) *httptest.ResponseRecorder {
	e.t.Helper()
	req := httptest.NewRequest(http.MethodGet, path, nil)
	req.AddCookie(&http.Cookie{Name: sessionCookie, Value: token})
	rec := httptest.NewRecorder()
	e.srv.ServeHTTP(rec, req)
	return rec
}

// problemOf decodes a problem response.
func problemOf(t *testing.T, rec *httptest.ResponseRecorder) problem {
	t.Helper()
	var p problem
	if ct := rec.Header().Get("Content-Type"); ct != "application/problem+json" {
		t.Errorf("Content-Type = %q, want application/problem+json; body %s", ct, rec.Body)
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil {
		t.Fatalf("not a problem: %v: %s", err, rec.Body)
	}
	return p
}

// sampleFile returns the meldingId and body of testdata/fiks/dir/label.*.json.
func sampleFile(t *testing.T, dir, label string) (string, []byte) {
	t.Helper()
	names, err := filepath.Glob(filepath.Join("../testdata/fiks", dir, label+".*.json"))
	if err != nil || len(names) != 1 {
		t.Fatalf("sample %s/%s: %v %v", dir, label, names, err)
	}
	b, err := os.ReadFile(names[0])
	if err != nil {
		t.Fatal(err)
	}
	id, _ := importID(names[0], ".json")
	return id, b
}

func digestOf(b []byte) string {
	s := sha256.Sum256(b)
	return "sha-256=:" + base64.StdEncoding.EncodeToString(s[:]) + ":"
}

// tableCounts counts the rows of the tables an ingestion writes.
func (e *fiksEnv) tableCounts() map[string]int {
	out := map[string]int{}
	for _, tbl := range []string{"cases", "users", "parties", "documents", "document_audience", "document_withheld",
		"timeline_events", "conversations", "fiks_mapper", "fiks_journalposter", "fiks_journalpost_meldinger",
		"fiks_dokumenter", "access_requests", "api_feed"} {
		out[tbl] = e.count(`SELECT COUNT(*) FROM ` + tbl)
	}
	return out
}

func TestAPI_authentication(t *testing.T) {
	e := newFiksEnv(t)
	ctx := context.Background()
	feedOnlyID, feedOnly, err := e.store.CreateAPIKey(ctx, e.officeID, []string{ScopeFeedRead})
	if err != nil {
		t.Fatal(err)
	}
	revokedID, revoked, err := e.store.CreateAPIKey(ctx, e.officeID, []string{ScopeCasesWrite, ScopeFeedRead})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.store.RevokeAPIKey(ctx, revokedID); err != nil {
		t.Fatal(err)
	}
	if err := e.store.RevokeAPIKey(ctx, "no-such-key"); !errors.Is(err, ErrNotFound) {
		t.Errorf("revoking an unknown key = %v, want ErrNotFound", err)
	}
	_ = feedOnlyID
	id, body := sampleFile(t, "mapper", "emma-sara")

	for _, tt := range []struct {
		name, key string
		want      int
	}{
		{"no key", "", http.StatusUnauthorized},
		{"wrong key", "fpk_" + strings.Repeat("A", 43), http.StatusUnauthorized},
		{"not a key", "hunter2", http.StatusUnauthorized},
		{"revoked key", revoked, http.StatusUnauthorized},
		{"key without the scope", feedOnly, http.StatusForbidden},
		{"good key", e.key, http.StatusCreated},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rec := e.api(http.MethodPut, "/api/v1/mapper/"+id, tt.key, body)
			if rec.Code != tt.want {
				t.Fatalf("status = %d, want %d: %s", rec.Code, tt.want, rec.Body)
			}
			if tt.want == http.StatusUnauthorized {
				problemOf(t, rec)
				if rec.Header().Get("WWW-Authenticate") == "" {
					t.Error("401 without WWW-Authenticate")
				}
			}
		})
	}
	if rec := e.api(http.MethodGet, "/api/v1/feed", revoked, nil); rec.Code != http.StatusUnauthorized {
		t.Errorf("feed with a revoked key = %d, want 401", rec.Code)
	}
	if rec := e.api(http.MethodGet, "/api/v1/feed", feedOnly, nil); rec.Code != http.StatusOK {
		t.Errorf("feed with a feed key = %d, want 200: %s", rec.Code, rec.Body)
	}
	if n := e.count(`SELECT COUNT(*) FROM audit WHERE action = ? AND outcome = 'denied'`, ActAPIAuth); n < 4 {
		t.Errorf("%d refused keys audited, want at least 4", n)
	}
	// The API is outside the CSRF check (no cookie authenticates it), and
	// unknown API paths answer in JSON.
	if rec := e.api(http.MethodGet, "/api/v1/nothing", e.key, nil); rec.Code != http.StatusNotFound {
		t.Errorf("unknown API path = %d, want 404", rec.Code)
	} else {
		problemOf(t, rec)
	}
}

func TestAPI_rateLimitPerKey(t *testing.T) {
	e := newFiksEnv(t)
	_, other, err := e.store.CreateAPIKey(context.Background(), e.officeID, []string{ScopeFeedRead})
	if err != nil {
		t.Fatal(err)
	}
	// Several clients at once: the bucket refills at apiRate per second,
	// which requests sent one after another may not outpace on a busy
	// machine or over PostgreSQL.
	const clients = 8
	var limited atomic.Bool
	var wg sync.WaitGroup
	for range clients {
		wg.Go(func() {
			for i := 0; i < apiBurst && !limited.Load(); i++ {
				rec := e.api(http.MethodGet, "/api/v1/feed?limit=1", e.key, nil)
				if rec.Code == http.StatusTooManyRequests {
					if rec.Header().Get("Retry-After") == "" {
						t.Error("429 without Retry-After")
					}
					limited.Store(true)
				}
			}
		})
	}
	wg.Wait()
	if !limited.Load() {
		t.Fatalf("no 429 after %d requests", clients*apiBurst)
	}
	if rec := e.api(http.MethodGet, "/api/v1/feed?limit=1", other, nil); rec.Code != http.StatusOK {
		t.Errorf("another key was limited too: %d", rec.Code)
	}
}

// A key sees its own office only: another office's folders, posts,
// documents and requests are 404, exactly like ones that do not exist.
func TestAPI_otherOffice404(t *testing.T) {
	e := newFiksEnv(t)
	e.importSamples()
	ctx := context.Background()
	other := NewID()
	e.exec(`INSERT INTO offices (id, name, municipality, phone, emergency_phone) VALUES (?, 'Sørvik barneverntjeneste', 'Sørvik', '1', '2')`, other)
	_, key, err := e.store.CreateAPIKey(ctx, other, []string{ScopeCasesWrite, ScopeFeedRead})
	if err != nil {
		t.Fatal(err)
	}
	mappeID, _ := sampleFile(t, "mapper", "emma-sara")
	postID, post := sampleFile(t, "journalposter", "emma-plan-sara")
	pdf, err := os.ReadFile("../testdata/demo/docs/emma-plan-undersokelse.pdf")
	if err != nil {
		t.Fatal(err)
	}
	jonas := e.citizen("jonas")
	g, err := e.store.Authorize(ctx, jonas, e.caseOf("Emma"), ActCaseView, "")
	if err != nil {
		t.Fatal(err)
	}
	req, err := e.store.CreateAccessRequest(ctx, g)
	if err != nil {
		t.Fatal(err)
	}
	before := e.tableCounts()
	for _, tt := range []struct {
		method, path string
		body         []byte
		header       []string
	}{
		{http.MethodGet, "/api/v1/mapper/" + mappeID, nil, nil},
		{http.MethodDelete, "/api/v1/mapper/" + mappeID, nil, nil},
		{http.MethodGet, "/api/v1/journalposter/" + postID, nil, nil},
		{http.MethodPut, "/api/v1/journalposter/" + postID, post, nil},
		{http.MethodDelete, "/api/v1/journalposter/" + postID, nil, nil},
		{http.MethodDelete, "/api/v1/journalposter/" + postID + "/dokumenter/0", nil, nil},
		{http.MethodPut, "/api/v1/journalposter/" + postID + "/dokumenter/0", pdf, []string{"Content-Type", "application/pdf", "Repr-Digest", digestOf(pdf)}},
		{http.MethodPut, "/api/v1/innsynsforesporsler/" + req.ID, []byte(`{"innsynsforesporselStatus":"GODKJENT"}`), nil},
	} {
		rec := e.api(tt.method, tt.path, key, tt.body, tt.header...)
		if rec.Code != http.StatusNotFound {
			t.Errorf("%s %s with another office's key = %d, want 404: %s", tt.method, tt.path, rec.Code, rec.Body)
		}
	}
	if after := e.tableCounts(); !mapsEqual(before, after) {
		t.Errorf("refused requests changed the database:\nbefore %v\nafter  %v", before, after)
	}
	var page FeedPage
	if err := json.Unmarshal(e.api(http.MethodGet, "/api/v1/feed", key, nil).Body.Bytes(), &page); err != nil || len(page.Items) != 0 {
		t.Errorf("another office's feed has %d items (err %v), want none", len(page.Items), err)
	}
	if n := e.count(`SELECT COUNT(*) FROM audit WHERE outcome = 'denied' AND action LIKE 'api.%'`); n < 7 {
		t.Errorf("%d refusals audited, want every one", n)
	}
}

func mapsEqual(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func (e *fiksEnv) caseOf(child string) string {
	e.t.Helper()
	var id string
	if err := e.db.Get(&id, e.db.Rebind(`SELECT id FROM cases WHERE child_name = ?`), child); err != nil {
		e.t.Fatalf("case of %s: %v", child, err)
	}
	return id
}

func (e *fiksEnv) docOf(title string) string {
	e.t.Helper()
	var id string
	if err := e.db.Get(&id, e.db.Rebind(`SELECT id FROM documents WHERE title = ?`), title); err != nil {
		e.t.Fatalf("document %q: %v", title, err)
	}
	return id
}

// Invalid documents are 400 with the field's JSON pointer, and nothing of
// them is stored, even when the problem is found half-way through.
func TestAPI_invalidIs400WithPointer(t *testing.T) {
	e := newFiksEnv(t)
	e.importSamples()
	saraID, sara := sampleFile(t, "mapper", "emma-sara")
	postID, post := sampleFile(t, "journalposter", "emma-referat-sara")
	newMappe := "11111111-2222-4333-8444-555555555555"
	stranger := edit(t, sara, func(m map[string]any) {
		m["minPart"].(map[string]any)["fodselsnummer"] = "01818012345"
		m["minPart"].(map[string]any)["fornavn"] = "Ukjent"
		m["systemId"] = "a-new-case"
		m["saksaar"], m["sakssekvensnummer"] = 2026, 999
	})
	before := e.tableCounts()
	for _, tt := range []struct {
		name, method, path string
		body               []byte
		header             []string
		status             int
		pointer, param     string
	}{
		{"missing field", http.MethodPut, "/api/v1/mapper/" + saraID,
			edit(t, sara, func(m map[string]any) { delete(m["minPart"].(map[string]any), "fodselsnummer") }), nil, 400, "/minPart/fodselsnummer", ""},
		{"unknown field", http.MethodPut, "/api/v1/mapper/" + saraID,
			edit(t, sara, func(m map[string]any) { m["milepeler"].([]any)[1].(map[string]any)["fase"] = 2 }), nil, 400, "/milepeler/1/fase", ""},
		{"duplicate key", http.MethodPut, "/api/v1/mapper/" + saraID,
			[]byte(strings.Replace(string(sara), `"tittel"`, `"tittel": "x", "tittel"`, 1)), nil, 400, "/tittel", ""},
		{"trailing data", http.MethodPut, "/api/v1/mapper/" + saraID, append(append([]byte{}, sara...), '{', '}'), nil, 400, "", ""},
		{"bad path id", http.MethodPut, "/api/v1/mapper/not-a-uuid", sara, nil, 400, "", "meldingId"},
		{"not JSON", http.MethodPut, "/api/v1/mapper/" + saraID, sara, []string{"Content-Type", "text/plain"}, 415, "", "Content-Type"},
		// Valid in itself, refused in the transaction after the person was
		// created: the caseworker is unknown. Nothing of it may remain.
		{"unknown caseworker", http.MethodPut, "/api/v1/mapper/" + newMappe,
			edit(t, stranger, func(m map[string]any) { m["saksansvarlig"] = "Nils Ukjent" }), nil, 400, "/saksansvarlig", ""},
		{"unknown parent", http.MethodPut, "/api/v1/journalposter/" + newMappe,
			edit(t, post, func(m map[string]any) { m["forelderMeldingId"] = "99999999-2222-4333-8444-555555555555" }), nil, 404, "/forelderMeldingId", ""},
		{"bad journalpost", http.MethodPut, "/api/v1/journalposter/" + postID,
			edit(t, post, func(m map[string]any) { m["dokumenter"].([]any)[0].(map[string]any)["storrelse"] = "stor" }), nil, 400, "/dokumenter/0/storrelse", ""},
		{"content: wrong digest", http.MethodPut, "/api/v1/journalposter/" + postID + "/dokumenter/0", []byte("%PDF-1.4 x"),
			[]string{"Content-Type", "application/pdf", "Repr-Digest", digestOf([]byte("other"))}, 400, "", "Repr-Digest"},
		{"content: no digest", http.MethodPut, "/api/v1/journalposter/" + postID + "/dokumenter/0", []byte("%PDF-1.4 x"),
			[]string{"Content-Type", "application/pdf"}, 400, "", "Repr-Digest"},
		{"content: wrong type", http.MethodPut, "/api/v1/journalposter/" + postID + "/dokumenter/0", []byte("hei"),
			[]string{"Content-Type", "text/html", "Repr-Digest", digestOf([]byte("hei"))}, 415, "", "Content-Type"},
		{"content: no such document", http.MethodPut, "/api/v1/journalposter/" + postID + "/dokumenter/7", []byte("hei"),
			[]string{"Content-Type", "application/pdf", "Repr-Digest", digestOf([]byte("hei"))}, 404, "", ""},
		{"answer: bad status", http.MethodPut, "/api/v1/innsynsforesporsler/x", []byte(`{"innsynsforesporselStatus":"KANSKJE"}`), nil, 400, "/innsynsforesporselStatus", ""},
		{"feed: bad cursor", http.MethodGet, "/api/v1/feed?after=abc", nil, nil, 400, "", "after"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rec := e.api(tt.method, tt.path, e.key, tt.body, tt.header...)
			if rec.Code != tt.status {
				t.Fatalf("status = %d, want %d: %s", rec.Code, tt.status, rec.Body)
			}
			p := problemOf(t, rec)
			if tt.pointer == "" && tt.param == "" {
				return
			}
			for _, fe := range p.Errors {
				if (tt.pointer != "" && fe.Pointer == tt.pointer) || (tt.param != "" && fe.Parameter == tt.param) {
					return
				}
			}
			t.Errorf("errors %+v do not point at %q%q", p.Errors, tt.pointer, tt.param)
		})
	}
	if after := e.tableCounts(); !mapsEqual(before, after) {
		t.Errorf("invalid requests changed the database:\nbefore %v\nafter  %v", before, after)
	}
	if e.count(`SELECT COUNT(*) FROM users WHERE pid_hash = ?`, PIDHash(testPIDKey, "01818012345")) != 0 {
		t.Error("the person of a refused folder was stored")
	}
}

// The same message twice is stored once; the same post indexed for two
// parties is one post; the same bytes twice are one document.
func TestAPI_idempotent(t *testing.T) {
	e := newFiksEnv(t)
	saraID, sara := sampleFile(t, "mapper", "emma-sara")
	jonasID, jonas := sampleFile(t, "mapper", "emma-jonas")
	brevSaraID, brevSara := sampleFile(t, "journalposter", "emma-brev-sara")
	brevJonasID, brevJonas := sampleFile(t, "journalposter", "emma-brev-jonas")
	txt, err := os.ReadFile("../testdata/demo/docs/emma-brev-melding.txt")
	if err != nil {
		t.Fatal(err)
	}
	put := func(path string, body []byte, want int, result string) {
		t.Helper()
		rec := e.api(http.MethodPut, path, e.key, body)
		if rec.Code != want || !strings.Contains(rec.Body.String(), `"result":"`+result+`"`) {
			t.Fatalf("PUT %s = %d %s, want %d %s", path, rec.Code, rec.Body, want, result)
		}
	}
	put("/api/v1/mapper/"+saraID, sara, 201, "created")
	put("/api/v1/mapper/"+jonasID, jonas, 201, "created")
	once := e.tableCounts()
	put("/api/v1/mapper/"+saraID, sara, 200, "unchanged")
	put("/api/v1/mapper/"+strings.ToUpper(saraID), sara, 200, "unchanged")
	if again := e.tableCounts(); !mapsEqual(once, again) {
		t.Errorf("a resent folder changed the database:\nonce  %v\ntwice %v", once, again)
	}
	if n := e.count(`SELECT COUNT(*) FROM cases`); n != 1 {
		t.Errorf("two folders of one case made %d cases", n)
	}
	if n := e.count(`SELECT COUNT(*) FROM conversations`); n != 2 {
		t.Errorf("%d conversations, want one per party", n)
	}

	put("/api/v1/journalposter/"+brevSaraID, brevSara, 201, "created")
	put("/api/v1/journalposter/"+brevSaraID, brevSara, 200, "unchanged")
	put("/api/v1/journalposter/"+brevJonasID, brevJonas, 201, "created")
	if n := e.count(`SELECT COUNT(*) FROM fiks_journalposter`); n != 1 {
		t.Errorf("one post indexed for two parties made %d posts", n)
	}
	for i := 0; i < 2; i++ {
		// Either message of the post names it.
		id := []string{brevSaraID, brevJonasID}[i]
		rec := e.api(http.MethodPut, "/api/v1/journalposter/"+id+"/dokumenter/0", e.key, txt,
			"Content-Type", "text/plain; charset=utf-8", "Repr-Digest", digestOf(txt))
		if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `"uploaded":true`) {
			t.Fatalf("upload %d = %d %s", i, rec.Code, rec.Body)
		}
	}
	if n := e.count(`SELECT COUNT(*) FROM documents`); n != 1 {
		t.Errorf("the same bytes twice made %d documents", n)
	}
	other := append(append([]byte{}, txt...), '!')
	other = other[:len(txt)]
	other[0] ^= 1
	if rec := e.api(http.MethodPut, "/api/v1/journalposter/"+brevSaraID+"/dokumenter/0", e.key, other,
		"Content-Type", "text/plain", "Repr-Digest", digestOf(other)); rec.Code != http.StatusConflict {
		t.Errorf("other bytes for an uploaded document = %d, want 409", rec.Code)
	}
	rec := e.api(http.MethodGet, "/api/v1/journalposter/"+brevJonasID, e.key, nil)
	var js JournalpostStatus
	if err := json.Unmarshal(rec.Body.Bytes(), &js); err != nil || len(js.Documents) != 1 || !js.Documents[0].Uploaded {
		t.Errorf("GET journalpost = %s (err %v)", rec.Body, err)
	}
	// Both parents see the letter once; neither sees it twice.
	for _, who := range []string{"sara", "jonas"} {
		g, err := e.store.Authorize(context.Background(), e.citizen(who), e.caseOf("Emma"), ActDocumentList, "")
		if err != nil {
			t.Fatal(err)
		}
		if ds, err := e.store.Documents(context.Background(), g); err != nil || len(ds) != 1 {
			t.Errorf("%s sees %d documents (err %v), want 1", who, len(ds), err)
		}
	}
}

// A withdrawn document is gone at once from every family view, and the
// withdrawal is audited.
func TestAPI_withdrawnDocumentDisappears(t *testing.T) {
	e := newFiksEnv(t)
	e.importSamples()
	emma := e.caseOf("Emma")
	plan, referat := e.docOf(emmaPlan), e.docOf(emmaMinutes)
	sara, jonas := e.session("sara"), e.session("jonas")
	views := []string{"/cases", "/cases/" + emma, "/cases/" + emma + "/documents", "/cases/" + emma + "/timeline"}
	seen := func(tok, title string) []string {
		var where []string
		for _, v := range views {
			rec := e.page(tok, v)
			if rec.Code == http.StatusSeeOther {
				rec = e.page(tok, rec.Header().Get("Location"))
			}
			if strings.Contains(rec.Body.String(), title) {
				where = append(where, v)
			}
		}
		return where
	}
	if len(seen(sara, emmaPlan)) == 0 || len(seen(sara, emmaMinutes)) == 0 {
		t.Fatal("Sara does not see her documents before the withdrawal")
	}
	if rec := e.page(jonas, "/cases/"+emma); !strings.Contains(rec.Body.String(), "withheld-h") {
		t.Fatal("Jonas does not get the withheld notice before the withdrawal")
	}

	planID, _ := sampleFile(t, "journalposter", "emma-plan-jonas")
	if rec := e.api(http.MethodDelete, "/api/v1/journalposter/"+planID+"/dokumenter/0", e.key, nil); rec.Code != http.StatusNoContent {
		t.Fatalf("withdraw document = %d %s", rec.Code, rec.Body)
	}
	referatID, _ := sampleFile(t, "journalposter", "emma-referat-sara")
	for i := 0; i < 2; i++ { // again: no change, no error
		if rec := e.api(http.MethodDelete, "/api/v1/journalposter/"+referatID, e.key, nil); rec.Code != http.StatusNoContent {
			t.Fatalf("withdraw journalpost = %d %s", rec.Code, rec.Body)
		}
	}
	for _, who := range []string{"sara", "jonas"} {
		tok := map[string]string{"sara": sara, "jonas": jonas}[who]
		for _, title := range []string{emmaPlan, emmaMinutes} {
			if where := seen(tok, title); len(where) > 0 {
				t.Errorf("%s still sees %q on %v", who, title, where)
			}
		}
		for _, doc := range []string{plan, referat} {
			for _, p := range []string{"/documents/" + doc, "/documents/" + doc + "/download", "/documents/" + doc + "/view"} {
				if rec := e.page(tok, p); rec.Code != http.StatusNotFound {
					t.Errorf("%s GET %s = %d, want 404", who, p, rec.Code)
				}
			}
		}
	}
	if rec := e.page(jonas, "/cases/"+emma); strings.Contains(rec.Body.String(), "withheld-h") {
		t.Error("Jonas still gets the withheld notice for a withdrawn document")
	}
	g, err := e.store.Authorize(context.Background(), e.citizen("sara"), emma, ActCaseView, "")
	if err != nil {
		t.Fatal(err)
	}
	tl, err := e.store.Timeline(context.Background(), g)
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range tl {
		if strings.Contains(ev.Note, emmaMinutes) {
			t.Errorf("the timeline still shows the withdrawn post: %+v", ev)
		}
	}
	if n := e.count(`SELECT COUNT(*) FROM audit WHERE action IN (?, ?) AND case_id = ?`, ActAPIDocumentDel, ActAPIJournalpostDel, emma); n != 3 {
		t.Errorf("%d withdrawals audited, want 3", n)
	}
	// A withdrawn post cannot come back under the same systemId.
	_, body := sampleFile(t, "journalposter", "emma-referat-sara")
	if rec := e.api(http.MethodPut, "/api/v1/journalposter/"+referatID, e.key, edit(t, body, func(m map[string]any) { m["tittel"] = "Nytt" })); rec.Code != http.StatusConflict {
		t.Errorf("resending a withdrawn post = %d, want 409", rec.Code)
	}
}

// feedAll pages through the feed from cursor with limit, returning the
// items and the last cursor.
func (e *fiksEnv) feedAll(key, cursor string, limit int) ([]FeedItem, string) {
	e.t.Helper()
	var items []FeedItem
	for {
		rec := e.api(http.MethodGet, "/api/v1/feed?limit="+itoa(limit)+"&after="+cursor, key, nil)
		if rec.Code != http.StatusOK {
			e.t.Fatalf("feed = %d %s", rec.Code, rec.Body)
		}
		var p FeedPage
		if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil {
			e.t.Fatal(err)
		}
		if len(p.Items) > limit {
			e.t.Fatalf("%d items on a page of %d", len(p.Items), limit)
		}
		items = append(items, p.Items...)
		if p.Next != "" {
			cursor = p.Next
		}
		if !p.More {
			return items, cursor
		}
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

// The feed gives every family message exactly once, in order, across
// pages and restarts, and nothing staff or the portal wrote.
func TestAPI_feedExactlyOnceAcrossPagesAndRestarts(t *testing.T) {
	e := newFiksEnv(t)
	e.importSamples()
	ctx := context.Background()
	convOf := func(who string) string {
		var id string
		if err := e.db.Get(&id, e.db.Rebind(`SELECT conversation_id FROM conversation_members WHERE user_id = ?`), e.citizen(who).ID); err != nil {
			t.Fatal(err)
		}
		return id
	}
	var want []string
	send := func(who, conv, body string, kind messaging.MessageKind) {
		t.Helper()
		sender := e.staff[who]
		if sender == "" {
			sender = e.citizen(who).ID
		}
		m, _, err := messaging.NewStore(e.db).InsertMessage(ctx, messaging.Draft{ConversationID: conv, SenderID: sender,
			ClientID: NewID(), Body: body, Kind: kind})
		if err != nil {
			t.Fatal(err)
		}
		if e.staff[who] == "" && kind == messaging.KindText {
			want = append(want, m.ID)
		}
	}
	sara, noah, leila := convOf("sara"), convOf("noah"), convOf("leila")
	send("sara", sara, "Hei, når er neste møte?", messaging.KindText)
	send("kari", sara, "Tirsdag kl. 10.", messaging.KindText)
	send("sara", sara, "Takk!", messaging.KindText)
	send("ola", noah, "Vi er stengt nå.", messaging.KindAutoReply)
	send("noah", noah, "ok", messaging.KindText)
	send("leila", leila, "Hvem er kontaktpersonen?", messaging.KindText)

	got, cursor := e.feedAll(e.key, "", 2)
	// Restart: a new process on the same database carries on from the cursor.
	e.open()
	send("noah", noah, "kan vi møtes etter skolen?", messaging.KindText)
	send("kari", sara, "Ja.", messaging.KindText)
	send("sara", sara, "Fint.", messaging.KindText)
	more, cursor := e.feedAll(e.key, cursor, 3)
	got = append(got, more...)
	if rest, _ := e.feedAll(e.key, cursor, 3); len(rest) != 0 {
		t.Errorf("%d items after the last cursor, want none", len(rest))
	}

	var messages []string
	last := int64(0)
	for _, it := range got {
		n, err := ParseCursor(it.Cursor)
		if err != nil || n <= last {
			t.Errorf("cursor %q after %d: not increasing", it.Cursor, last)
		}
		last = n
		if it.Type != "message" {
			continue
		}
		messages = append(messages, it.Message.ID)
		if it.Case.SystemID == nil || it.Party.MeldingID == nil || it.Party.Rolle == nil {
			t.Errorf("message item without the case system's ids: %+v", it)
		}
	}
	all := string(mustJSON(t, got))
	for who, pid := range fiksPID {
		if strings.Contains(all, pid) {
			t.Errorf("%s's national id is in the feed", who)
		}
	}
	if !slices.Equal(messages, want) {
		t.Errorf("feed messages = %v,\nwant exactly once, in order: %v", messages, want)
	}

	// A family member's first read of a document from the case system is
	// in the feed once, however often they open it.
	tok := e.session("sara")
	for i := 0; i < 2; i++ {
		if rec := e.page(tok, "/documents/"+e.docOf(emmaPlan)); rec.Code != http.StatusOK {
			t.Fatalf("Sara opening the plan = %d", rec.Code)
		}
	}
	reads, _ := e.feedAll(e.key, cursor, 10)
	if len(reads) != 1 || reads[0].Type != "document_read" || reads[0].Document == nil ||
		reads[0].Document.JournalpostSystemID == nil || *reads[0].Document.JournalpostSystemID != "jp-2026-0142-002" ||
		reads[0].Party.Name != "Sara Hansen" {
		t.Errorf("feed after two reads = %s", mustJSON(t, reads))
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
