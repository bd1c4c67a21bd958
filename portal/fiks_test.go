package portal

import (
	"bytes"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// fiksSchemaBase is where the KS Fiks Innsyn schemas say they live; the
// files are copied unchanged into testdata/fiks/schema (MIT licence).
const fiksSchemaBase = "https://api.fiks.ks.no/innsyn/schema/"

// fiksSchemas compiles the published mappe and journalpost schemas
// (draft 2019-09) from testdata, with a real JSON Schema validator.
func fiksSchemas(t *testing.T) (mappe, journalpost *jsonschema.Schema) {
	t.Helper()
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2019)
	root := "../testdata/fiks/schema"
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".json") {
			return err
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		doc, err := jsonschema.UnmarshalJSON(f)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		// Registered where the referring schemas look for it. (The eDialog
		// form's own $id names a "mappe" folder; it is found by its $id too.)
		return c.AddResource(fiksSchemaBase+filepath.ToSlash(rel), doc)
	})
	if err != nil {
		t.Fatal(err)
	}
	if mappe, err = c.Compile(fiksSchemaBase + "domain/barnevern/mappe.v1.json"); err != nil {
		t.Fatal(err)
	}
	if journalpost, err = c.Compile(fiksSchemaBase + "domain/barnevern/journalpost.v1.json"); err != nil {
		t.Fatal(err)
	}
	return mappe, journalpost
}

func schemaValid(t *testing.T, s *jsonschema.Schema, body []byte) error {
	t.Helper()
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
	if err != nil {
		return err
	}
	return s.Validate(doc)
}

// fiksSamples returns the sample messages: name -> body, by kind.
func fiksSamples(t *testing.T) (mapper, journalposter map[string][]byte) {
	t.Helper()
	mapper, journalposter = map[string][]byte{}, map[string][]byte{}
	for dir, m := range map[string]map[string][]byte{"mapper": mapper, "journalposter": journalposter} {
		names, err := filepath.Glob(filepath.Join("../testdata/fiks", dir, "*.json"))
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range names {
			b, err := os.ReadFile(n)
			if err != nil {
				t.Fatal(err)
			}
			m[path.Base(n)] = b
		}
	}
	if len(mapper) == 0 || len(journalposter) == 0 {
		t.Fatal("no sample files in testdata/fiks")
	}
	return mapper, journalposter
}

// Every sample is valid against the published schemas and accepted by the
// portal, and together they cover every kind and feature the portal reads.
func TestFiksSamples_validAgainstSchemas(t *testing.T) {
	ms, js := fiksSchemas(t)
	mapper, journalposter := fiksSamples(t)
	cases := map[string]bool{}
	for name, b := range mapper {
		if err := schemaValid(t, ms, b); err != nil {
			t.Errorf("%s: not valid against mappe.v1.json: %v", name, err)
		}
		m, err := DecodeMappe(b)
		if err != nil {
			t.Errorf("%s: refused by the portal: %v", name, err)
			continue
		}
		for _, p := range append([]*FiksPart{m.MinPart}, m.AndreParter...) {
			if *p.Rolle == "HOVEDPERSON" {
				cases[*p.Fornavn] = true
			}
		}
	}
	kinds := map[string]bool{}
	for name, b := range journalposter {
		if err := schemaValid(t, js, b); err != nil {
			t.Errorf("%s: not valid against journalpost.v1.json: %v", name, err)
		}
		j, err := DecodeJournalpost(b)
		if err != nil {
			t.Errorf("%s: refused by the portal: %v", name, err)
			continue
		}
		kinds[deref(j.Dokumenttype)] = true
		if j.Klagefrist != nil {
			kinds["klagefrist"] = true
		}
		if deref(j.InnsynsforesporselStatus) == "IKKE_FORESPURT" {
			kinds["withheld"] = true
		}
		if deref(j.Tidslinje) {
			kinds["tidslinje"] = true
		}
	}
	for _, child := range []string{"Emma", "Noah", "Lina", "Adam"} {
		if !cases[child] {
			t.Errorf("no sample case for %s", child)
		}
	}
	for _, k := range []string{"", "VEDTAK", "MOTEREFERAT", "TILTAKSPLAN", "klagefrist", "withheld", "tidslinje"} {
		if !kinds[k] {
			t.Errorf("no sample journalpost with %q", k)
		}
	}
}

