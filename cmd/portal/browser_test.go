package main

// Browser tests: the real program (run) on a free port and a temp database,
// driven by Debian's Chromium through chromedp, at a phone's viewport.
//
// `make test` installs Chromium and axe-core when they are missing
// (.ci/test-deps) and passes their paths in PORTAL_CHROMIUM and PORTAL_AXE.
// Under CI=true a missing one fails the test; elsewhere the test skips and
// says how to get it.
//
// The helpers are built for more than one person at a time: every visitor
// has a browser context of its own (its own cookies), so a chat test can
// sign Sara and Kari in side by side in one browser:
//
//	b := newBrowser(t, false)
//	p := startPortal(t)
//	sara, kari := b.visitor(t, p, "sara"), b.visitor(t, p, "kari")

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/BurntSushi/toml"
	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

const (
	phoneWidth, phoneHeight = 390, 844
	demoData                = "../../testdata/demo"
	stepTimeout             = 30 * time.Second // one browser step; a hang fails instead of eating the test timeout
)

// browserDeps finds Chromium (and axe-core, when needAxe). When one is
// missing the test fails under CI=true and skips elsewhere.
func browserDeps(t *testing.T, needAxe bool) (chromium, axe string) {
	t.Helper()
	if testing.Short() && os.Getenv("CI") != "true" {
		t.Skip("browser test: skipped with -short")
	}
	missing := func(what string) {
		t.Helper()
		msg := what + " is missing; `make test-deps` (or `make test`) installs it"
		if os.Getenv("CI") == "true" {
			t.Fatal("CI=true: " + msg)
		}
		t.Skip(msg)
	}
	chromium = os.Getenv("PORTAL_CHROMIUM")
	if chromium == "" {
		chromium = "/usr/bin/chromium"
	}
	if fi, err := os.Stat(chromium); err != nil || fi.IsDir() {
		missing("Chromium (" + chromium + ")")
	}
	if needAxe {
		axe = os.Getenv("PORTAL_AXE")
		if axe == "" {
			axe = "../../.cache/node/node_modules/axe-core/axe.min.js"
		}
		if _, err := os.Stat(axe); err != nil {
			missing("axe-core (" + axe + ")")
		}
	}
	return chromium, axe
}

// testPortal is the real program, started by run() for one test.
type testPortal struct {
	base string
	logs *syncBuffer
}

// startPortal runs `portal demo` on a free port with a fresh SQLite file,
// waits for /readyz, and stops it (expecting a clean exit) when the test ends.
func startPortal(t *testing.T) *testPortal {
	t.Helper()
	addr := freeAddr(t)
	env := map[string]string{"PORTAL_ADDR": addr, "PORTAL_DB": filepath.Join(t.TempDir(), "portal.db"),
		// Notices on, so that the notification form is on the pages the
		// browser tests visit. Nothing falls due within a test (the first
		// notice waits ten minutes), so nothing connects to this closed port.
		"PORTAL_SMTP_ADDR": freeAddr(t), "PORTAL_SMTP_FROM": "Familieportalen <noreply@familieportal.example>"}
	p := &testPortal{base: "http://" + addr, logs: &syncBuffer{}}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		errc <- run(ctx, []string{"demo", "--demo-data", demoData}, func(k string) string { return env[k] }, p.logs)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-errc:
			if err != nil {
				t.Errorf("run = %v after cancel, want nil", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("run did not return after cancel")
		}
	})
	waitReady(t, p.base, errc)
	return p
}

// testBrowser is one headless Chromium for one test.
type testBrowser struct {
	ctx context.Context // a chromedp context that has started the browser
	axe string          // the source of axe.min.js, when the test needs it
}

