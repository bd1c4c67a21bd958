package main

// The notification settings and their wiring in run(). What the outbox
// sends, and when, is tested in messaging against a real SMTP server with
// an injected clock; here the real clock runs, so nothing is sent.

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseFlags_notifications(t *testing.T) {
	envOf := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

	c, err := parseFlags("serve", nil, envOf(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.smtpAddr != "" || c.notifyDelay != 10*time.Minute {
		t.Errorf("defaults: smtp %q, delay %s; want notifications off, 10m", c.smtpAddr, c.notifyDelay)
	}

	env := envOf(map[string]string{
		"PORTAL_SMTP_ADDR": "mail.example:587", "PORTAL_SMTP_FROM": "Familieportalen <noreply@familie.example>",
		"PORTAL_SMTP_USER": "portal", "PORTAL_SMTP_PASSWORD": "hemmelig", "PORTAL_NOTIFY_DELAY": "15m",
	})
	c, err = parseFlags("serve", nil, env, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.smtpAddr != "mail.example:587" || c.smtpUser != "portal" || c.smtpPassword != "hemmelig" || c.notifyDelay != 15*time.Minute {
		t.Errorf("from the environment: %+v", c)
	}
	c, err = parseFlags("serve", []string{"--smtp-addr", "other.example:465", "--notify-delay", "5m"}, env, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.smtpAddr != "other.example:465" || c.notifyDelay != 5*time.Minute {
		t.Errorf("flags over the environment: smtp %q, delay %s", c.smtpAddr, c.notifyDelay)
	}

	if _, err := parseFlags("serve", []string{"--smtp-addr", "mail.example:587"}, envOf(nil), io.Discard); err == nil {
		t.Error("--smtp-addr without --smtp-from = nil, want an error")
	}
	if _, err := parseFlags("serve", nil, envOf(map[string]string{"PORTAL_NOTIFY_DELAY": "soon"}), io.Discard); err == nil {
		t.Error("PORTAL_NOTIFY_DELAY=soon = nil, want an error")
	}

	var help bytes.Buffer
	parseFlags("serve", []string{"--help"}, env, &help)
	for _, want := range []string{"-smtp-addr", "PORTAL_SMTP_ADDR", "-smtp-from", "-smtp-user", "-smtp-password", "PORTAL_SMTP_PASSWORD", "-notify-delay"} {
		if !strings.Contains(help.String(), want) {
			t.Errorf("--help does not mention %q", want)
		}
	}
	if strings.Contains(help.String(), "hemmelig") {
		t.Error("--help shows the SMTP password from the environment")
	}
}

func TestRun_notifications(t *testing.T) {
	t.Run("a sender that names child welfare is refused", func(t *testing.T) {
		env := map[string]string{
			"PORTAL_ADDR": freeAddr(t), "PORTAL_DB": filepath.Join(t.TempDir(), "p.db"),
			"PORTAL_SMTP_ADDR": "127.0.0.1:25", "PORTAL_SMTP_FROM": "Fjordvik barneverntjeneste <post@fjordvik.example>",
		}
		err := run(context.Background(), nil, func(k string) string { return env[k] }, io.Discard)
		if err == nil || !strings.Contains(err.Error(), "child welfare") {
			t.Errorf("run = %v, want a refusal of the sender", err)
		}
	})

	t.Run("the worker starts and stops with the server", func(t *testing.T) {
		addr := freeAddr(t)
		env := map[string]string{
			"PORTAL_ADDR": addr, "PORTAL_DB": filepath.Join(t.TempDir(), "p.db"),
			// Nothing is due, so nothing connects to this (closed) port.
			"PORTAL_SMTP_ADDR": freeAddr(t), "PORTAL_SMTP_FROM": "Familieportalen <noreply@familieportal.example>",
			"PORTAL_SMTP_PASSWORD": "hemmelig",
		}
		var logs syncBuffer
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		errc := make(chan error, 1)
		go func() {
			errc <- run(ctx, []string{"demo", "--demo-data", "../../testdata/demo"}, func(k string) string { return env[k] }, &logs)
		}()
		waitReady(t, "http://"+addr, errc)
		cancel()
		select {
		case err := <-errc:
			if err != nil {
				t.Fatalf("run = %v, want nil after a clean shutdown", err)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("run did not return after cancel")
		}
		out := logs.String()
		if !strings.Contains(out, `"msg":"notifications","on":true`) {
			t.Errorf("log does not say notifications are on:\n%s", out)
		}
		for _, secret := range []string{"hemmelig", "sara@example.invalid", "maria@example.invalid"} {
			if strings.Contains(out, secret) {
				t.Errorf("log contains %q", secret)
			}
		}
	})
}

func TestServeDebug_loopbackOnly(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:0", "192.0.2.1:6060", ":6060"} {
		if stop, err := serveDebug(addr, slog.New(slog.DiscardHandler), nil); err == nil {
			stop()
			t.Errorf("serveDebug(%q) = nil, want a refusal: profiles are not for the network", addr)
		}
	}
	addr := freeAddr(t)
	stop, err := serveDebug(addr, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	res, err := http.Get("http://" + addr + "/debug/pprof/goroutine?debug=1")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK || !strings.Contains(string(body), "goroutine profile") {
		t.Errorf("GET goroutine profile = %d %.80q, want the profile", res.StatusCode, body)
	}
	res, err = http.Get("http://" + addr + "/debug/vars")
	if err != nil {
		t.Fatal(err)
	}
	var vars struct {
		Goroutines int `json:"goroutines"`
		Memstats   struct {
			StackInuse uint64
		} `json:"memstats"`
	}
	err = json.NewDecoder(res.Body).Decode(&vars)
	res.Body.Close()
	if err != nil || vars.Goroutines == 0 || vars.Memstats.StackInuse == 0 {
		t.Errorf("GET /debug/vars = %+v (%v), want the goroutines and the memory statistics", vars, err)
	}
}