// edit returns body with f applied to it as a generic JSON object.
func edit(t *testing.T, body []byte, f func(m map[string]any)) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatal(err)
	}
	f(m)
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func sample(t *testing.T, m map[string][]byte, prefix string) []byte {
	t.Helper()
	for name, b := range m {
		if strings.HasPrefix(name, prefix+".") {
			return b
		}
	}
	t.Fatalf("no sample %s", prefix)
	return nil
}

// Invalid bodies are refused with the offending field's JSON pointer. What
// the schema forbids, the validator forbids too (schemaToo); the portal's
// own rules go further.
func TestDecode_invalidPointsAtField(t *testing.T) {
	ms, js := fiksSchemas(t)
	mapper, journalposter := fiksSamples(t)
	sara := sample(t, mapper, "emma-sara")
	referat := sample(t, journalposter, "emma-referat-jonas")
	plan := sample(t, journalposter, "noah-tiltaksplan-noah")

	type tc struct {
		name      string
		mappe     bool
		body      []byte
		pointer   string
		schemaToo bool
	}
	raw := func(s string) []byte { return []byte(s) }
	tests := []tc{
		{"unknown field", true, edit(t, sara, func(m map[string]any) { m["ekstra"] = 1 }), "/ekstra", true},
		{"unknown nested field", true, edit(t, sara, func(m map[string]any) { m["minPart"].(map[string]any)["adresse"] = "x" }), "/minPart/adresse", true},
		{"field name in another case", true, edit(t, sara, func(m map[string]any) { m["Tittel"] = m["tittel"]; delete(m, "tittel") }), "/Tittel", true},
		{"duplicate key", true, raw(strings.Replace(string(sara), `"tittel"`, `"tittel": "x", "tittel"`, 1)), "/tittel", false},
		{"trailing data", true, append(append([]byte{}, sara...), []byte(` {}`)...), "", false},
		{"not JSON", true, raw(`{"tittel": `), "/tittel", true},
		{"array, not object", true, raw(`[]`), "", true},
		{"invalid UTF-8", true, raw("{\"tittel\": \"a\xff\"}"), "/tittel", false},
		{"blank title", true, edit(t, sara, func(m map[string]any) { m["tittel"] = "  " }), "/tittel", true},
		{"missing organisasjonsnummer", true, edit(t, sara, func(m map[string]any) { delete(m, "organisasjonsnummer") }), "/organisasjonsnummer", true},
		{"bad organisasjonsnummer", true, edit(t, sara, func(m map[string]any) { m["organisasjonsnummer"] = "12345" }), "/organisasjonsnummer", true},
		{"bad role", true, edit(t, sara, func(m map[string]any) { m["minPart"].(map[string]any)["rolle"] = "ONKEL" }), "/minPart/rolle", true},
		{"bad fødselsnummer", true, edit(t, sara, func(m map[string]any) { m["minPart"].(map[string]any)["fodselsnummer"] = "1234" }), "/minPart/fodselsnummer", true},
		{"wrong type in array item", true, edit(t, sara, func(m map[string]any) { m["andreParter"].([]any)[1].(map[string]any)["fornavn"] = 7 }), "/andreParter/1/fornavn", true},
		{"bad date", true, edit(t, sara, func(m map[string]any) { m["milepeler"].([]any)[0].(map[string]any)["startdato"] = "13.10.2026" }), "/milepeler/0/startdato", false},
		{"saksaar out of range", true, edit(t, sara, func(m map[string]any) { m["saksaar"] = 12026 }), "/saksaar", true},
		{"portal: no systemId", true, edit(t, sara, func(m map[string]any) { m["systemId"] = nil }), "/systemId", false},
		{"portal: no fødselsnummer", true, edit(t, sara, func(m map[string]any) { delete(m["minPart"].(map[string]any), "fodselsnummer") }), "/minPart/fodselsnummer", false},
		{"portal: unknown milestone", true, edit(t, sara, func(m map[string]any) { m["navaerendeMilepel"].(map[string]any)["navn"] = "Fase 7" }), "/navaerendeMilepel/navn", false},
		{"portal: no child", true, edit(t, sara, func(m map[string]any) { m["andreParter"] = m["andreParter"].([]any)[1:] }), "/andreParter", false},

		{"journalpost: no forelderMeldingId", false, edit(t, referat, func(m map[string]any) { delete(m, "forelderMeldingId") }), "/forelderMeldingId", true},
		{"journalpost: bad dokumenttype", false, edit(t, referat, func(m map[string]any) { m["dokumenttype"] = "BREV" }), "/dokumenttype", true},
		{"journalpost: null dokumenttype", false, edit(t, referat, func(m map[string]any) { m["dokumenttype"] = nil }), "/dokumenttype", true},
		{"journalpost: bad innsyn status", false, edit(t, referat, func(m map[string]any) { m["innsynsforesporselStatus"] = "KANSKJE" }), "/innsynsforesporselStatus", true},
		{"journalpost: IKKE_FORESPURT without mappeId", false, edit(t, referat, func(m map[string]any) { delete(m, "mappeId") }), "/mappeId", true},
		{"journalpost: document without title", false, edit(t, referat, func(m map[string]any) {
			delete(m["dokumenter"].([]any)[0].(map[string]any), "tittel")
		}), "/dokumenter/0/tittel", true},
		{"journalpost: plan without details", false, edit(t, plan, func(m map[string]any) { delete(m, "tiltaksplanDetaljer") }), "/tiltaksplanDetaljer", true},
		{"journalpost: details on a non-plan", false, edit(t, referat, func(m map[string]any) {
			m["tiltaksplanDetaljer"] = map[string]any{"tiltaksstatus": "AKTIV", "startdato": "2026-01-01T00:00:00Z", "sluttdato": "2026-02-01T00:00:00Z", "delmal": []any{}}
		}), "/tiltaksplanDetaljer", true},
		{"journalpost: plan goal without text", false, edit(t, plan, func(m map[string]any) {
			m["tiltaksplanDetaljer"].(map[string]any)["delmal"].([]any)[1].(map[string]any)["beskrivelse"] = ""
		}), "/tiltaksplanDetaljer/delmal/1/beskrivelse", true},
		{"journalpost: portal: no eksponertFor", false, edit(t, referat, func(m map[string]any) { delete(m, "eksponertFor") }), "/eksponertFor", false},
		{"journalpost: portal: a Word file", false, edit(t, referat, func(m map[string]any) {
			m["dokumenter"].([]any)[0].(map[string]any)["mimeType"] = "application/msword"
		}), "/dokumenter/0/mimeType", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var err error
			schema := js
			if tt.mappe {
				schema = ms
				_, err = DecodeMappe(tt.body)
			} else {
				_, err = DecodeJournalpost(tt.body)
			}
			var ie *InvalidError
			if !errors.As(err, &ie) || !errors.Is(err, ErrInvalid) {
				t.Fatalf("err = %v, want an InvalidError", err)
			}
			found := false
			for _, p := range ie.Problems {
				found = found || p.Pointer == tt.pointer
			}
			if !found {
				t.Errorf("problems %+v do not point at %q", ie.Problems, tt.pointer)
			}
			serr := schemaValid(t, schema, tt.body)
			if tt.schemaToo && serr == nil {
				t.Errorf("the schema accepts what the test says it refuses")
			}
			if !tt.schemaToo && strings.HasPrefix(tt.name, "portal") && serr != nil {
				t.Errorf("the schema refuses a body only the portal should: %v", serr)
			}
		})
	}
}

func TestMilestoneStatus(t *testing.T) {
	for _, tt := range []struct {
		navn string
		want Status
	}{
		{"Melding mottatt", StatusReceived}, {"Meldingsavklaring", StatusReceived},
		{"Undersøkelse", StatusInvestigation}, {"Undersøkelse pågår", StatusInvestigation},
		{"Tiltak", StatusMeasures}, {"Hjelpetiltak", StatusMeasures}, {"Vedtak fattet", StatusMeasures},
		{"Avsluttet", StatusClosed}, {"Sak avsluttet", StatusClosed}, {"Melding henlagt", StatusClosed},
		{"Undersøkelse avsluttet", StatusInvestigation},
	} {
		if got, err := milestoneStatus(tt.navn); err != nil || got != tt.want {
			t.Errorf("milestoneStatus(%q) = %q, %v; want %q", tt.navn, got, err, tt.want)
		}
	}
	if _, err := milestoneStatus("Fase 7"); err == nil {
		t.Error("an unknown milestone was guessed")
	}
}