// newBrowser starts Chromium with the flags this closed network needs (no
// background requests to Google), in a fresh profile that chromedp makes
// and removes. It closes when the test ends.
func newBrowser(t *testing.T, needAxe bool) *testBrowser {
	t.Helper()
	chromium, axePath := browserDeps(t, needAxe)
	b := &testBrowser{}
	if needAxe {
		src, err := os.ReadFile(axePath)
		if err != nil {
			t.Fatal(err)
		}
		b.axe = string(src)
	}
	var out syncBuffer // Chromium's own log, shown only if it fails to start
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("lang", "nb-NO"), // a Norwegian phone: Accept-Language starts with nb
		chromedp.WindowSize(phoneWidth, phoneHeight),
		chromedp.CombinedOutput(&out),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx)
	t.Cleanup(func() {
		cancel()
		cancelAlloc() // waits for the process to end and its profile to go
	})
	// The first Run starts the browser; it must not carry a timeout.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v\n%s", err, lastLines(out.String(), 30))
	}
	b.ctx = ctx
	return b
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// visitorOptions change how a visitor's tab behaves.
type visitorOptions struct {
	noScript     bool // JavaScript off, as some people and some phones have it
	cacheOff     bool // every request goes to the server (for page weight)
	scriptMarker bool // mark each new document from a script, to prove JS state
}

// visitor is one person in their own browser context (own cookies and
// cache), in one tab at a phone's viewport.
type visitor struct {
	t    *testing.T
	ctx  context.Context
	p    *testPortal
	name string // the demo key, or "" when signed out
}

// visitor opens a tab for person (a demo key, or "" to stay signed out)
// and, for a person, signs in through /demo.
func (b *testBrowser) visitor(t *testing.T, p *testPortal, person string, opt ...visitorOptions) *visitor {
	t.Helper()
	var o visitorOptions
	if len(opt) > 0 {
		o = opt[0]
	}
	ctx, cancel := chromedp.NewContext(b.ctx, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	v := &visitor{t: t, ctx: ctx, p: p, name: person}
	// The first Do opens the tab, so it runs without a timeout.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("open a tab: %v", err)
	}
	steps := []chromedp.Action[chromedp.Void]{
		chromedp.EmulateViewport(phoneWidth, phoneHeight, chromedp.EmulateMobile, chromedp.EmulateTouch, chromedp.EmulatePortrait),
	}
	if o.scriptMarker {
		steps = append(steps, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			_, err := cdp.Call(ctx, tg, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{
				Source: `document.addEventListener("DOMContentLoaded", () => document.documentElement.setAttribute("data-script-ran", "yes"))`,
			})
			return err
		}))
	}
	if o.noScript {
		steps = append(steps, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			_, err := cdp.Call(ctx, tg, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: true})
			return err
		}))
	}
	if o.cacheOff {
		steps = append(steps, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			if _, err := cdp.Call(ctx, tg, network.Enable, network.EnableParams{}); err != nil {
				return err
			}
			_, err := cdp.Call(ctx, tg, network.SetCacheDisabled, network.SetCacheDisabledParams{CacheDisabled: true})
			return err
		}))
	}
	v.do("set up the tab", steps...)
	if person != "" {
		v.signIn(person)
	}
	return v
}

// step returns a context for one browser step, bounded by stepTimeout.
func (v *visitor) step() (context.Context, context.CancelFunc) {
	return context.WithTimeout(v.ctx, stepTimeout)
}

func (v *visitor) who() string {
	if v.name == "" {
		return "signed out"
	}
	return v.name
}

// do runs actions that return nothing; an error fails the test.
func (v *visitor) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	v.t.Helper()
	ctx, cancel := v.step()
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		v.t.Fatalf("%s (%s, at %s): %v", what, v.who(), v.path(), err)
	}
}

// eval evaluates a JavaScript expression in the page and decodes its value.
func eval[T any](v *visitor, expr string, opts ...chromedp.EvaluateOption) T {
	v.t.Helper()
	ctx, cancel := v.step()
	defer cancel()
	val, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, opts...))
	if err != nil {
		v.t.Fatalf("evaluate %.60q (%s): %v", expr, v.who(), err)
	}
	return val
}

