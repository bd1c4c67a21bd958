package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a bytes.Buffer safe for the server's log writes and the test's reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// waitReady polls /readyz until it answers 200: the server tells us it is
// up; nothing here guesses a duration.
func waitReady(t *testing.T, base string, errc <-chan error) {
	t.Helper()
	for i := 0; ; i++ {
		select {
		case err := <-errc:
			t.Fatalf("run returned early: %v", err)
		default:
		}
		resp, err := http.Get(base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if i > 500 {
			t.Fatalf("server at %s never became ready: %v", base, err)
		}
		time.Sleep(10 * time.Millisecond) // polling interval, not a guess at readiness
	}
}

// TestRun_demoEndToEnd starts the real program on a temp SQLite file with
// the demo cast, signs in through /demo, reads a case, then cancels the
// context and expects a clean shutdown.
func TestRun_demoEndToEnd(t *testing.T) {
	addr := freeAddr(t)
	dbPath := filepath.Join(t.TempDir(), "portal.db")
	env := map[string]string{"PORTAL_ADDR": addr, "PORTAL_DB": dbPath}
	var logs syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errc := make(chan error, 1)
	go func() {
		errc <- run(ctx, []string{"demo", "--demo-data", "../../testdata/demo"}, func(k string) string { return env[k] }, &logs)
	}()
	base := "http://" + addr
	waitReady(t, base, errc)

	// Sign in as Sara through the demo form, as a browser would.
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Get(base + "/demo")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(page), "Sara Hansen") {
		t.Fatalf("GET /demo lacks Sara Hansen:\n%s", page)
	}
	req, _ := http.NewRequest(http.MethodPost, base+"/demo", strings.NewReader("person=sara"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "same-origin") // a browser's own form post
	resp, err = client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("POST /demo = %d, want 303", resp.StatusCode)
	}
	var session *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == "__Host-session" {
			session = c
		}
	}
	if session == nil {
		t.Fatal("no session cookie after demo sign-in")
	}
	req, _ = http.NewRequest(http.MethodGet, base+"/cases", nil)
	req.AddCookie(session)
	resp, err = client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, "/cases/") {
		t.Fatalf("GET /cases as Sara = %d to %q, want a redirect to her one case", resp.StatusCode, loc)
	}
	req, _ = http.NewRequest(http.MethodGet, base+loc, nil)
	req.AddCookie(session)
	resp, err = client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "Saken om Emma") {
		t.Fatalf("GET %s = %d, or it lacks Emma's case", loc, resp.StatusCode)
	}

	cancel()
	select {
	case err := <-errc:
		if err != nil {
			t.Fatalf("run = %v, want nil after a clean shutdown", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("run did not return after cancel")
	}
	if _, err := http.Get(base + "/healthz"); err == nil {
		t.Error("server still answers after shutdown")
	}
	// Logs are JSON and carry no personal data.
	out := logs.String()
	for _, secret := range []string{"Sara", "Emma", "Hansen"} {
		if strings.Contains(out, secret) {
			t.Errorf("log contains %q:\n%s", secret, out)
		}
	}
	if !strings.Contains(out, `"msg":"stopped"`) {
		t.Errorf("log lacks the stopped line:\n%s", out)
	}
}

func TestRun_flagsAndEnvironment(t *testing.T) {
	var out bytes.Buffer
	err := run(context.Background(), []string{"--help"}, func(string) string { return "" }, &out)
	if err == nil {
		t.Fatal("run --help = nil, want flag.ErrHelp")
	}
	for _, want := range []string{"-addr", "PORTAL_ADDR", "-db", "PORTAL_DB", "localhost:8080", "portal.db"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("--help does not mention %q", want)
		}
	}
	if err := run(context.Background(), []string{"frobnicate"}, func(string) string { return "" }, io.Discard); err == nil {
		t.Error("run frobnicate = nil, want an error")
	}
	// The environment supplies defaults; an in-memory database is refused.
	err = run(context.Background(), []string{"migrate"}, func(k string) string {
		return map[string]string{"PORTAL_DB": ":memory:"}[k]
	}, io.Discard)
	if err == nil || !strings.Contains(fmt.Sprint(err), "in-memory") {
		t.Errorf("migrate with PORTAL_DB=:memory: = %v, want an in-memory refusal", err)
	}
	if err := run(context.Background(), []string{"migrate", "--db", filepath.Join(t.TempDir(), "m.db")}, func(string) string { return "" }, io.Discard); err != nil {
		t.Errorf("migrate = %v", err)
	}
}

func TestNewLogger_redactsPersonalData(t *testing.T) {
	var b bytes.Buffer
	newLogger(&b, "info").Info("x", "name", "Sara Hansen", "body", "hei", "pid", "01010112345", "case", "c1")
	out := b.String()
	for _, s := range []string{"Sara", "hei", "01010112345"} {
		if strings.Contains(out, s) {
			t.Errorf("log line contains %q: %s", s, out)
		}
	}
	if !strings.Contains(out, `"case":"c1"`) {
		t.Errorf("log line lost an id: %s", out)
	}
}
