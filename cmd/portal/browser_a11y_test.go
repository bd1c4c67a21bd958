package main

import (
	"cmp"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/chromedp/chromedp"
)

// screenshotDir is where the page screenshots go, for people to look at.
// It is in .gitignore.
const screenshotDir = "../../screenshots"

// weightBudget is the most a page may weigh on the wire: HTML, CSS, JS
// and images together (UI.md: "a first page under 50 KB compressed").
const weightBudget = 50 * 1024

// everyRole is every kind of person the demo has, and someone signed out.
var everyRole = []struct{ key, what string }{
	{"", "signed out"},
	{"sara", "mother, one case"},
	{"noah", "youth, 16"},
	{"jonas", "father, a document withheld"},
	{"per", "no case"},
	{"maria", "mother, prefers English"},
	{"kari", "caseworker"},
	{"ingrid", "team lead"},
}

// axeRunJS runs axe-core for WCAG 2.0/2.1 A and AA and returns a short form
// of the violations, and how many rules passed (so a run that checked
// nothing cannot look like a clean page).
const axeRunJS = `axe.run(document, {
  runOnly: {type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]},
  resultTypes: ["violations"],
}).then(r => ({
  passes: r.passes.length,
  violations: r.violations.map(v => ({
    id: v.id, impact: v.impact || "", help: v.help,
    nodes: v.nodes.slice(0, 5).map(n => ({
      target: n.target.map(String).join(" "), html: n.html, summary: n.failureSummary || ""})),
  })),
}))`

type axeResult struct {
	Passes     int
	Violations []struct {
		ID, Impact, Help string
		Nodes            []struct{ Target, HTML, Summary string }
	}
}

// weightJS sums what the page loaded, by kind, from the Performance API.
// transferSize is what crossed the network: headers plus the body as sent
// (compressed, when the server compresses). "other" is an embedded
// document, such as a PDF in <object>: content, not page weight.
const weightJS = `(() => {
  const nav = performance.getEntriesByType("navigation")[0];
  const w = {html: nav ? nav.transferSize : 0, css: 0, js: 0, img: 0, other: 0, files: 0};
  for (const e of performance.getEntriesByType("resource")) {
    const p = new URL(e.name).pathname;
    w.files++;
    if (/\.css$/.test(p)) w.css += e.transferSize;
    else if (/\.m?js$/.test(p)) w.js += e.transferSize;
    else if (e.initiatorType === "img" || /\.(png|jpe?g|gif|webp|svg|ico|avif)$/.test(p)) w.img += e.transferSize;
    else w.other += e.transferSize;
  }
  return w;
})()`

type pageWeight struct{ HTML, CSS, JS, Img, Other, Files int }

func (w pageWeight) total() int { return w.HTML + w.CSS + w.JS + w.Img }

// overflowJS names the elements that stick out to the right of a
// viewport that many px wide, to say what makes a page scroll sideways. (A phone
// widens its layout viewport to fit such a page, so the width is given.)
const overflowJS = `(() => {
  const vw = %d, bad = [];
  for (const el of document.body.querySelectorAll("*")) {
    const r = el.getBoundingClientRect();
    const right = r.left + Math.max(r.width, el.scrollWidth); // a box, or content overflowing it
    if (r.width > 0 && right > vw + 0.5) bad.push([el, right]);
  }
  // The innermost ones say the most.
  return bad.filter(([el]) => !bad.some(([o]) => o !== el && el.contains(o))).slice(0, 5).map(([el, right]) =>
    el.tagName.toLowerCase() + (el.id ? "#" + el.id : "") + (el.classList.length ? "." + [...el.classList].join(".") : "") +
    " (to " + Math.round(right) + " px)");
})()`