// open navigates to path and returns the HTTP status of the page that
// finally loads (after redirects).
func (v *visitor) open(path string) int64 {
	v.t.Helper()
	ctx, cancel := v.step()
	defer cancel()
	resp, err := chromedp.Run(ctx, chromedp.NavigateResponse(v.p.base+path))
	if err != nil {
		v.t.Fatalf("open %s (%s): %v", path, v.who(), err)
	}
	if resp == nil {
		v.t.Fatalf("open %s (%s): no response", path, v.who())
	}
	v.waitPage()
	return resp.Status
}

// follow clicks the element sel (a link or a submit button) and waits for
// the page it leads to; it returns that page's HTTP status.
func (v *visitor) follow(sel string) int64 {
	v.t.Helper()
	ctx, cancel := v.step()
	defer cancel()
	resp, err := chromedp.RunResponse(ctx, chromedp.Click(chromedp.CSS(sel), chromedp.NodeVisible))
	if err != nil {
		v.t.Fatalf("click %s (%s, at %s): %v", sel, v.who(), v.path(), err)
	}
	if resp == nil {
		v.t.Fatalf("click %s (%s): no page loaded", sel, v.who())
	}
	v.waitPage()
	return resp.Status
}

// waitPage waits until the page's main content is there and visible.
func (v *visitor) waitPage() {
	v.t.Helper()
	v.do("wait for <main>", chromedp.WaitVisible(chromedp.CSS("main h1")))
}

// path is the path (and query) of the page the tab shows.
func (v *visitor) path() string {
	ctx, cancel := v.step()
	defer cancel()
	loc, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		return "?"
	}
	return strings.TrimPrefix(loc, v.p.base)
}

// text returns the visible text of the first element matching sel.
func (v *visitor) text(sel string) string {
	v.t.Helper()
	ctx, cancel := v.step()
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel), chromedp.NodeVisible))
	if err != nil {
		v.t.Fatalf("text of %s (%s, at %s): %v", sel, v.who(), v.path(), err)
	}
	return strings.TrimSpace(s)
}

// attr returns an attribute of the first element matching sel, read from
// the DOM (no page script involved, so it works with JavaScript off).
func (v *visitor) attr(sel, name string) (string, bool) {
	v.t.Helper()
	ctx, cancel := v.step()
	defer cancel()
	res, err := chromedp.Run(ctx, chromedp.AttributeValue(chromedp.CSS(sel), name, chromedp.NodeReady))
	if err != nil {
		v.t.Fatalf("attribute %s of %s (%s): %v", name, sel, v.who(), err)
	}
	return res.Value, res.Exists
}

// lang is the page's <html lang>.
func (v *visitor) lang() string {
	v.t.Helper()
	l, _ := v.attr("html", "lang")
	return l
}

// signIn signs in as the demo person key, as a person would: the sign-in
// page, its demo link, then the button with their name.
func (v *visitor) signIn(key string) {
	v.t.Helper()
	if st := v.open("/signin"); st != 200 {
		v.t.Fatalf("GET /signin = %d", st)
	}
	v.follow(`main a[href="/demo"]`)
	st := v.follow(fmt.Sprintf(`form:has(input[name="person"][value=%q]) button[type="submit"]`, key))
	if st != 200 || !strings.HasPrefix(v.path(), "/cases") {
		v.t.Fatalf("sign in as %s: landed on %s with status %d, want a /cases page", key, v.path(), st)
	}
	v.name = key
}

// setLanguage presses the language switcher's button for lang and checks
// that the same page comes back in that language.
func (v *visitor) setLanguage(lang string) {
	v.t.Helper()
	before := v.path()
	v.follow(fmt.Sprintf(`form.langs button[value=%q]`, lang))
	if got := v.lang(); got != lang {
		v.t.Fatalf("after choosing %s: <html lang=%q>", lang, got)
	}
	if after := v.path(); after != before {
		v.t.Fatalf("language switch went from %s to %s, want the same page", before, after)
	}
}

