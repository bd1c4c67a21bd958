// Package i18n loads the portal's translations and picks a language per request.
//
// It wraps github.com/nicksnyder/go-i18n/v2/i18n, imported here as goi18n
// because the two packages share a name. Other packages import only this one:
// they see Bundle, Localizer.T and Localizer.N, and the date and time
// formatting in format.go.
//
// Translations are TOML files embedded from locales/. go-i18n takes a file's
// language from the second-to-last dot-separated part of its name, so
// active.nn.toml and format.nn.toml both hold Nynorsk messages. Every
// supported language must have the same message IDs (TestLocalesHaveSameKeys).
package i18n

import (
	"embed"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/BurntSushi/toml"
	goi18n "github.com/nicksnyder/go-i18n/v2/i18n"
	"golang.org/x/text/language"
)

//go:embed locales/*.toml
var locales embed.FS

// Default is the language used when nothing the user asks for is available.
var Default = language.MustParse("nb") // x/text has no NorwegianBokmål constant

// supported lists the languages we have, best fallback first. Default must
// come first: when nothing matches, the matcher returns index 0.
var supported = []language.Tag{
	Default,
	language.MustParse("nn"),
	language.English,
}

// langNames are the languages' own names (endonyms). They are the same in
// every UI language, so they are data, not translations: someone who reads
// Nynorsk looks for "Nynorsk" on an English page too.
var langNames = map[string]string{
	"nb": "Bokmål",
	"nn": "Nynorsk",
	"en": "English",
}

// Supported returns the codes of the supported languages in the order the
// language switcher shows them: "nb", "nn", "en".
func Supported() []string {
	codes := make([]string, len(supported))
	for i, t := range supported {
		codes[i] = t.String()
	}
	return codes
}

// IsSupported reports whether code is exactly one of the codes Supported
// returns. Use it to validate a language the user picks or has saved.
func IsSupported(code string) bool {
	return slices.Contains(Supported(), code)
}

// LangName returns the language's name in that language ("Bokmål",
// "Nynorsk", "English"), for the language switcher. Mark the link up with
// lang=code so screen readers pronounce it right. For an unsupported code it
// returns the code.
func LangName(code string) string {
	if name, ok := langNames[code]; ok {
		return name
	}
	return code
}

// Bundle holds every language's messages. It is read-only after NewBundle,
// so one Bundle is shared by all requests.
type Bundle struct {
	b          *goi18n.Bundle
	matcher    language.Matcher
	localizers []*goi18n.Localizer                   // one per supported language, same index
	messages   map[string]map[string]*goi18n.Message // lang code -> ID -> message, for Keys and the tests
	files      []string                              // loaded file names, for the tests
	loc        *time.Location                        // Europe/Oslo
	log        *slog.Logger                          // nil means slog.Default(), read at call time

	// plain keeps T's answers without data, by language and ID: the
	// catalogs never change once loaded, and a page asks for a hundred of
	// them (go-i18n looks each up and runs its template every time).
	plain sync.Map // plainKey -> string
	// clock keeps Time's answers, by language and minute of the day.
	clock sync.Map // clockKey -> string
	// dates and days keep Date's and Day's answers, by language and day;
	// nDates counts what was offered to both.
	dates  sync.Map // dateKey -> string
	days   sync.Map // dayKey -> string
	nDates atomic.Int64
	// counted keeps N's answers without data, by language, ID and count
	// (an inbox asks "3 unread" once per conversation); nCounted bounds it.
	counted  sync.Map // countKey -> string
	nCounted atomic.Int64
}

type countKey struct {
	lang, id string
	n        int
}

type plainKey struct{ lang, id string }

// NewBundle loads the embedded locales/*.toml files and the Europe/Oslo time
// zone. It fails if a file is for a language we do not support, if two files
// of one language define the same ID, or if a supported language has no
// messages at all.
func NewBundle() (*Bundle, error) {
	loc, err := time.LoadLocation("Europe/Oslo")
	if err != nil {
		return nil, fmt.Errorf("i18n: load time zone (import time/tzdata in main): %w", err)
	}
	names, err := fs.Glob(locales, "locales/*.toml")
	if err != nil {
		return nil, err
	}
	b := &Bundle{
		b:        goi18n.NewBundle(Default),
		matcher:  language.NewMatcher(supported),
		messages: make(map[string]map[string]*goi18n.Message),
		loc:      loc,
	}
	unmarshal := map[string]goi18n.UnmarshalFunc{"toml": toml.Unmarshal}
	for _, name := range names {
		buf, err := fs.ReadFile(locales, name)
		if err != nil {
			return nil, err
		}
		// Parse on our own rather than with b.b.LoadMessageFileFS, so the
		// language and the IDs are checked before go-i18n sees the messages.
		mf, err := goi18n.ParseMessageFileBytes(buf, name, unmarshal)
		if err != nil {
			return nil, fmt.Errorf("i18n: load %s: %w", name, err)
		}
		i := slices.Index(supported, mf.Tag) // exact: "no" or "nb-NO" in a file name is a mistake
		if i < 0 {
			return nil, fmt.Errorf("i18n: load %s: language %q is not one of %v", name, mf.Tag, Supported())
		}
		lang := supported[i].String()
		if b.messages[lang] == nil {
			b.messages[lang] = make(map[string]*goi18n.Message)
		}
		for _, m := range mf.Messages {
			// go-i18n would silently let the later file win; with two
			// engineers writing files, a clash is a bug.
			if _, dup := b.messages[lang][m.ID]; dup {
				return nil, fmt.Errorf("i18n: load %s: message %q is already defined in another %s file", name, m.ID, lang)
			}
			b.messages[lang][m.ID] = m
		}
		if err := b.b.AddMessages(supported[i], mf.Messages...); err != nil {
			return nil, fmt.Errorf("i18n: load %s: %w", name, err)
		}
		b.files = append(b.files, name)
	}
	for _, t := range supported {
		if len(b.messages[t.String()]) == 0 {
			return nil, fmt.Errorf("i18n: no messages for %s in locales/", t)
		}
		// Give go-i18n the exact tag we matched, so the language it uses is
		// always the one Localizer.Lang reports.
		b.localizers = append(b.localizers, goi18n.NewLocalizer(b.b, t.String()))
	}
	return b, nil
}

