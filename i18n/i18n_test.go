package i18n

import (
	"bytes"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"text/template"
	"text/template/parse"

	goi18n "github.com/nicksnyder/go-i18n/v2/i18n"
	"golang.org/x/text/language"
)

func newTestBundle(t *testing.T) *Bundle {
	t.Helper()
	b, err := NewBundle()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestSupported(t *testing.T) {
	if got, want := Supported(), []string{"nb", "nn", "en"}; !slices.Equal(got, want) {
		t.Errorf("Supported() = %v, want %v", got, want)
	}
	Supported()[0] = "xx" // callers get a copy
	if got := Supported()[0]; got != "nb" {
		t.Errorf("Supported()[0] = %q after a caller changed its copy, want nb", got)
	}
	if Default != language.MustParse("nb") || supported[0] != Default {
		t.Errorf("Default = %v, supported[0] = %v, want nb for both", Default, supported[0])
	}
	for _, tt := range []struct {
		code string
		want bool
	}{{"nb", true}, {"nn", true}, {"en", true}, {"no", false}, {"nb-NO", false}, {"", false}, {"EN", false}} {
		if got := IsSupported(tt.code); got != tt.want {
			t.Errorf("IsSupported(%q) = %v, want %v", tt.code, got, tt.want)
		}
	}
}

func TestLangName(t *testing.T) {
	want := map[string]string{"nb": "Bokmål", "nn": "Nynorsk", "en": "English", "se": "se"}
	for code, name := range want {
		if got := LangName(code); got != name {
			t.Errorf("LangName(%q) = %q, want %q", code, got, name)
		}
	}
	for _, code := range Supported() {
		if LangName(code) == code {
			t.Errorf("LangName(%q) has no name", code)
		}
	}
}

func TestBundle_Localizer(t *testing.T) {
	b := newTestBundle(t)
	tests := []struct {
		name  string
		prefs []string
		want  string
	}{
		{"no preference at all", nil, "nb"},
		{"empty header", []string{""}, "nb"},
		{"plain Norwegian is Bokmål", []string{"no"}, "nb"},
		{"nb-NO", []string{"nb-NO"}, "nb"},
		{"nn-NO is Nynorsk, not Bokmål", []string{"nn-NO"}, "nn"},
		{"nn", []string{"nn"}, "nn"},
		{"Swedish falls back to the default", []string{"sv-SE"}, "nb"},
		{"en-GB", []string{"en-GB"}, "en"},
		{"en-US", []string{"en-US,en;q=0.9"}, "en"},
		{"Danish reader who asks for English gets English", []string{"da, en;q=0.8"}, "en"},
		{"Danish alone reads Bokmål", []string{"da"}, "nb"},
		{"German falls back to the default", []string{"de-DE,de;q=0.9"}, "nb"},
		{"q values beat order", []string{"en;q=0.5, nn-NO;q=0.9"}, "nn"},
		{"typical Norwegian browser", []string{"nb-NO,nb;q=0.9,no;q=0.8,nn;q=0.7,en-US;q=0.6,en;q=0.5"}, "nb"},
		{"wildcard", []string{"*"}, "nb"},
		{"malformed header", []string{"x;;q=,,"}, "nb"},
		{"saved language beats the header", []string{"nn", "en-GB"}, "nn"},
		{"no saved language, header decides", []string{"", "en-GB"}, "en"},
		{"unsupported saved language, header decides", []string{"sv", "nn-NO"}, "nn"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := b.Localizer(tt.prefs...).Lang; got != tt.want {
				t.Errorf("Localizer(%q).Lang = %q, want %q", tt.prefs, got, tt.want)
			}
		})
	}
}

func TestLocalizer_N(t *testing.T) {
	b := newTestBundle(t)
	tests := []struct {
		lang string
		n    int
		want string
	}{
		{"nb", 0, "0 dager"}, {"nb", 1, "1 dag"}, {"nb", 2, "2 dager"}, {"nb", 21, "21 dager"},
		{"nn", 0, "0 dagar"}, {"nn", 1, "1 dag"}, {"nn", 2, "2 dagar"}, {"nn", 21, "21 dagar"},
		{"en", 0, "0 days"}, {"en", 1, "1 day"}, {"en", 2, "2 days"}, {"en", 21, "21 days"},
		{"en", -1, "-1 day"}, // CLDR: the sign does not change the form
	}
	for _, tt := range tests {
		if got := b.Localizer(tt.lang).N("format_duration_days", tt.n, nil); got != tt.want {
			t.Errorf("%s: N(format_duration_days, %d) = %q, want %q", tt.lang, tt.n, got, tt.want)
		}
	}
}

