package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"familieportal/i18n"
	"familieportal/portal"
	"familieportal/portal/db"
)

// portal apikey create prints a key once; the API takes it until
// portal apikey revoke; portal import ingests the sample folder, twice
// without change.
func TestRunAdmin_apikeyAndImport(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "portal.db")
	d, err := db.Open(ctx, path, db.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	now := time.Now().UTC()
	d.MustExec(`INSERT INTO offices (id, name, municipality, phone, emergency_phone) VALUES ('fjordvik', 'Fjordvik barneverntjeneste', 'Fjordvik', '1', '2')`)
	d.MustExec(`INSERT INTO teams (id, office_id, name) VALUES ('t1', 'fjordvik', 'Team 1')`)
	for i, name := range []string{"Kari Nordmann", "Ola Berg"} {
		d.MustExec(`INSERT INTO users (id, kind, name, office_id, team_id, created_at) VALUES (?, 'caseworker', ?, 'fjordvik', 't1', ?)`,
			[]string{"kari", "ola"}[i], name, now)
	}
	pidKey := "a key for national ids of at least 32 bytes"
	env := func(k string) string {
		return map[string]string{"PORTAL_DB": path, "PORTAL_PID_KEY": pidKey}[k]
	}
	admin := func(cmd string, args ...string) (string, string, error) {
		var out, errOut bytes.Buffer
		err := runAdmin(ctx, cmd, args, env, &out, &errOut)
		return out.String(), errOut.String(), err
	}

	out, _, err := admin("apikey", "create", "--scopes", "cases:write, feed:read")
	if err != nil {
		t.Fatal(err)
	}
	var id, key string
	for _, line := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(line, "id: "); ok {
			id = v
		}
		if v, ok := strings.CutPrefix(line, "key: "); ok {
			key = v
		}
	}
	if id == "" || !strings.HasPrefix(key, "fpk_") {
		t.Fatalf("apikey create printed %q", out)
	}
	var stored int
	if err := d.Get(&stored, `SELECT COUNT(*) FROM api_keys WHERE token_hash LIKE ?`, "%"+key+"%"); err != nil || stored != 0 {
		t.Errorf("the key is stored in clear (%d, %v)", stored, err)
	}
	if _, _, err := admin("apikey", "create", "--scopes", "everything"); err == nil {
		t.Error("an unknown scope was accepted")
	}
	if _, _, err := admin("apikey", "create", "--office", "nowhere", "--scopes", "feed:read"); err == nil {
		t.Error("a key for an unknown office was made")
	}

	_, note, err := admin("import", "../../testdata/fiks")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(note, "22 created") || !strings.Contains(note, "10 documents") {
		t.Errorf("import said %q", note)
	}
	if _, note, err = admin("import", "../../testdata/fiks"); err != nil || !strings.Contains(note, "22 unchanged") {
		t.Errorf("second import said %q (err %v)", note, err)
	}
	if _, _, err := runAdminNoKey(ctx, path); err == nil || !strings.Contains(err.Error(), "pid-key") {
		t.Errorf("import without a national-id key = %v", err)
	}

	bundle, err := i18n.NewBundle()
	if err != nil {
		t.Fatal(err)
	}
	srv, err := portal.NewServer(portal.NewStore(d), bundle, slog.New(slog.NewTextHandler(io.Discard, nil)), portal.Options{PIDKey: []byte(pidKey)})
	if err != nil {
		t.Fatal(err)
	}
	feed := func() int {
		req := httptest.NewRequest(http.MethodGet, "/api/v1/feed", nil)
		req.Header.Set("Authorization", "Bearer "+key)
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, req)
		return rec.Code
	}
	if got := feed(); got != http.StatusOK {
		t.Fatalf("feed with the new key = %d", got)
	}
	if _, _, err := admin("apikey", "revoke", id); err != nil {
		t.Fatal(err)
	}
	if got := feed(); got != http.StatusUnauthorized {
		t.Errorf("feed with the revoked key = %d, want 401", got)
	}
	if err := run(ctx, []string{"apikey", "frobnicate"}, env, io.Discard); err == nil {
		t.Error("apikey frobnicate = nil, want an error")
	}
}

func runAdminNoKey(ctx context.Context, path string) (string, string, error) {
	var out, errOut bytes.Buffer
	err := runAdmin(ctx, "import", []string{"--db", path, "../../testdata/fiks"}, func(string) string { return "" }, &out, &errOut)
	return out.String(), errOut.String(), err
}
