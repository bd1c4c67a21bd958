package main

// The synthetic municipality: generated once per schema and scale with a
// fixed seed, cached, and copied for every run so that writes never
// accumulate between runs.

import (
	"context"
	crand "crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"

	"familieportal/portal/db"
)

// genVersion changes whenever the generator's output changes, so that an
// old cache is not reused.
const genVersion = 4

// dataSize is how much the generator makes; scale 1 is the default
// municipality.
type dataSize struct {
	Cases, Parties, Documents, Messages int
}

func sizeFor(scale float64) dataSize {
	n := func(v float64) int { return max(1, int(math.Round(v*scale))) }
	return dataSize{Cases: n(20_000), Parties: n(60_000), Documents: n(200_000), Messages: n(2_000_000)}
}

// schemaHash identifies the schema the portal's migrations produce: the
// DDL of a freshly migrated empty database.
func schemaHash(ctx context.Context, dir string) (string, error) {
	path := filepath.Join(dir, "schema-probe.db")
	defer removeDB(path)
	d, err := db.Open(ctx, path, db.Options{})
	if err != nil {
		return "", err
	}
	defer d.Close()
	var ddl []string
	if err := d.SelectContext(ctx, &ddl, `
		SELECT COALESCE(sql, '') FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY type, name`); err != nil {
		return "", err
	}
	sum := sha256.Sum256([]byte(strings.Join(ddl, "\n")))
	return hex.EncodeToString(sum[:8]), nil
}

func removeDB(path string) {
	for _, suffix := range []string{"", "-wal", "-shm", "-journal"} {
		os.Remove(path + suffix)
	}
}

// cachedDB returns the path of the generated database for scale, making it
// if the cache has none for the current schema.
func cachedDB(ctx context.Context, cacheDir string, scale float64, progress func(string)) (string, error) {
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		return "", err
	}
	hash, err := schemaHash(ctx, cacheDir)
	if err != nil {
		return "", fmt.Errorf("schema hash: %w", err)
	}
	dir := filepath.Join(cacheDir, hash)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	path := filepath.Join(dir, fmt.Sprintf("municipality-v%d-scale%g.db", genVersion, scale))
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	tmp := path + ".tmp"
	removeDB(tmp)
	start := time.Now()
	if err := generate(ctx, tmp, sizeFor(scale), progress); err != nil {
		removeDB(tmp)
		return "", fmt.Errorf("generate: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return "", err
	}
	progress(fmt.Sprintf("generated %s in %s", path, time.Since(start).Round(time.Second)))
	// Datasets of older schemas are of no further use (each is about a
	// gigabyte at scale 1).
	if old, err := filepath.Glob(filepath.Join(cacheDir, "*", "municipality-*.db")); err == nil {
		for _, p := range old {
			if filepath.Dir(p) != dir {
				removeDB(p)
				os.Remove(filepath.Dir(p))
			}
		}
	}
	return path, nil
}

// copyDB copies the cached database to dst for one server's run, and
// waits until the copy is on disk: otherwise the kernel writes its pages
// back during the run, and a server's first checkpoint (whose fsync waits
// for them all) stalls its writers for as long as that takes. A server
// whose copy came last had a p99 ten times the others'.
func copyDB(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// gen holds the generator's state: a seeded random source, so the same
// scale always gives the same municipality.
type gen struct {
	r   *rand.Rand
	now time.Time
}

var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// id returns an id shaped like the portal's (120 bits, lowercase base32).
func (g *gen) id() string {
	var b [15]byte
	for i := 0; i < 15; i += 5 {
		v := g.r.Uint64()
		b[i], b[i+1], b[i+2], b[i+3], b[i+4] = byte(v), byte(v>>8), byte(v>>16), byte(v>>24), byte(v>>32)
	}
	return strings.ToLower(b32.EncodeToString(b[:]))
}

// messageID returns an id shaped like the portal's message ids: the time
// at, in milliseconds, then random bits, in lowercase base32hex, so that
// the dataset's ids sort by time as a running portal's do, and the run's
// messages are added at the end of the index as they would be.
func (g *gen) messageID(at time.Time) string {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(at.UnixMilli())<<16)
	binary.BigEndian.PutUint64(b[6:14], g.r.Uint64())
	binary.BigEndian.PutUint16(b[14:], uint16(g.r.Uint32()))
	return strings.ToLower(b32hex.EncodeToString(b[:15]))
}

