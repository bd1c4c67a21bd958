package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"familieportal/portal"
	"familieportal/portal/db"
)

// runAdmin runs the commands that act on the database and exit:
//
//	portal apikey create [--office ID] --scopes cases:write,feed:read
//	portal apikey revoke KEY-ID
//	portal import [--office ID] DIR
//
// What the operator must keep (a new key) goes to stdout; notes to stderr.
func runAdmin(ctx context.Context, cmd string, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	env := func(key, def string) string {
		if v := getenv(key); v != "" {
			return v
		}
		return def
	}
	sub := ""
	if cmd == "apikey" {
		if len(args) == 0 || strings.HasPrefix(args[0], "-") {
			return errors.New("apikey: want create or revoke")
		}
		sub, args = args[0], args[1:]
		if sub != "create" && sub != "revoke" {
			return fmt.Errorf("apikey: unknown command %q (want create or revoke)", sub)
		}
	}
	fs := flag.NewFlagSet(strings.TrimSpace("portal "+cmd+" "+sub), flag.ContinueOnError)
	fs.SetOutput(stderr)
	dbURL := fs.String("db", env("PORTAL_DB", "portal.db"), "database: a SQLite `file` or a postgres:// URL (PORTAL_DB)")
	office := fs.String("office", "", "the office's `id` or name; may be left out when there is only one")
	var scopes, pidKey string
	switch {
	case sub == "create":
		fs.StringVar(&scopes, "scopes", "", "comma-separated `scopes`: "+strings.Join(portal.Scopes, ", "))
	case cmd == "import":
		fs.StringVar(&pidKey, "pid-key", "",
			"`key` (at least 32 bytes) for hashing national ids, the same as the server's (PORTAL_PID_KEY)")
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if pidKey == "" {
		pidKey = getenv("PORTAL_PID_KEY")
	}
	d, err := db.Open(ctx, *dbURL, db.Options{})
	if err != nil {
		return err
	}
	defer d.Close()
	store := portal.NewStore(d)

	switch {
	case sub == "revoke":
		if fs.NArg() != 1 {
			return errors.New("apikey revoke: give the key's id")
		}
		if err := store.RevokeAPIKey(ctx, fs.Arg(0)); err != nil {
			return err
		}
		fmt.Fprintln(stderr, "revoked", fs.Arg(0))
		return nil
	case cmd == "import" && fs.NArg() != 1:
		return errors.New("import: give the folder to import")
	case cmd != "import" && fs.NArg() > 0:
		return fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	o, err := store.FindOffice(ctx, *office)
	if err != nil {
		return err
	}
	if sub == "create" {
		var list []string
		for _, s := range strings.Split(scopes, ",") {
			if s = strings.TrimSpace(s); s != "" {
				list = append(list, s)
			}
		}
		id, key, err := store.CreateAPIKey(ctx, o.ID, list)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "id: %s\nkey: %s\n", id, key)
		fmt.Fprintf(stderr, "API key for %s. The key is shown only now; only its hash is stored.\n", o.Name)
		return nil
	}
	in, err := store.NewIngest([]byte(pidKey), o.ID, "import")
	if err != nil {
		return err
	}
	start := time.Now()
	rep, err := portal.Import(ctx, in, os.DirFS(fs.Arg(0)))
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "imported into %s: %s (%s)\n", o.Name, rep, time.Since(start).Round(time.Millisecond))
	return nil
}