// TestBrowser_everyPageAccessible visits every page every kind of person
// can reach, in all three languages, and on each:
//   - axe-core (WCAG 2.0 and 2.1, A and AA) finds no violation;
//   - at 320 px wide, and at 320 px with the text at 200 %, nothing makes
//     the page scroll sideways;
//   - it takes a screenshot at the phone viewport (screenshots/);
//   - it weighs the page (HTML + CSS + JS + images on the wire) and keeps
//     it under 50 KB.
//
// Pages are found by following the links on them, so a new page is
// checked as soon as something links to it.
func TestBrowser_everyPageAccessible(t *testing.T) {
	b := newBrowser(t, true)
	p := startPortal(t)
	if err := os.MkdirAll(screenshotDir, 0o755); err != nil {
		t.Fatal(err)
	}
	var (
		mu      sync.Mutex
		weights = map[string]pageWeight{} // "who page" → weight, Bokmål
		visited int
	)
	t.Run("roles", func(t *testing.T) {
		for _, r := range everyRole {
			name := r.key
			if name == "" {
				name = "signed-out"
			}
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				v := b.visitor(t, p, r.key, visitorOptions{cacheOff: true})
				for _, lang := range []string{"nb", "nn", "en"} {
					v.open("/")
					v.setLanguage(lang)
					// Screenshots in Bokmål only: one set of pictures to look at.
					shots := ""
					if lang == "nb" {
						shots = name + "-" + lang
					}
					crawl(v, func(pg crawledPage) {
						w := checkPage(t, v, b, pg, lang, shots)
						mu.Lock()
						defer mu.Unlock()
						visited++
						if lang == "nb" {
							weights[fmt.Sprintf("%-10s %s", name, pg.label)] = w
						}
					})
				}
				v.setLanguage("nb")
			})
		}
	})

	keys := make([]string, 0, len(weights))
	for k := range weights {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	t.Logf("page weight on the wire (nb, no cache): total = HTML + CSS + JS + images; budget %d KB", weightBudget/1024)
	for _, k := range keys {
		w := weights[k]
		t.Logf("  %-44s %6.1f KB  (html %.1f, css %.1f, js %.1f, img %.1f; embedded document %.1f)", k,
			kb(w.total()), kb(w.HTML), kb(w.CSS), kb(w.JS), kb(w.Img), kb(w.Other))
	}
	t.Logf("%d page visits checked with axe-core, at 320 px and at 200 %% text", visited)
	if len(weights) < 20 {
		t.Errorf("only %d pages found across all roles; the crawl lost its way", len(weights))
	}
}

func kb(n int) float64 { return float64(n) / 1024 }

// crawledPage is one page found by crawl.
type crawledPage struct {
	path  string // where it is
	label string // the path with ids taken out, for names and logs
	index int    // the order crawl found it in, for stable file names
	want  int64  // the HTTP status the page must answer with
}

var idSegment = regexp.MustCompile(`/[A-Za-z0-9_-]{16,}`)

// crawl visits every page v can reach from the start pages by following
// same-site links (files and downloads aside), in a stable order, and
// calls check on each, with the page open in the tab. Last it visits an
// unknown path, for the "not found" page.
func crawl(v *visitor, check func(crawledPage)) {
	v.t.Helper()
	queue := []string{"/", "/signin", "/demo", "/privacy", "/accessibility", "/words"}
	from := map[string]string{} // where a link was first found, for error messages
	seen := map[string]bool{}
	labels := map[string]int{}
	n := 0
	for ; len(queue) > 0; queue = queue[1:] {
		if seen[queue[0]] {
			continue
		}
		seen[queue[0]] = true // also when it fails: one error per page, not one per link to it
		if st := v.open(queue[0]); st != 200 {
			v.t.Errorf("GET %s as %s = %d, want 200 (linked from %s)", queue[0], v.who(), st, cmp.Or(from[queue[0]], "the start pages"))
			continue
		}
		path := v.path() // after redirects: "/" lands on /signin or on a case
		if seen[path] && path != queue[0] {
			continue
		}
		seen[path] = true
		label := idSegment.ReplaceAllString(path, "/:id")
		if labels[label]++; labels[label] > 1 {
			label += fmt.Sprintf("#%d", labels[label])
		}
		// Read the links before the checks change the page.
		links := eval[[]string](v, `Array.from(document.querySelectorAll("a[href]"), a => a.getAttribute("href"))`)
		check(crawledPage{path: path, label: label, index: n, want: 200})
		n++
		for _, href := range links {
			if !strings.HasPrefix(href, "/") || strings.HasPrefix(href, "//") || strings.HasPrefix(href, "/static/") ||
				strings.HasSuffix(href, "/download") || strings.HasSuffix(href, "/view") {
				continue
			}
			href, _, _ = strings.Cut(href, "#")
			if !seen[href] {
				queue = append(queue, href)
				if from[href] == "" {
					from[href] = path
				}
			}
		}
	}
	if st := v.open("/no-such-page"); st != 404 {
		v.t.Errorf("GET /no-such-page as %s = %d, want 404", v.who(), st)
	}
	check(crawledPage{path: "/no-such-page", label: "/no-such-page (404)", index: n, want: 404})
}