func TestLocalizer_N_keepsCallerData(t *testing.T) {
	b := newTestBundle(t)
	if err := b.b.AddMessages(Default, &goi18n.Message{
		ID: "test_unread", One: "{{.Name}}: {{.Count}} ulest", Other: "{{.Name}}: {{.Count}} uleste",
	}); err != nil {
		t.Fatal(err)
	}
	data := map[string]any{"Name": "Kari"}
	if got, want := b.Localizer("nb").N("test_unread", 3, data), "Kari: 3 uleste"; got != want {
		t.Errorf("N(test_unread, 3) = %q, want %q", got, want)
	}
	if _, ok := data["Count"]; ok || len(data) != 1 {
		t.Errorf("N changed the caller's map: %v", data)
	}
}

// TestLocalizer_T_fallback checks that T and N never panic or return ""
// and log only the ID: default language first, then the ID.
func TestLocalizer_T_fallback(t *testing.T) {
	b := newTestBundle(t)
	var logs bytes.Buffer
	b.log = slog.New(slog.NewTextHandler(&logs, nil))
	nn := language.MustParse("nn")
	for tag, msgs := range map[language.Tag][]*goi18n.Message{
		Default: {
			{ID: "test_only_nb", Other: "Bare på bokmål, {{.Name}}"},
			{ID: "test_broken_in_nn", Other: "Hei {{.Name}}"},
			{ID: "test_broken", Other: "{{.Name.Secret}}"},
			{ID: "test_no_one_form", Other: "{{.Count}} saker"},
		},
		nn: {
			{ID: "test_broken_in_nn", Other: "Hei {{.Name.Secret}}"}, // Name is a string: execution fails
		},
	} {
		if err := b.b.AddMessages(tag, msgs...); err != nil {
			t.Fatal(err)
		}
	}
	data := map[string]any{"Name": "Kari Nordmann"}
	tests := []struct {
		name, lang, id string
		n              int // -1: call T, else N
		want           string
		wantLog        bool
	}{
		{"found", "nn", "format_day_today", -1, "I dag", false},
		{"missing in nn comes from nb", "nn", "test_only_nb", -1, "Bare på bokmål, Kari Nordmann", true},
		{"missing in en comes from nb", "en", "test_only_nb", -1, "Bare på bokmål, Kari Nordmann", true},
		{"broken in nn comes from nb", "nn", "test_broken_in_nn", -1, "Hei Kari Nordmann", true},
		{"missing everywhere gives the ID", "en", "no_such_message", -1, "no_such_message", true},
		{"missing everywhere in N gives the ID", "nb", "no_such_message", 2, "no_such_message", true},
		{"broken everywhere gives the ID", "nb", "test_broken", -1, "test_broken", true},
		{"missing plural form uses other", "nb", "test_no_one_form", 1, "1 saker", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			logs.Reset()
			l := b.Localizer(tt.lang)
			var got string
			if tt.n < 0 {
				got = l.T(tt.id, data)
			} else {
				got = l.N(tt.id, tt.n, data)
			}
			if got != tt.want {
				t.Errorf("%s: %s = %q, want %q", tt.lang, tt.id, got, tt.want)
			}
			switch out := logs.String(); {
			case !tt.wantLog && out != "":
				t.Errorf("unexpected log: %s", out)
			case tt.wantLog && !strings.Contains(out, "level=WARN") || tt.wantLog && !strings.Contains(out, "id="+tt.id):
				t.Errorf("log = %q, want a warning with id=%s", out, tt.id)
			case strings.Contains(out, "Kari"):
				t.Errorf("log contains template data: %s", out)
			}
		})
	}
	if got := b.Localizer("en").T("", nil); got != "" {
		t.Errorf(`T("") = %q, want ""`, got)
	}
}

func TestBundle_Keys(t *testing.T) {
	b := newTestBundle(t)
	keys := b.Keys("nn")
	if !slices.IsSorted(keys) || !slices.Contains(keys, "format_weekday_monday") {
		t.Errorf("Keys(nn) = %v, want sorted and with format_weekday_monday", keys)
	}
	if got := b.Keys("sv"); got != nil {
		t.Errorf("Keys(sv) = %v, want nil", got)
	}
}

// TestLocaleFilesAreLoaded checks that every file in locales/ is one the
// bundle loads, so a misnamed file cannot hide from TestLocalesHaveSameKeys.
func TestLocaleFilesAreLoaded(t *testing.T) {
	b := newTestBundle(t)
	entries, err := os.ReadDir("locales")
	if err != nil {
		t.Fatal(err)
	}
	name := regexp.MustCompile(`^[a-z0-9_]+\.(nb|nn|en)\.toml$`)
	for _, e := range entries {
		if !name.MatchString(e.Name()) {
			t.Errorf("locales/%s: want <name>.<nb|nn|en>.toml", e.Name())
			continue
		}
		if !slices.Contains(b.files, "locales/"+e.Name()) {
			t.Errorf("locales/%s is not loaded by NewBundle", e.Name())
		}
	}
}