// download clicks the download link sel and returns the bytes saved and
// the name the server suggested. It waits for the browser's own events.
func (v *visitor) download(sel string) ([]byte, string) {
	v.t.Helper()
	dir := v.t.TempDir()
	c := chromedp.FromContext(v.ctx)
	ctx, cancel := v.step()
	defer cancel()
	if _, err := chromedp.CallBrowser(ctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
		Behavior:         browser.SetDownloadBehaviorBehaviorAllowAndName,
		BrowserContextID: c.BrowserContextID,
		DownloadPath:     dir,
		EventsEnabled:    new(true),
	}); err != nil {
		v.t.Fatalf("set download behaviour: %v", err)
	}
	begins := chromedp.BrowserEvents(ctx, browser.DownloadWillBegin)
	progress := chromedp.BrowserEvents(ctx, browser.DownloadProgress)
	v.do("click "+sel, chromedp.Click(chromedp.CSS(sel), chromedp.NodeVisible))
	var begin browser.EventDownloadWillBegin
	for ev, err := range begins {
		if err != nil {
			v.t.Fatalf("no download began after clicking %s: %v", sel, err)
		}
		begin = ev
		break
	}
	for ev, err := range progress {
		if err != nil {
			v.t.Fatalf("download of %s did not finish: %v", begin.URL, err)
		}
		if ev.GUID != begin.GUID {
			continue
		}
		if ev.State == browser.DownloadProgressStateCanceled {
			v.t.Fatalf("download of %s was cancelled", begin.URL)
		}
		if ev.State == browser.DownloadProgressStateCompleted {
			break
		}
	}
	b, err := os.ReadFile(filepath.Join(dir, begin.GUID))
	if err != nil {
		v.t.Fatalf("read the downloaded file: %v", err)
	}
	return b, begin.SuggestedFilename
}

// visibleTextJS lists every piece of text a person can see or hear on the
// page, in document order: rendered text nodes, then accessible names and
// hints in attributes, then the title. Document content (.doc-text) is data
// from the case system and is left out.
const visibleTextJS = `(() => {
  const out = [];
  const norm = s => s.replace(/\s+/g, " ").trim();
  const w = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let n = w.nextNode(); n; n = w.nextNode()) {
    const s = norm(n.nodeValue);
    const el = n.parentElement;
    if (!s || !el || el.closest("script,style,template,.doc-text")) continue;
    if (!el.checkVisibility()) continue;
    out.push(s);
  }
  for (const el of document.querySelectorAll("[aria-label],[title],[alt],[placeholder]")) {
    for (const a of ["aria-label", "title", "alt", "placeholder"]) {
      if (el.hasAttribute(a)) out.push(norm(el.getAttribute(a)));
    }
  }
  out.push(norm(document.title));
  return out;
})()`

// visibleText returns the page's texts (see visibleTextJS).
func (v *visitor) visibleText() []string {
	v.t.Helper()
	return eval[[]string](v, visibleTextJS)
}

// demoDataStrings are the texts on pages that come from the case system
// (names, titles, notes, phone numbers), not from the catalogs, plus the
// languages' own names in the switcher: they stay the same in every
// language.
func demoDataStrings(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(demoData, "cast.json"))
	if err != nil {
		t.Fatal(err)
	}
	var doc any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	keys := map[string]bool{"name": true, "child": true, "title": true, "note": true, "reason": true,
		"reference": true, "phone": true, "emergency_phone": true, "municipality": true, "unit": true, "body": true}
	seen := map[string]bool{"Bokmål": true, "Nynorsk": true, "English": true}
	var walk func(any)
	walk = func(x any) {
		switch x := x.(type) {
		case map[string]any:
			for k, val := range x {
				if s, ok := val.(string); ok && keys[k] {
					seen[s] = true
				}
				walk(val)
			}
		case []any:
			for _, e := range x {
				walk(e)
			}
		}
	}
	walk(doc)
	out := make([]string, 0, len(seen))
	for s := range seen {
		out = append(out, s)
	}
	// Longest first, so "Sara Hansen" is taken out before "Sara".
	slices.SortFunc(out, func(a, b string) int { return cmp.Or(len(b)-len(a), strings.Compare(a, b)) })
	return out
}