// Keys returns the sorted message IDs loaded for lang ("nb", "nn" or "en")
// from all of its files, or nil for a language we do not have.
func (b *Bundle) Keys(lang string) []string {
	return slices.Sorted(maps.Keys(b.messages[lang]))
}

// Localizer returns a Localizer for the first supported language in prefs
// (BCP 47 tags or raw Accept-Language header values, best first), or for
// Default if none matches. Empty and malformed values are skipped, so a
// handler can pass the user's saved language ("" if none) and the header
// as they are.
//
// Norwegian variants match: "no" and "nb-NO" give nb, "nn-NO" gives nn, and
// "da" alone gives nb. "sv-SE" and "" give Default.
func (b *Bundle) Localizer(prefs ...string) *Localizer {
	// Use the matcher's index: the returned tag carries extensions
	// ("en-GB" comes back as "en-u-rg-gbzzzz"), so its String is no code.
	_, i := language.MatchStrings(b.matcher, prefs...)
	return &Localizer{Lang: supported[i].String(), b: b, l: b.localizers[i]}
}

// Localizer translates messages and formats dates and times for one
// language. It is cheap to create and safe for concurrent use.
type Localizer struct {
	// Lang is the chosen language's code, "nb", "nn" or "en". Put it in
	// <html lang> and store it as the user's choice.
	Lang string

	b *Bundle
	l *goi18n.Localizer
}

// T returns message id in l's language, with data filled into its
// template ({{.Name}}). data may be nil.
//
// T never fails a request: a message missing in l's language comes from
// Default, and a message missing everywhere comes back as its ID. Either
// case logs a warning with the ID, never the data.
func (l *Localizer) T(id string, data map[string]any) string {
	if data != nil { // a nil map in an interface is not a nil interface
		return l.localize(&goi18n.LocalizeConfig{MessageID: id, TemplateData: data})
	}
	k := plainKey{l.Lang, id}
	if s, ok := l.b.plain.Load(k); ok {
		return s.(string)
	}
	s := l.localize(&goi18n.LocalizeConfig{MessageID: id})
	if _, known := l.b.messages[l.Lang][id]; known { // only catalog IDs: the memo stays bounded
		l.b.plain.Store(k, s)
	}
	return s
}

// N is T for messages with plural forms. n picks the form ("one" or "other"
// in nb, nn and en) and is available to the template as {{.Count}}. N does
// not modify data: it adds Count to a copy.
func (l *Localizer) N(id string, n int, data map[string]any) string {
	if data == nil {
		if _, known := l.b.messages[l.Lang][id]; known { // only catalog IDs
			return kept(&l.b.counted, countKey{l.Lang, id, n}, &l.b.nCounted, func() string { return l.count(id, n, nil) })
		}
	}
	return l.count(id, n, data)
}

// count is N, made afresh.
func (l *Localizer) count(id string, n int, data map[string]any) string {
	d := make(map[string]any, len(data)+1)
	maps.Copy(d, data)
	d["Count"] = n // go-i18n adds PluralCount only when TemplateData is nil
	return l.localize(&goi18n.LocalizeConfig{MessageID: id, TemplateData: d, PluralCount: n})
}

// localize never fails a request: l's language, then Default, then the ID.
func (l *Localizer) localize(cfg *goi18n.LocalizeConfig) string {
	s, err := l.l.Localize(cfg)
	if err == nil {
		return s
	}
	// Log only the ID and language: err can quote template data, and this
	// is child-welfare data.
	log := l.b.log
	if log == nil {
		log = slog.Default()
	}
	// s is non-empty when go-i18n could still render something useful: the
	// Default language's message (MessageNotFoundErr), or the "other" form
	// when the needed plural form is missing.
	if s != "" {
		log.Warn("i18n: message incomplete, using a fallback", "id", cfg.MessageID, "lang", l.Lang)
		return s
	}
	// The message exists in l's language but does not render (a broken
	// template): try Default before giving up.
	if l.l != l.b.localizers[0] {
		if s, err := l.b.localizers[0].Localize(cfg); err == nil {
			log.Warn("i18n: message failed, using default language", "id", cfg.MessageID, "lang", l.Lang)
			return s
		}
	}
	log.Warn("i18n: message failed, showing its ID", "id", cfg.MessageID, "lang", l.Lang)
	return cfg.MessageID
}