// checkPage runs every check on the page open in v's tab, which has just
// loaded; it returns the page's weight. With shot set, it writes a
// screenshot named after shot and the page.
func checkPage(t *testing.T, v *visitor, b *testBrowser, pg crawledPage, lang, shot string) pageWeight {
	t.Helper()
	where := fmt.Sprintf("%s as %s in %s", pg.label, v.who(), lang)
	if got := v.lang(); got != lang {
		t.Errorf("%s: <html lang=%q>", where, got)
	}
	w := eval[pageWeight](v, weightJS)
	if w.total() > weightBudget {
		t.Errorf("%s weighs %.1f KB on the wire, over the %d KB budget", where, kb(w.total()), weightBudget/1024)
	}

	// axe-core, injected into the page (DevTools evaluation is not subject
	// to the page's Content-Security-Policy).
	eval[chromedp.Void](v, b.axe)
	res := eval[axeResult](v, axeRunJS, chromedp.EvalAwaitPromise)
	if res.Passes == 0 {
		t.Errorf("%s: axe-core checked nothing", where)
	}
	for _, viol := range res.Violations {
		var nodes strings.Builder
		for _, n := range viol.Nodes {
			fmt.Fprintf(&nodes, "\n      %s: %s\n        %s", n.Target, n.HTML, strings.ReplaceAll(n.Summary, "\n", "\n        "))
		}
		t.Errorf("%s: axe %s (%s): %s%s", where, viol.ID, viol.Impact, viol.Help, nodes.String())
	}

	// Screenshot at the phone viewport, before the reflow checks move things.
	if shot != "" {
		ctx, cancel := v.step()
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		cancel()
		if err != nil {
			t.Errorf("%s: screenshot: %v", where, err)
		} else {
			name := fmt.Sprintf("%s-%02d", shot, pg.index) + strings.NewReplacer("/", "_", ":", "", "#", "-", " ", "", "(", "", ")", "", "?", "_", "=", "-", "&", "_").Replace(pg.label) + ".png"
			if err := os.WriteFile(filepath.Join(screenshotDir, name), png, 0o644); err != nil {
				t.Errorf("write screenshot: %v", err)
			}
		}
	}

	// Reflow (WCAG 1.4.10): 320 CSS px wide, then also with text at 200 %
	// (1.4.4; the CSS sizes text in rem, so this is what text-only zoom does).
	v.do("narrow to 320 px", chromedp.EmulateViewport(320, phoneHeight, chromedp.EmulateMobile, chromedp.EmulateTouch, chromedp.EmulatePortrait))
	for _, zoom := range []string{"", "200%"} {
		eval[chromedp.Void](v, fmt.Sprintf(`document.documentElement.style.fontSize = %q`, zoom))
		if sw := eval[int](v, `document.documentElement.scrollWidth`); sw > 320 {
			z := ""
			if zoom != "" {
				z = " with text at " + zoom
			}
			t.Errorf("%s: at 320 px%s the page is %d px wide (scrolls sideways); sticking out: %q",
				where, z, sw, eval[[]string](v, fmt.Sprintf(overflowJS, 320)))
		}
	}
	eval[chromedp.Void](v, `document.documentElement.style.fontSize = ""`)
	v.do("back to the phone viewport", chromedp.EmulateViewport(phoneWidth, phoneHeight, chromedp.EmulateMobile, chromedp.EmulateTouch, chromedp.EmulatePortrait))
	return w
}