// withoutData removes data strings from s.
func withoutData(s string, data []string) string {
	for _, d := range data {
		s = strings.ReplaceAll(s, d, " ")
	}
	return s
}

func notLetter(r rune) bool { return !unicode.IsLetter(r) }

func hasLetter(s string) bool {
	for _, r := range s {
		if unicode.IsLetter(r) {
			return true
		}
	}
	return false
}

// catalog reads the message texts of one language from i18n/locales, by
// message ID (plural forms as ID#form).
func catalog(t *testing.T, lang string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, kind := range []string{"active", "format"} {
		var raw map[string]any
		if _, err := toml.DecodeFile(fmt.Sprintf("../../i18n/locales/%s.%s.toml", kind, lang), &raw); err != nil {
			t.Fatal(err)
		}
		for id, val := range raw {
			switch val := val.(type) {
			case string:
				out[id] = val
			case map[string]any:
				for form, s := range val {
					if s, ok := s.(string); ok && form != "description" {
						out[id+"#"+form] = s
					}
				}
			}
		}
	}
	return out
}

var placeholder = regexp.MustCompile(`\{\{[^}]*\}\}`)

// sameInBoth describes the texts that are rightly the same in two
// languages (nb and nn share many words): whole messages that the two
// catalogs spell alike, as patterns, and the words of those messages, for
// texts put together from several of them ("Brev · publisert 3. mars 2026").
type sameInBoth struct {
	patterns []*regexp.Regexp
	words    map[string]bool
}

func newSameInBoth(a, b map[string]string) sameInBoth {
	s := sameInBoth{words: map[string]bool{}}
	for id, av := range a {
		if b[id] != av {
			continue
		}
		literal := placeholder.ReplaceAllString(av, "")
		if !hasLetter(literal) {
			continue // "{{.Date}} {{.Time}}" would match anything
		}
		for _, w := range strings.FieldsFunc(literal, notLetter) {
			s.words[strings.ToLower(w)] = true
		}
		parts := placeholder.Split(av, -1)
		for i := range parts {
			parts[i] = regexp.QuoteMeta(parts[i])
		}
		s.patterns = append(s.patterns, regexp.MustCompile("^"+strings.Join(parts, "(.+?)")+"$"))
	}
	return s
}

// allows reports whether text may look the same in both languages: it is
// a message spelled alike in both, or every word left once data and
// numbers are taken out comes from such messages.
func (s sameInBoth) allows(text string, data []string) bool {
	for _, p := range s.patterns {
		if p.MatchString(text) {
			return true
		}
	}
	rest := strings.FieldsFunc(withoutData(text, data), notLetter)
	for _, w := range rest {
		if !s.words[strings.ToLower(w)] {
			return false
		}
	}
	return true
}