var b32hex = base32.HexEncoding.WithPadding(base32.NoPadding)

func (g *gen) pick(xs []string) string { return xs[g.r.IntN(len(xs))] }

// pareto returns a heavy-tailed positive weight: most draws are small, a
// few are very large (alpha ~1.1 gives "most conversations short, a few long").
func (g *gen) pareto(alpha float64) float64 {
	return math.Pow(1-g.r.Float64(), -1/alpha)
}

// spread splits total over n buckets with heavy-tailed shares, each at
// least minEach, capped at maxEach.
func (g *gen) spread(total, n, minEach, maxEach int) []int {
	w := make([]float64, n)
	var sum float64
	for i := range w {
		w[i] = math.Min(g.pareto(1.15), 2000)
		sum += w[i]
	}
	out := make([]int, n)
	left := total - minEach*n
	if left < 0 {
		left = 0
	}
	got := 0
	for i := range out {
		out[i] = min(maxEach, minEach+int(float64(left)*w[i]/sum))
		got += out[i]
	}
	// Hand out the rounding remainder one by one.
	for i := 0; got < total && i < 10*n; i++ {
		j := g.r.IntN(n)
		if out[j] < maxEach {
			out[j]++
			got++
		}
	}
	return out
}

var (
	firstNames = []string{"Emma", "Noah", "Nora", "Jakob", "Olivia", "Lucas", "Ella", "Emil", "Sofie", "Filip",
		"Leah", "Oliver", "Ingrid", "William", "Sara", "Aksel", "Maja", "Henrik", "Amalie", "Isak",
		"Frida", "Mohammed", "Aisha", "Ali", "Zofia", "Jonas", "Hedda", "Tobias", "Astrid", "Elias"}
	lastNames = []string{"Hansen", "Johansen", "Olsen", "Larsen", "Andersen", "Pedersen", "Nilsen", "Kristiansen",
		"Jensen", "Karlsen", "Johnsen", "Pettersen", "Eriksen", "Berg", "Haugen", "Hagen", "Ali", "Kowalska", "Dahl", "Lie"}
	words = strings.Fields(`hei takk for svaret vi kommer på møtet neste uke kan du ringe meg i morgen
		jeg lurer på når vedtaket kommer barnehagen sa at det går bra nå skolen har sendt papirene
		beklager sent svar vi har fått brevet og lest det planen ser fin ut men vi har noen spørsmål
		om samværet og tiltakene fint om vi kan snakke sammen før fristen hilsen`)
	docTitles = map[string][]string{
		"decision": {"Vedtak om hjelpetiltak", "Vedtak om avslutning av undersøkelse", "Vedtak om frivillig plassering"},
		"plan":     {"Tiltaksplan", "Oppdatert tiltaksplan", "Evaluering av tiltaksplan"},
		"report":   {"Bekymringsmelding (sammendrag)", "Undersøkelsesrapport", "Rapport fra hjemmebesøk"},
		"minutes":  {"Referat fra møte", "Referat fra samtale", "Referat fra samarbeidsmøte"},
		"letter":   {"Innkalling til møte", "Orientering om saken", "Brev om klageadgang"},
	}
	docKinds = []string{"decision", "plan", "report", "minutes", "letter"}
)

func (g *gen) name() string { return g.pick(firstNames) + " " + g.pick(lastNames) }

func (g *gen) text(minWords, maxWords int) string {
	n := minWords + g.r.IntN(maxWords-minWords+1)
	var b strings.Builder
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(g.pick(words))
	}
	return b.String()
}

// ago returns an instant up to d before now, in UTC.
func (g *gen) ago(d time.Duration) time.Time {
	return g.now.Add(-time.Duration(g.r.Int64N(int64(d)))).UTC().Truncate(time.Millisecond)
}

// inserter batches rows into multi-row INSERTs inside large transactions.
type inserter struct {
	ctx     context.Context
	d       *sqlx.DB
	tx      *sqlx.Tx
	rows    int // rows in the current transaction
	pending map[string]*batch
	order   []string
	total   int
	report  func(int)
}