// TestLocalesHaveSameKeys checks every message in every locales/*.toml file:
// an ID one language has, all languages have; a message with plural forms
// has both "one" and "other" in every language; no message is empty.
func TestLocalesHaveSameKeys(t *testing.T) {
	b := newTestBundle(t)
	langs := Supported()
	ids := map[string]bool{}
	for _, lang := range langs {
		for _, id := range b.Keys(lang) {
			ids[id] = true
		}
	}
	for _, id := range slices.Sorted(maps.Keys(ids)) {
		var plural, missing []string
		for _, lang := range langs {
			m := b.messages[lang][id]
			if m == nil {
				missing = append(missing, lang)
				continue
			}
			if m.Other == "" {
				t.Errorf("%s: %q has no text (\"other\")", lang, id)
			}
			if m.Zero != "" || m.One != "" || m.Two != "" || m.Few != "" || m.Many != "" {
				plural = append(plural, lang)
			}
		}
		if len(missing) > 0 {
			t.Errorf("%q is missing in %v", id, missing)
		}
		if len(plural) > 0 {
			for _, lang := range langs {
				if m := b.messages[lang][id]; m != nil && (m.One == "" || m.Other == "") {
					t.Errorf("%s: %q needs both \"one\" and \"other\" (it is plural in %v)", lang, id, plural)
				}
			}
		}
	}
}

// TestLocalesUseSameFields checks that every message's templates parse, and
// that each language uses the same {{.Fields}}: a misspelt field renders as
// "<no value>" in front of a family.
func TestLocalesUseSameFields(t *testing.T) {
	b := newTestBundle(t)
	for _, id := range b.Keys(Default.String()) {
		var first string
		for _, lang := range Supported() {
			m := b.messages[lang][id]
			if m == nil {
				continue // reported by TestLocalesHaveSameKeys
			}
			fields := map[string]bool{}
			for _, src := range []string{m.Zero, m.One, m.Two, m.Few, m.Many, m.Other} {
				tmpl, err := template.New(id).Delims(m.LeftDelim, m.RightDelim).Parse(src)
				if err != nil {
					t.Errorf("%s: %q does not parse: %v", lang, id, err)
					continue
				}
				collectFields(tmpl.Root, fields)
			}
			// "one" may spell out the number ("én melding"), so Count may be
			// missing in one language and present in another.
			delete(fields, "Count")
			got := strings.Join(slices.Sorted(maps.Keys(fields)), " ")
			if lang == Default.String() {
				first = got
			} else if got != first {
				t.Errorf("%q uses fields [%s] in %s but [%s] in %s", id, got, lang, first, Default)
			}
		}
	}
}

// collectFields adds the top-level field names ({{.Name}} gives Name) used
// anywhere under n.
func collectFields(n parse.Node, fields map[string]bool) {
	switch n := n.(type) {
	case *parse.ListNode:
		if n == nil {
			return
		}
		for _, c := range n.Nodes {
			collectFields(c, fields)
		}
	case *parse.ActionNode:
		collectFields(n.Pipe, fields)
	case *parse.PipeNode:
		if n == nil {
			return
		}
		for _, c := range n.Cmds {
			collectFields(c, fields)
		}
	case *parse.CommandNode:
		for _, a := range n.Args {
			collectFields(a, fields)
		}
	case *parse.FieldNode:
		fields[n.Ident[0]] = true
	case *parse.ChainNode:
		collectFields(n.Node, fields)
	case *parse.IfNode:
		collectBranch(&n.BranchNode, fields)
	case *parse.RangeNode:
		collectBranch(&n.BranchNode, fields)
	case *parse.WithNode:
		collectBranch(&n.BranchNode, fields)
	}
}

func collectBranch(n *parse.BranchNode, fields map[string]bool) {
	collectFields(n.Pipe, fields)
	collectFields(n.List, fields)
	collectFields(n.ElseList, fields)
}

// TestLocalizer_concurrent gives the race detector something to look at:
// one Bundle serves every request.
func TestLocalizer_concurrent(t *testing.T) {
	b := newTestBundle(t)
	b.log = slog.New(slog.DiscardHandler)
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			for j := range 50 {
				l := b.Localizer(Supported()[(i+j)%3], "en-GB")
				_ = l.N("format_duration_days", j, map[string]any{"x": i})
				_ = l.T(fmt.Sprintf("missing_%d", j%4), nil)
				_ = l.DateTime(testNow)
				_ = l.Day(testNow, testNow)
			}
		})
	}
	wg.Wait()
}