// TestBrowser_parentReadsCaseAndDocuments: Sara signs in through the demo
// page, finds Emma's case, reads a text document and a PDF document, and
// downloads a document.
func TestBrowser_parentReadsCaseAndDocuments(t *testing.T) {
	b := newBrowser(t, false)
	p := startPortal(t)
	sara := b.visitor(t, p, "sara")

	// One case: /cases goes straight to it.
	if !regexp.MustCompile(`^/cases/[^/]+$`).MatchString(sara.path()) {
		t.Fatalf("after sign-in Sara is at %s, want her one case", sara.path())
	}
	if h1 := sara.text("main h1"); !strings.Contains(h1, "Emma") {
		t.Errorf("case page heading = %q, want Emma's case", h1)
	}
	if who := sara.text(".top .who"); who != "Sara Hansen" {
		t.Errorf("top bar shows %q, want Sara Hansen", who)
	}
	if st := sara.text(".status h2"); st == "" {
		t.Error("case page has no status card")
	}
	exit, _ := sara.attr("#quick-exit", "href")
	if !strings.HasPrefix(exit, "https://") {
		t.Errorf("quick exit link goes to %q, want a neutral https site", exit)
	}

	// Documents, through the case's own navigation.
	sara.follow(`nav.case-nav a[href$="/documents"]`)
	if n := eval[int](sara, `document.querySelectorAll("main .docs .doc").length`); n < 2 {
		t.Fatalf("Sara sees %d documents on the document list, want at least 2", n)
	}
	docsPath := sara.path()

	// A text document: its text is in the page, word for word.
	letter := "Vi har mottatt en bekymringsmelding om Emma"
	sara.follow(sara.docLink(letter))
	if h1 := sara.text("main h1"); h1 != letter {
		t.Errorf("document heading = %q, want %q", h1, letter)
	}
	want, err := os.ReadFile(filepath.Join(demoData, "docs/emma-brev-melding.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if got := sara.text("main article.doc-text"); strings.Join(strings.Fields(got), " ") != strings.Join(strings.Fields(string(want)), " ") {
		t.Errorf("the letter's text in the page differs from the file:\n%s", got)
	}
	if sara.text("main .explain") == "" {
		t.Error("document page lacks the plain explanation of its kind")
	}

	// Its download link saves the same file.
	got, name := sara.download(`main a.button[href$="/download"]`)
	if !bytes.Equal(got, want) {
		t.Errorf("downloaded %d bytes, want the %d bytes of the letter", len(got), len(want))
	}
	if !strings.HasSuffix(name, ".txt") {
		t.Errorf("download suggests the name %q, want a .txt file", name)
	}

	// A PDF document: embedded from /view, which answers with the PDF.
	sara.open(docsPath)
	sara.follow(sara.docLink("Plan for undersøkelsen"))
	data, ok := sara.attr("main object.pdf", "data")
	if !ok || !strings.HasSuffix(data, "/view") {
		t.Fatalf("PDF page embeds %q, want the document's /view", data)
	}
	type fetched struct {
		Status int
		Type   string
		Head   string
	}
	f := eval[fetched](sara, fmt.Sprintf(`fetch(%q).then(async r => ({
		status: r.status, type: r.headers.get("content-type"),
		head: new TextDecoder().decode((await r.arrayBuffer()).slice(0, 5))}))`, data), chromedp.EvalAwaitPromise)
	if f.Status != 200 || f.Type != "application/pdf" || f.Head != "%PDF-" {
		t.Errorf("GET %s from the page = %d %q %q, want 200 application/pdf %%PDF-", data, f.Status, f.Type, f.Head)
	}
	if dl, _ := sara.attr(`main a.button[href$="/download"]`, "href"); !strings.HasPrefix(dl, "/documents/") {
		t.Errorf("PDF page has no download link (%q)", dl)
	}
}

// docLink returns a selector for the document link titled title on the
// current page.
func (v *visitor) docLink(title string) string {
	v.t.Helper()
	href := eval[string](v, fmt.Sprintf(`(Array.from(document.querySelectorAll("main a.doc-title"))
		.find(a => a.textContent.trim() === %q) || {getAttribute: () => ""}).getAttribute("href")`, title))
	if href == "" {
		v.t.Fatalf("no link to the document %q on %s", title, v.path())
	}
	return fmt.Sprintf(`main a.doc-title[href=%q]`, href)
}

// TestBrowser_languageSwitcherChangesEveryText: on each page, the switcher
// (nb → nn → en) changes <html lang> and every text on the page, apart
// from data (names, titles, numbers) and, between nb and nn, the words the
// two written standards share.
func TestBrowser_languageSwitcherChangesEveryText(t *testing.T) {
	b := newBrowser(t, false)
	p := startPortal(t)
	data := demoDataStrings(t)
	nb, nn, en := catalog(t, "nb"), catalog(t, "nn"), catalog(t, "en")
	nbnn, nben := newSameInBoth(nb, nn), newSameInBoth(nb, en)

	check := func(v *visitor) {
		t.Helper()
		v.setLanguage("nb")
		texts := map[string][]string{"nb": v.visibleText()}
		for _, lang := range []string{"nn", "en"} {
			v.setLanguage(lang)
			texts[lang] = v.visibleText()
		}
		page := v.path()
		for _, c := range []struct {
			lang string
			same sameInBoth
		}{{"nn", nbnn}, {"en", nben}} {
			a, z := texts["nb"], texts[c.lang]
			if len(a) != len(z) {
				t.Errorf("%s as %s: %d texts in nb, %d in %s; the page's structure changed with the language:\nnb: %q\n%s: %q",
					page, v.who(), len(a), len(z), c.lang, a, c.lang, z)
				continue
			}
			for i := range a {
				if a[i] == z[i] && !c.same.allows(a[i], data) {
					t.Errorf("%s as %s: %q is the same in nb and %s", page, v.who(), a[i], c.lang)
				}
			}
		}
		v.setLanguage("nb")
	}

	anon := b.visitor(t, p, "")
	for _, path := range []string{"/signin", "/demo", "/words", "/no-such-page"} {
		anon.open(path)
		check(anon)
	}

	sara := b.visitor(t, p, "sara")
	casePath := sara.path()
	check(sara)
	sara.follow(`nav.case-nav a[href$="/documents"]`)
	check(sara)
	sara.follow(sara.docLink("Vi har mottatt en bekymringsmelding om Emma"))
	check(sara)
	sara.open(casePath + "/timeline")
	check(sara)

	kari := b.visitor(t, p, "kari")
	check(kari)
	kari.follow(`main .case-card a`)
	check(kari)
}

// TestBrowser_withoutJavaScript: with scripts switched off, a parent signs
// in, reads the case and a document, and switches language; every step is
// a plain link or form post.
func TestBrowser_withoutJavaScript(t *testing.T) {
	b := newBrowser(t, false)
	p := startPortal(t)

	// The marker proves which tab runs scripts: the same init script runs
	// in the control tab and must not run in the no-script tab.
	control := b.visitor(t, p, "", visitorOptions{scriptMarker: true})
	control.open("/signin")
	if v, _ := control.attr("html", "data-script-ran"); v != "yes" {
		t.Fatal("control tab: the marker script did not run, so the no-script check below proves nothing")
	}

	v := b.visitor(t, p, "", visitorOptions{noScript: true, scriptMarker: true})
	v.signIn("noah")
	if ran, ok := v.attr("html", "data-script-ran"); ok {
		t.Fatalf("scripts ran in the no-script tab (marker %q)", ran)
	}
	if h1 := v.text("main h1"); !strings.Contains(h1, "Noah") {
		t.Errorf("case page heading = %q, want Noah's case", h1)
	}
	if v.text(".status h2") == "" {
		t.Error("case page has no status card")
	}
	v.follow(v.docLink("Notat fra samtale med Noah"))
	if v.text("main article.doc-text") == "" {
		t.Error("the note's text is not in the page")
	}
	v.setLanguage("en")
	if v.text("main .explain") == "" || v.lang() != "en" {
		t.Error("the English document page lacks its explanation")
	}
	v.setLanguage("nb")
	v.follow(".signout button")
	if !strings.HasPrefix(v.path(), "/signin") {
		t.Errorf("after signing out the tab is at %s, want /signin", v.path())
	}
	if st := v.open("/cases"); st != 200 || !strings.HasPrefix(v.path(), "/signin") {
		t.Errorf("after signing out, /cases went to %s (%d), want the sign-in page", v.path(), st)
	}
}