type batch struct {
	prefix string
	ncols  int
	args   []any
	full   *sqlx.Stmt // prepared statement for a full batch, per transaction
}

const (
	batchRows = 400     // rows per INSERT statement (≤ 32766 bound parameters)
	txRows    = 250_000 // rows per transaction
)

func newInserter(ctx context.Context, d *sqlx.DB, report func(int)) *inserter {
	return &inserter{ctx: ctx, d: d, pending: map[string]*batch{}, report: report}
}

// add queues one row of table (columns given as "a, b, c").
func (in *inserter) add(table, cols string, vals ...any) error {
	key := table + "(" + cols + ")"
	b := in.pending[key]
	if b == nil {
		b = &batch{prefix: "INSERT INTO " + key + " VALUES ", ncols: len(vals)}
		in.pending[key] = b
		in.order = append(in.order, key)
	}
	b.args = append(b.args, vals...)
	if len(b.args) < batchRows*b.ncols {
		return nil
	}
	// The tables first used before this one go first, so a row is never
	// stored before the rows it refers to: the schema's triggers (a
	// message updates its conversation) need those to be there.
	for _, k := range in.order {
		if k == key {
			break
		}
		if err := in.flush(in.pending[k]); err != nil {
			return err
		}
	}
	return in.flush(b)
}

func placeholders(rows, cols int) string {
	one := "(" + strings.TrimSuffix(strings.Repeat("?,", cols), ",") + ")"
	return strings.TrimSuffix(strings.Repeat(one+",", rows), ",")
}

func (in *inserter) flush(b *batch) error {
	if len(b.args) == 0 {
		return nil
	}
	if in.tx == nil {
		tx, err := in.d.BeginTxx(in.ctx, nil)
		if err != nil {
			return err
		}
		in.tx = tx
	}
	n := len(b.args) / b.ncols
	var err error
	if n == batchRows {
		if b.full == nil {
			if b.full, err = in.tx.PreparexContext(in.ctx, b.prefix+placeholders(batchRows, b.ncols)); err != nil {
				return err
			}
		}
		_, err = b.full.ExecContext(in.ctx, b.args...)
	} else {
		_, err = in.tx.ExecContext(in.ctx, b.prefix+placeholders(n, b.ncols), b.args...)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", b.prefix, err)
	}
	b.args = b.args[:0]
	in.rows += n
	in.total += n
	if in.rows >= txRows {
		if err := in.commit(); err != nil {
			return err
		}
	}
	return nil
}

// flushAll writes every queued row, in the order tables were first used
// (parents before children).
func (in *inserter) flushAll() error {
	for _, k := range in.order {
		if err := in.flush(in.pending[k]); err != nil {
			return err
		}
	}
	return nil
}

func (in *inserter) commit() error {
	if in.tx == nil {
		return nil
	}
	for _, b := range in.pending {
		if b.full != nil {
			b.full.Close()
			b.full = nil
		}
	}
	err := in.tx.Commit()
	in.tx, in.rows = nil, 0
	if in.report != nil {
		in.report(in.total)
	}
	return err
}

// caseGen is what the generator remembers of a case while it fills it.
type caseGen struct {
	id, team    string
	opened      time.Time
	caseworkers []string
	parties     []partyGen
}

type partyGen struct{ user, role string }

