package portal

import (
	"io/fs"
	"regexp"
	"strings"
	"testing"
)

var (
	actionRE  = regexp.MustCompile(`(?s)\{\{.*?\}\}`)
	commentRE = regexp.MustCompile(`(?s)<!--.*?-->`)
	scriptRE  = regexp.MustCompile(`(?s)<(script|style)[^>]*>.*?</(script|style)>`)
	wordAttr  = regexp.MustCompile(`\b(aria-label|title|alt|placeholder)="([^"]*)"`)
	letterRE  = regexp.MustCompile(`\p{L}`)
)

// TestTemplates_everyWordThroughI18n fails on any text in a template that
// does not come from the catalogs: letters in a text node or in an
// attribute people read (aria-label, title, alt, placeholder).
func TestTemplates_everyWordThroughI18n(t *testing.T) {
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil || len(names) == 0 {
		t.Fatalf("no templates (%v)", err)
	}
	for _, name := range names {
		b, err := fs.ReadFile(templateFS, name)
		if err != nil {
			t.Fatal(err)
		}
		src := commentRE.ReplaceAllString(string(b), "")
		src = actionRE.ReplaceAllString(src, "")
		src = scriptRE.ReplaceAllString(src, "")
		for _, m := range wordAttr.FindAllStringSubmatch(src, -1) {
			if letterRE.MatchString(m[2]) {
				t.Errorf("%s: %s=%q is not translated", name, m[1], m[2])
			}
		}
		text := tagRE.ReplaceAllString(src, "\n")
		for _, line := range strings.Split(text, "\n") {
			line = strings.TrimSpace(line)
			if letterRE.MatchString(line) {
				t.Errorf("%s: text %q is not translated", name, line)
			}
		}
	}
}