// generate writes a municipality of size s into a new database at path.
func generate(ctx context.Context, path string, s dataSize, progress func(string)) error {
	d, err := db.Open(ctx, path, db.Options{})
	if err != nil {
		return err
	}
	defer d.Close()
	// One connection, so the pragmas below hold for every statement. They
	// make the one-off bulk load fast; the copy the server gets is
	// switched back to WAL at the end.
	d.SetMaxOpenConns(1)
	for _, p := range []string{
		`PRAGMA foreign_keys = OFF`, `PRAGMA journal_mode = MEMORY`, `PRAGMA synchronous = OFF`,
		`PRAGMA cache_size = -400000`, `PRAGMA temp_store = MEMORY`,
	} {
		if _, err := d.ExecContext(ctx, p); err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
	}
	g := &gen{r: rand.New(rand.NewPCG(20261122, genVersion)), now: time.Now().UTC().Truncate(time.Hour)}
	start := time.Now()
	in := newInserter(ctx, d, func(n int) {
		progress(fmt.Sprintf("generating: %d rows (%s)", n, time.Since(start).Round(time.Second)))
	})

	// Office, teams, staff.
	office := g.id()
	created := g.now.Add(-5 * 365 * 24 * time.Hour)
	if err := in.add("offices", "id, name, municipality, phone, emergency_phone, time_zone",
		office, "Benchvik barneverntjeneste", "Benchvik", "21 00 00 00", "21 99 99 99", "Europe/Oslo"); err != nil {
		return err
	}
	nTeams := max(1, s.Cases/1000)
	teams := make([]string, nTeams)
	teamStaff := make([][]string, nTeams)
	userCols := "id, kind, name, lang, office_id, team_id, unit, created_at"
	for i := range teams {
		teams[i] = g.id()
		if err := in.add("teams", "id, office_id, name", teams[i], office, fmt.Sprintf("Team %d", i+1)); err != nil {
			return err
		}
		if err := in.add("users", userCols, g.id(), "teamlead", g.name(), "", office, teams[i],
			fmt.Sprintf("Team %d", i+1), created); err != nil {
			return err
		}
	}
	nCaseworkers := max(1, s.Cases/25)
	for i := 0; i < nCaseworkers; i++ {
		t := i % nTeams
		id := g.id()
		teamStaff[t] = append(teamStaff[t], id)
		if err := in.add("users", userCols, id, "caseworker", g.name(), "", office, teams[t],
			fmt.Sprintf("Team %d", t+1), created); err != nil {
			return err
		}
	}

	// Cases and their families. Parties per case average Parties/Cases;
	// a third of the cases are siblings of the one before and share its
	// parents, so some parents are parties to two or three cases.
	partiesPer := g.spread(s.Parties, s.Cases, 1, 6)
	var prev *caseGen
	cases := make([]*caseGen, 0, s.Cases)
	statuses := []string{"received", "investigation", "investigation", "measures", "measures", "measures", "closed"}
	for i := 0; i < s.Cases; i++ {
		t := g.r.IntN(nTeams)
		c := &caseGen{id: g.id(), team: teams[t], opened: g.ago(4 * 365 * 24 * time.Hour)}
		c.caseworkers = append(c.caseworkers, g.pick(teamStaff[t]))
		if g.r.IntN(5) == 0 {
			if other := g.pick(teamStaff[t]); other != c.caseworkers[0] {
				c.caseworkers = append(c.caseworkers, other)
			}
		}
		status := g.pick(statuses)
		var due, closed any
		if status == "received" || status == "investigation" {
			due = c.opened.Add(90 * 24 * time.Hour)
		}
		if status == "closed" {
			closed = c.opened.Add(time.Duration(g.r.Int64N(int64(g.now.Sub(c.opened)))))
		}
		if err := in.add("cases", "id, reference, office_id, team_id, child_name, status, opened_at, investigation_due, closed_at, updated_at",
			c.id, fmt.Sprintf("BV-%d-%06d", c.opened.Year(), i+1), office, c.team, g.pick(firstNames), status,
			c.opened, due, closed, c.opened); err != nil {
			return err
		}
		for j, cw := range c.caseworkers {
			if err := in.add("case_caseworkers", "case_id, user_id, is_primary", c.id, cw, j == 0); err != nil {
				return err
			}
		}
		want := partiesPer[i]
		if prev != nil && g.r.IntN(3) == 0 {
			for _, p := range prev.parties {
				if p.role != "youth" && len(c.parties) < want {
					c.parties = append(c.parties, p)
				}
			}
		}
		roles := []string{"mother", "father", "youth", "guardian", "parent", "parent"}
		for k := len(c.parties); k < want; k++ {
			role := roles[min(k, len(roles)-1)]
			uid := g.id()
			if err := in.add("users", userCols, uid, "citizen", g.name(), "", nil, nil, "", created); err != nil {
				return err
			}
			c.parties = append(c.parties, partyGen{user: uid, role: role})
		}
		seen := map[string]bool{}
		for _, p := range c.parties {
			if seen[p.user] {
				continue
			}
			seen[p.user] = true
			if err := in.add("parties", "case_id, user_id, role, revoked_at", c.id, p.user, p.role, nil); err != nil {
				return err
			}
		}
		cases = append(cases, c)
		prev = c
	}
	if err := in.flushAll(); err != nil {
		return err
	}

	// Conversations: one per party (private), and a shared one in a few
	// cases with two or more parties.
	type convGen struct {
		id, caseworker string
		members        []string
		opened         time.Time
		c              *caseGen
	}
	var convs []convGen
	memberCols := "conversation_id, user_id, last_read_seq, joined_at"
	for _, c := range cases {
		for _, p := range c.parties {
			convs = append(convs, convGen{id: g.id(), caseworker: c.caseworkers[0], members: []string{p.user}, opened: c.opened, c: c})
		}
		if len(c.parties) >= 2 && g.r.IntN(30) == 0 {
			convs = append(convs, convGen{id: g.id(), caseworker: c.caseworkers[0],
				members: []string{c.parties[0].user, c.parties[1].user}, opened: c.opened, c: c})
		}
	}
	msgsPer := g.spread(s.Messages, len(convs), 0, 20_000)
	progress(fmt.Sprintf("generating: %d conversations, %d messages", len(convs), s.Messages))
	msgCols := "id, conversation_id, seq, sender_id, client_id, body, kind, created_at"
	for i, cv := range convs {
		c, n := cv.c, msgsPer[i]
		if err := in.add("conversations", "id, case_id, kind, last_seq, created_at",
			cv.id, c.id, map[bool]string{true: "shared", false: "party"}[len(cv.members) > 1], n, cv.opened); err != nil {
			return err
		}
		for _, m := range cv.members {
			read := max(0, n-g.r.IntN(4))
			if err := in.add("conversation_members", memberCols, cv.id, m, read, cv.opened); err != nil {
				return err
			}
		}
		if n > 0 {
			if err := in.add("conversation_reads", "conversation_id, user_id, last_read_seq, read_at",
				cv.id, cv.caseworker, max(0, n-g.r.IntN(3)), g.now); err != nil {
				return err
			}
		}
		// Messages spread over the time since the case opened, in order.
		span := g.now.Sub(cv.opened)
		step := span / time.Duration(n+1)
		at := cv.opened
		for seq := 1; seq <= n; seq++ {
			at = at.Add(time.Duration(g.r.Int64N(int64(2*step) + 1)))
			if at.After(g.now) {
				at = g.now
			}
			sender := cv.caseworker
			if g.r.IntN(2) == 0 {
				sender = cv.members[g.r.IntN(len(cv.members))]
			}
			created := at.Truncate(time.Millisecond)
			if err := in.add("messages", msgCols, g.messageID(created), cv.id, seq, sender, g.id(), g.text(3, 40), "text", created); err != nil {
				return err
			}
		}
	}
	if err := in.flushAll(); err != nil {
		return err
	}

	// Documents: heavy-tailed per case, small contents, audiences by role,
	// a few withheld from one party (§ 12-6), about half read.
	docsPer := g.spread(s.Documents, len(cases), 1, 2_000)
	docCols := "id, case_id, title, kind, published_at, appeal_due, filename, content_type, size, sha256, content, withdrawn_at"
	pdf := []byte("%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj 2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj " +
		"3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 595 842]>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n")
	for i, c := range cases {
		roles := map[string]bool{}
		for _, p := range c.parties {
			roles[p.role] = true
		}
		for k := 0; k < docsPer[i]; k++ {
			kind := g.pick(docKinds)
			published := c.opened.Add(time.Duration(g.r.Int64N(int64(g.now.Sub(c.opened)) + 1)))
			var appeal any
			if kind == "decision" {
				appeal = published.Add(21 * 24 * time.Hour)
			}
			var content []byte
			ctype, fname := "text/plain; charset=utf-8", "dokument.txt"
			if g.r.IntN(10) < 3 {
				content, ctype, fname = pdf, "application/pdf", "dokument.pdf"
			} else {
				content = []byte(g.text(20, 250))
			}
			sum := sha256.Sum256(content)
			id := g.id()
			if err := in.add("documents", docCols, id, c.id, g.pick(docTitles[kind]), kind, published, appeal,
				fname, ctype, len(content), hex.EncodeToString(sum[:]), content, nil); err != nil {
				return err
			}
			youthOnly := roles["youth"] && g.r.IntN(10) == 0
			for r := range roles {
				if youthOnly && r != "youth" {
					continue
				}
				if err := in.add("document_audience", "document_id, role", id, r); err != nil {
					return err
				}
			}
			if len(c.parties) > 1 && g.r.IntN(100) == 0 {
				p := c.parties[g.r.IntN(len(c.parties))]
				if err := in.add("document_withheld", "document_id, user_id, reason", id, p.user, "§ 12-6"); err != nil {
					return err
				}
			}
			if g.r.IntN(2) == 0 {
				p := c.parties[g.r.IntN(len(c.parties))]
				if err := in.add("document_reads", "document_id, user_id, read_at", id, p.user, g.now); err != nil {
					return err
				}
			}
		}
		// A short timeline per case.
		kinds := []string{"report_received", "investigation_started", "meeting", "decision", "measures_started", "plan_updated"}
		for k := 0; k < 2+g.r.IntN(6); k++ {
			id := g.id()
			if err := in.add("timeline_events", "id, case_id, kind, occurred_at, note",
				id, c.id, kinds[k%len(kinds)], c.opened.Add(time.Duration(k)*14*24*time.Hour), ""); err != nil {
				return err
			}
			for r := range roles {
				if err := in.add("timeline_audience", "event_id, role", id, r); err != nil {
					return err
				}
			}
		}
	}
	if err := in.flushAll(); err != nil {
		return err
	}
	if err := in.commit(); err != nil {
		return err
	}
	for _, p := range []string{`PRAGMA journal_mode = WAL`, `PRAGMA foreign_keys = ON`} {
		if _, err := d.ExecContext(ctx, p); err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
	}
	var fk []struct {
		Table  string `db:"table"`
		RowID  int64  `db:"rowid"`
		Parent string `db:"parent"`
		FKID   int64  `db:"fkid"`
	}
	if err := d.SelectContext(ctx, &fk, `PRAGMA foreign_key_check`); err != nil {
		return fmt.Errorf("foreign key check: %w", err)
	}
	if len(fk) > 0 {
		return fmt.Errorf("generated data breaks %d foreign keys (first: %s → %s)", len(fk), fk[0].Table, fk[0].Parent)
	}
	return nil
}

// session is a signed-in user of the run: the token the client sends.
type session struct {
	UserID string
	Token  string
}

// writeSessions signs users in by writing their sessions straight into
// the database (as the portal's CreateSession would: only the token's
// SHA-256 is stored). The server has no sign-in shortcut.
func writeSessions(ctx context.Context, path string, users []string) (map[string]string, error) {
	d, err := db.Open(ctx, path, db.Options{})
	if err != nil {
		return nil, err
	}
	defer d.Close()
	tx, err := d.BeginTxx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	stmt, err := tx.PreparexContext(ctx, `
		INSERT INTO sessions (token_hash, user_id, created_at, last_seen_at, expires_at) VALUES (?, ?, ?, ?, ?)`)
	if err != nil {
		return nil, err
	}
	defer stmt.Close()
	now := time.Now().UTC()
	tokens := make(map[string]string, len(users))
	for _, u := range users {
		if _, ok := tokens[u]; ok {
			continue
		}
		var b [32]byte
		if _, err := crand.Read(b[:]); err != nil {
			return nil, err
		}
		token := base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:])
		sum := sha256.Sum256([]byte(token))
		if _, err := stmt.ExecContext(ctx, hex.EncodeToString(sum[:]), u, now, now, now.Add(12*time.Hour)); err != nil {
			return nil, fmt.Errorf("write session: %w", err)
		}
		tokens[u] = token
	}
	if err := tx.Commit(); err != nil {
		return nil, err
	}
	// Into the database file now: the servers get copies of the file
	// alone, and closing the pool does not wait for a checkpoint under way.
	if _, err := d.ExecContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
		return nil, err
	}
	return tokens, nil
}
