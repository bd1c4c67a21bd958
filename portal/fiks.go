package portal

import (
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// This file is the portal's reading of the KS Fiks Innsyn barnevern format
// (JSON Schema draft 2019-09, schema/domain/barnevern in
// ks-no/fiks-innsyn-json-schema): Go types for a mappe and a journalpost,
// strict decoding, and validation that reports every problem at its JSON
// pointer. Everything the portal accepts is valid against the published
// schemas (the tests check the samples with a JSON Schema validator); the
// portal is stricter where it needs to be (see the "portal:" rules below).

// FieldError is one problem with a request, at a JSON pointer (RFC 6901)
// into the body ("" is the whole body), or at a query parameter.
type FieldError struct {
	Pointer   string `json:"pointer,omitempty"`
	Parameter string `json:"parameter,omitempty"`
	Detail    string `json:"detail"`
}

// InvalidError lists every problem found in a request. It is ErrInvalid.
type InvalidError struct {
	Problems []FieldError
}

func (e *InvalidError) Error() string {
	var b strings.Builder
	b.WriteString("invalid:")
	for _, p := range e.Problems {
		fmt.Fprintf(&b, " %s%s: %s;", p.Pointer, p.Parameter, p.Detail)
	}
	return b.String()
}

// Unwrap makes an InvalidError match ErrInvalid.
func (e *InvalidError) Unwrap() error { return ErrInvalid }

// invalidAt returns an InvalidError with one problem at pointer.
func invalidAt(pointer, format string, args ...any) error {
	return &InvalidError{Problems: []FieldError{{Pointer: pointer, Detail: fmt.Sprintf(format, args...)}}}
}

// FiksPart is a party of a case folder (part.v1.json). Fodselsnummer is
// only ever hashed; LogValue keeps it and the names out of logs.
type FiksPart struct {
	Rolle         *string `json:"rolle"`
	Fodselsnummer *string `json:"fodselsnummer"`
	Fornavn       *string `json:"fornavn"`
	Etternavn     *string `json:"etternavn"`
}

// LogValue shows only the role.
func (p FiksPart) LogValue() slog.Value { return slog.StringValue("part:" + deref(p.Rolle)) }

// Name is the party's full name.
func (p FiksPart) Name() string {
	return strings.TrimSpace(strings.TrimSpace(deref(p.Fornavn)) + " " + strings.TrimSpace(deref(p.Etternavn)))
}

// FiksMilepel is a milestone of a case folder (milepel.v1.json).
type FiksMilepel struct {
	Navn        *string `json:"navn"`
	Startdato   *string `json:"startdato"`
	Sluttdato   *string `json:"sluttdato"`
	Beskrivelse *string `json:"beskrivelse"`
}

// FiksTekster is a text in the languages the format knows.
type FiksTekster struct {
	Utseende   *string `json:"utseende"` // links only
	Bokmal     *string `json:"bokmal"`
	Nynorsk    *string `json:"nynorsk"`
	Engelsk    *string `json:"engelsk"`
	Nordsamisk *string `json:"nordsamisk"`
}

// FiksPredefinert is a predefined link or form type.
type FiksPredefinert struct {
	Type *string `json:"type"`
}

// FiksLenke is a link (lenke.v1.json). The portal accepts and ignores it.
type FiksLenke struct {
	Predefinert  *FiksPredefinert `json:"predefinert"`
	Egendefinert *FiksTekster     `json:"egendefinert"`
	URL          *string          `json:"url"`
}

// FiksEdialogSkjema is a reply form (edialog.skjema.v1.json). The portal
// accepts and ignores it: families write to the caseworker in the chat.
type FiksEdialogSkjema struct {
	Predefinert  *FiksPredefinert `json:"predefinert"`
	Egendefinert *FiksTekster     `json:"egendefinert"`
	EdialogID    *string          `json:"edialogId"`
}

// FiksMappe is a case folder indexed for one party (mappe.v1.json).
type FiksMappe struct {
	Tittel              *string              `json:"tittel"`
	MappeID             *string              `json:"mappeId"`
	SystemID            *string              `json:"systemId"`
	Saksaar             *int32               `json:"saksaar"`
	Sakssekvensnummer   *int32               `json:"sakssekvensnummer"`
	Beskrivelse         *string              `json:"beskrivelse"`
	AndreParter         []*FiksPart          `json:"andreParter"`
	MinPart             *FiksPart            `json:"minPart"`
	SistOppdatert       *string              `json:"sistOppdatert"`
	Avsluttet           *string              `json:"avsluttet"`
	Milepeler           []*FiksMilepel       `json:"milepeler"`
	NavaerendeMilepel   *FiksMilepel         `json:"navaerendeMilepel"`
	Saksdato            *string              `json:"saksdato"`
	Saksansvarlig       *string              `json:"saksansvarlig"`
	Lenker              []*FiksLenke         `json:"lenker"`
	EdialogSkjemaer     []*FiksEdialogSkjema `json:"edialogSkjemaer"`
	Organisasjonsnummer *string              `json:"organisasjonsnummer"`
}

// FiksMappeID identifies a journal post's folder (journalpost.v1.json
// #/definitions/MappeIdV1).
type FiksMappeID struct {
	MappeID           *string `json:"mappeId"`
	SystemID          *string `json:"systemId"`
	Saksaar           *int32  `json:"saksaar"`
	Sakssekvensnummer *int32  `json:"sakssekvensnummer"`
}

// FiksDokument is a document of a journal post (dokument.v1.json). Its
// bytes are uploaded separately.
type FiksDokument struct {
	Filnavn         *string `json:"filnavn"`
	Storrelse       *int64  `json:"storrelse"`
	MimeType        *string `json:"mimeType"`
	Tittel          *string `json:"tittel"`
	Lenke           *string `json:"lenke"`
	SvarUtFilnummer *int32  `json:"svarUtFilnummer"`
}

// FiksPerson and FiksOrganisasjon are correspondence parties; accepted
// and ignored (a person's national id here is never read).
type FiksPerson struct {
	Fodselsnummer *string `json:"fodselsnummer"`
	Fornavn       *string `json:"fornavn"`
	Etternavn     *string `json:"etternavn"`
}

// FiksOrganisasjon is an organisation a journal post was sent to or from.
type FiksOrganisasjon struct {
	Organisasjonsnummer *string `json:"organisasjonsnummer"`
	Navn                *string `json:"navn"`
	Kontaktperson       *string `json:"kontaktperson"`
}

// FiksKorrespondansepart is a sender or recipient (korrespondansepart.v1.json).
type FiksKorrespondansepart struct {
	Person                 *FiksPerson       `json:"person"`
	Organisasjon           *FiksOrganisasjon `json:"organisasjon"`
	Korrespondanseparttype *string           `json:"korrespondanseparttype"`
}

// FiksDelmal is a goal of a plan (delmal.v1.json).
type FiksDelmal struct {
	ID          *string `json:"id"`
	Beskrivelse *string `json:"beskrivelse"`
}

// FiksTiltaksplanDetaljer are the details of a plan (tiltaksplan.detaljer.v1.json).
type FiksTiltaksplanDetaljer struct {
	Tiltaksstatus *string       `json:"tiltaksstatus"`
	Startdato     *string       `json:"startdato"`
	Sluttdato     *string       `json:"sluttdato"`
	Delmal        []*FiksDelmal `json:"delmal"`
}

// FiksJournalpost is a journal post (journalpost.v1.json).
type FiksJournalpost struct {
	Tittel                   *string                   `json:"tittel"`
	ForelderMeldingID        *string                   `json:"forelderMeldingId"`
	Journalposttype          *string                   `json:"journalposttype"`
	MappeID                  *FiksMappeID              `json:"mappeId"`
	Journalpostnummer        *int32                    `json:"journalpostnummer"`
	SystemID                 *string                   `json:"systemId"`
	RegistreringsID          *string                   `json:"registreringsId"`
	Journaldato              *string                   `json:"journaldato"`
	DokumentetsDato          *string                   `json:"dokumentetsDato"`
	SvarUtForsendelseID      *string                   `json:"svarUtForsendelseId"`
	SamtykkeID               *string                   `json:"samtykkeId"`
	EksponertFor             []*FiksPart               `json:"eksponertFor"`
	Beskrivelse              *string                   `json:"beskrivelse"`
	Lenker                   []*FiksLenke              `json:"lenker"`
	Klagefrist               *string                   `json:"klagefrist"`
	Korrespondanseparter     []*FiksKorrespondansepart `json:"korrespondanseparter"`
	Dokumenter               []*FiksDokument           `json:"dokumenter"`
	Dokumenttype             *string                   `json:"dokumenttype"`
	InnsynsforesporselStatus *string                   `json:"innsynsforesporselStatus"`
	RelaterteJournalposter   []*string                 `json:"relaterteJournalposter"`
	Tidslinje                *bool                     `json:"tidslinje"`
	EdialogSkjemaer          []*FiksEdialogSkjema      `json:"edialogSkjemaer"`
	TiltaksplanDetaljer      *FiksTiltaksplanDetaljer  `json:"tiltaksplanDetaljer"`
}

// FiksInnsynsstatus is the body with which a case system answers a
// request for access: {"innsynsforesporselStatus": "GODKJENT"}.
type FiksInnsynsstatus struct {
	InnsynsforesporselStatus *string `json:"innsynsforesporselStatus"`
}

// Values of the format's enumerations.
var (
	fiksRoles = map[string]Role{
		"HOVEDPERSON": RoleYouth, // the child, as a party in their own case
		"MOR":         RoleMother,
		"FAR":         RoleFather,
		"MEDMOR":      RoleParent,
		"MEDFAR":      RoleParent,
		"VERGE":       RoleGuardian,
		// Foster parents are parties only when the case system says so
		// (by indexing a folder for them); they see what they are exposed to.
		"FOSTERFORELDER": RoleParent,
	}
	fiksDocTypes = map[string]DocKind{
		"VEDTAK":      DocDecision,
		"MOTEREFERAT": DocMinutes,
		"TILTAKSPLAN": DocPlan,
	}
	fiksRoleNames        = []string{"HOVEDPERSON", "MOR", "FAR", "MEDMOR", "MEDFAR", "VERGE", "FOSTERFORELDER"}
	fiksJournalposttyper = []string{"I", "U", "N", "X", "S"}
	fiksInnsynsstatuser  = []string{"IKKE_FORESPURT", "FORESPURT", "GODKJENT", "AVVIST"}
	// The schema's value has a trailing space; it is taken as published.
	fiksTiltaksstatuser      = []string{"AVSLUTTET", "AKTIV", "MANUELT_AVSLUTTET "}
	fiksKorrespondansetyper  = []string{"EA", "EM", "EK", "IA", "IM", "IK"}
	fiksLenkeTyper           = []string{"SVAR", "KLAGE"}
	fiksEdialogTyper         = []string{"SVAR", "KLAGE", "POST"}
	fiksLenkeUtseender       = []string{"KNAPP", "LENKE"}
	fiksPIDPattern           = regexp.MustCompile(`^[0-9]{11}$`)
	fiksOrgnrPattern         = regexp.MustCompile(`^[0-9]{9}$`)
	fiksUUIDPattern          = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)
	errFiksMilestoneName     = errors.New("unknown milestone")
	fiksMilestoneNamesSample = "Melding mottatt, Undersøkelse, Tiltak, Avsluttet"
)

// milestoneStatus maps a milestone's name to the case status it starts.
// Case systems name their stages differently, so the name is matched on
// its stem; a name that matches none is refused rather than guessed.
func milestoneStatus(navn string) (Status, error) {
	n := strings.ToLower(strings.TrimSpace(navn))
	// The stage named first wins over "avsluttet": "Undersøkelse avsluttet"
	// is the investigation (with its end date), "Sak avsluttet" the end.
	switch {
	case strings.Contains(n, "henlagt"):
		return StatusClosed, nil
	case strings.Contains(n, "undersøk"):
		return StatusInvestigation, nil
	case strings.Contains(n, "tiltak"), strings.Contains(n, "vedtak"), strings.Contains(n, "oppfølging"),
		strings.Contains(n, "omsorg"), strings.Contains(n, "fylkesnemnd"):
		return StatusMeasures, nil
	case strings.Contains(n, "avslutt"):
		return StatusClosed, nil
	case strings.Contains(n, "melding"), strings.Contains(n, "mottak"), strings.Contains(n, "mottatt"):
		return StatusReceived, nil
	}
	return "", errFiksMilestoneName
}

// decodeStrict decodes data into v: no unknown members (names match
// exactly, case included), no duplicate names, valid UTF-8, nothing after
// the value. A problem is reported at its JSON pointer.
func decodeStrict(data []byte, v any) error {
	err := json.Unmarshal(data, v, json.RejectUnknownMembers(true))
	if err == nil {
		return nil
	}
	var sem *json.SemanticError
	var syn *jsontext.SyntacticError
	switch {
	case errors.As(err, &syn):
		detail := "not valid JSON"
		if syn.Err != nil {
			detail = syn.Err.Error()
		}
		return invalidAt(string(syn.JSONPointer), "%s", detail)
	case errors.As(err, &sem):
		detail := "has the wrong type"
		switch {
		case errors.Is(sem.Err, json.ErrUnknownName):
			detail = "is not a field of this object"
		case sem.Err != nil:
			detail = "is not allowed here: " + sem.Err.Error()
		case sem.JSONKind != 0:
			detail = "must not be " + kindName(sem.JSONKind)
		}
		return invalidAt(string(sem.JSONPointer), "%s", detail)
	}
	return invalidAt("", "not valid JSON: %v", err)
}

func kindName(k jsontext.Kind) string {
	switch k {
	case 'n':
		return "null"
	case 'f', 't':
		return "a boolean"
	case '"':
		return "a string"
	case '0':
		return "a number"
	case '{':
		return "an object"
	case '[':
		return "an array"
	}
	return "this kind of value"
}

// checker collects every problem of a document, each at its pointer.
type checker struct {
	problems []FieldError
}

func (c *checker) add(ptr, format string, args ...any) {
	c.problems = append(c.problems, FieldError{Pointer: ptr, Detail: fmt.Sprintf(format, args...)})
}

func (c *checker) err() error {
	if len(c.problems) == 0 {
		return nil
	}
	return &InvalidError{Problems: c.problems}
}

// ptr joins a JSON pointer and reference tokens, escaped per RFC 6901.
func ptr(base string, tokens ...any) string {
	for _, t := range tokens {
		s := fmt.Sprint(t)
		s = strings.ReplaceAll(s, "~", "~0")
		s = strings.ReplaceAll(s, "/", "~1")
		base += "/" + s
	}
	return base
}

// notBlank checks a string.not.blank (required) or string.nullable.not.blank.
func (c *checker) notBlank(p string, s *string, required bool) {
	switch {
	case s == nil && required:
		c.add(p, "is required and must be a text that is not blank")
	case s != nil && strings.TrimSpace(*s) == "":
		c.add(p, "must not be blank")
	}
}

func (c *checker) enum(p string, s *string, required bool, values []string) {
	if s == nil {
		if required {
			c.add(p, "is required: one of %s", strings.Join(values, ", "))
		}
		return
	}
	for _, v := range values {
		if *s == v {
			return
		}
	}
	c.add(p, "must be one of %s", strings.Join(values, ", "))
}

func (c *checker) pattern(p string, s *string, re *regexp.Regexp, what string) {
	if s != nil && !re.MatchString(*s) {
		c.add(p, "must be %s", what)
	}
}

func (c *checker) intRange(p string, n *int32, lo, hi int64) {
	if n != nil && (int64(*n) < lo || int64(*n) > hi) {
		c.add(p, "must be between %d and %d", lo, hi)
	}
}

// dateTime checks an ISO 8601 date-time (RFC 3339, with a time zone).
func (c *checker) dateTime(p string, s *string, required bool) *time.Time {
	if s == nil {
		if required {
			c.add(p, "is required: a date-time such as 2026-03-16T14:10:11+01:00")
		}
		return nil
	}
	t, err := time.Parse(time.RFC3339Nano, *s)
	if err != nil {
		c.add(p, "must be a date-time with a time zone, such as 2026-03-16T14:10:11+01:00")
		return nil
	}
	t = t.UTC()
	return &t
}

func (c *checker) part(p string, x *FiksPart) {
	if x == nil {
		return
	}
	c.enum(ptr(p, "rolle"), x.Rolle, true, fiksRoleNames)
	c.pattern(ptr(p, "fodselsnummer"), x.Fodselsnummer, fiksPIDPattern, "11 digits")
	c.notBlank(ptr(p, "fornavn"), x.Fornavn, true)
	c.notBlank(ptr(p, "etternavn"), x.Etternavn, true)
}

func (c *checker) milepel(p string, m *FiksMilepel) {
	if m == nil {
		return
	}
	c.notBlank(ptr(p, "navn"), m.Navn, true)
	c.dateTime(ptr(p, "startdato"), m.Startdato, true)
	c.dateTime(ptr(p, "sluttdato"), m.Sluttdato, false)
}

// tekster checks that a custom text has at least one language.
func (c *checker) tekster(p string, t *FiksTekster, lenke bool) {
	if t == nil {
		return
	}
	if t.Utseende != nil && !lenke {
		c.add(ptr(p, "utseende"), "is not a field of this object")
	}
	if lenke {
		c.enum(ptr(p, "utseende"), t.Utseende, false, fiksLenkeUtseender)
	}
	some := false
	for _, l := range []struct {
		name string
		s    *string
	}{{"bokmal", t.Bokmal}, {"nynorsk", t.Nynorsk}, {"engelsk", t.Engelsk}, {"nordsamisk", t.Nordsamisk}} {
		c.notBlank(ptr(p, l.name), l.s, false)
		some = some || l.s != nil
	}
	if !some {
		c.add(p, "needs a text in at least one language (bokmal, nynorsk, engelsk, nordsamisk)")
	}
}

// oneOf checks the "predefinert or egendefinert, not both" rule of links
// and forms.
func (c *checker) oneOf(p string, pre *FiksPredefinert, own *FiksTekster, types []string, lenke bool) {
	if (pre == nil) == (own == nil) {
		c.add(p, "needs exactly one of predefinert and egendefinert")
	}
	if pre != nil {
		c.enum(ptr(p, "predefinert", "type"), pre.Type, true, types)
	}
	c.tekster(ptr(p, "egendefinert"), own, lenke)
}

func (c *checker) lenker(p string, ls []*FiksLenke) {
	for i, l := range ls {
		if l == nil {
			continue
		}
		c.oneOf(ptr(p, i), l.Predefinert, l.Egendefinert, fiksLenkeTyper, true)
		c.notBlank(ptr(p, i, "url"), l.URL, true)
	}
}

func (c *checker) skjemaer(p string, ss []*FiksEdialogSkjema) {
	for i, s := range ss {
		if s != nil {
			c.oneOf(ptr(p, i), s.Predefinert, s.Egendefinert, fiksEdialogTyper, false)
		}
	}
}

// ValidateMappe checks m against mappe.v1.json and against what the portal
// needs to make a case of it, and returns every problem found.
func ValidateMappe(m *FiksMappe) error {
	var c checker
	// The schema.
	c.notBlank("/tittel", m.Tittel, true)
	c.intRange("/saksaar", m.Saksaar, 0, 9999)
	c.intRange("/sakssekvensnummer", m.Sakssekvensnummer, 0, 1<<31-1)
	for i, p := range m.AndreParter {
		c.part(ptr("/andreParter", i), p)
	}
	c.part("/minPart", m.MinPart)
	c.dateTime("/sistOppdatert", m.SistOppdatert, false)
	c.dateTime("/avsluttet", m.Avsluttet, false)
	for i, ms := range m.Milepeler {
		c.milepel(ptr("/milepeler", i), ms)
	}
	c.milepel("/navaerendeMilepel", m.NavaerendeMilepel)
	c.dateTime("/saksdato", m.Saksdato, false)
	c.lenker("/lenker", m.Lenker)
	c.skjemaer("/edialogSkjemaer", m.EdialogSkjemaer)
	c.notBlank("/organisasjonsnummer", m.Organisasjonsnummer, true)
	c.pattern("/organisasjonsnummer", m.Organisasjonsnummer, fiksOrgnrPattern, "9 digits")
	if len(c.problems) > 0 {
		return c.err()
	}

	// The portal: it must recognise the case, the person and the child.
	if m.SystemID == nil || strings.TrimSpace(*m.SystemID) == "" {
		c.add("/systemId", "portal: is required; it identifies the case across the parties it is indexed for")
	}
	switch {
	case m.MinPart == nil:
		c.add("/minPart", "portal: is required; the folder is shown to this party")
	case m.MinPart.Fodselsnummer == nil:
		c.add("/minPart/fodselsnummer", "portal: is required; the party signs in with it")
	}
	child := false
	if m.MinPart != nil && deref(m.MinPart.Rolle) == "HOVEDPERSON" {
		child = true
	}
	for i, p := range m.AndreParter {
		if p == nil {
			continue
		}
		if deref(p.Rolle) == "HOVEDPERSON" {
			child = true
		}
		if m.MinPart != nil && m.MinPart.Fodselsnummer != nil && p.Fodselsnummer != nil &&
			*p.Fodselsnummer == *m.MinPart.Fodselsnummer {
			c.add(ptr("/andreParter", i), "must not contain the party in minPart")
		}
	}
	if !child {
		c.add("/andreParter", "portal: must name the child (rolle HOVEDPERSON), unless minPart is the child")
	}
	for i, ms := range m.Milepeler {
		if ms != nil {
			if _, err := milestoneStatus(*ms.Navn); err != nil {
				c.add(ptr("/milepeler", i, "navn"), "portal: unknown milestone; the name must say which stage it is, e.g. %s", fiksMilestoneNamesSample)
			}
		}
	}
	if ms := m.NavaerendeMilepel; ms != nil {
		if _, err := milestoneStatus(*ms.Navn); err != nil {
			c.add("/navaerendeMilepel/navn", "portal: unknown milestone; the name must say which stage it is, e.g. %s", fiksMilestoneNamesSample)
		}
	}
	return c.err()
}

// DecodeMappe decodes and validates a mappe message.
func DecodeMappe(data []byte) (*FiksMappe, error) {
	var m FiksMappe
	if err := decodeStrict(data, &m); err != nil {
		return nil, err
	}
	return &m, ValidateMappe(&m)
}

// ValidateJournalpost checks j against journalpost.v1.json and against
// what the portal needs. raw are the body's top-level members, for the
// rules that tell a null from a missing member.
func ValidateJournalpost(j *FiksJournalpost, raw map[string]jsontext.Value) error {
	var c checker
	c.notBlank("/tittel", j.Tittel, true)
	c.notBlank("/forelderMeldingId", j.ForelderMeldingID, true)
	c.pattern("/forelderMeldingId", j.ForelderMeldingID, fiksUUIDPattern, "a UUID")
	c.enum("/journalposttype", j.Journalposttype, false, fiksJournalposttyper)
	if m := j.MappeID; m != nil {
		c.intRange("/mappeId/saksaar", m.Saksaar, 0, 9999)
		c.intRange("/mappeId/sakssekvensnummer", m.Sakssekvensnummer, 0, 1<<31-1)
	}
	c.intRange("/journalpostnummer", j.Journalpostnummer, 0, 1<<31-1)
	c.dateTime("/journaldato", j.Journaldato, false)
	c.dateTime("/dokumentetsDato", j.DokumentetsDato, false)
	for i, p := range j.EksponertFor {
		c.part(ptr("/eksponertFor", i), p)
	}
	c.lenker("/lenker", j.Lenker)
	c.dateTime("/klagefrist", j.Klagefrist, false)
	for i, k := range j.Korrespondanseparter {
		if k == nil {
			continue
		}
		p := ptr("/korrespondanseparter", i)
		c.enum(ptr(p, "korrespondanseparttype"), k.Korrespondanseparttype, true, fiksKorrespondansetyper)
		if (k.Person == nil) == (k.Organisasjon == nil) {
			c.add(p, "needs exactly one of person and organisasjon")
		}
		if x := k.Person; x != nil {
			c.pattern(ptr(p, "person", "fodselsnummer"), x.Fodselsnummer, fiksPIDPattern, "11 digits")
			c.notBlank(ptr(p, "person", "fornavn"), x.Fornavn, true)
			c.notBlank(ptr(p, "person", "etternavn"), x.Etternavn, true)
		}
		if x := k.Organisasjon; x != nil {
			c.pattern(ptr(p, "organisasjon", "organisasjonsnummer"), x.Organisasjonsnummer, fiksOrgnrPattern, "9 digits")
			c.notBlank(ptr(p, "organisasjon", "navn"), x.Navn, true)
			c.notBlank(ptr(p, "organisasjon", "kontaktperson"), x.Kontaktperson, false)
		}
	}
	for i, d := range j.Dokumenter {
		if d == nil {
			continue
		}
		p := ptr("/dokumenter", i)
		c.notBlank(ptr(p, "filnavn"), d.Filnavn, true)
		c.notBlank(ptr(p, "mimeType"), d.MimeType, true)
		c.notBlank(ptr(p, "tittel"), d.Tittel, true)
		if d.SvarUtFilnummer != nil && *d.SvarUtFilnummer < 1 {
			c.add(ptr(p, "svarUtFilnummer"), "must be at least 1")
		}
	}
	if v, ok := raw["dokumenttype"]; ok && v.Kind() == 'n' {
		c.add("/dokumenttype", "must be one of VEDTAK, MOTEREFERAT, TILTAKSPLAN, or left out")
	}
	c.enum("/dokumenttype", j.Dokumenttype, false, []string{"VEDTAK", "MOTEREFERAT", "TILTAKSPLAN"})
	c.enum("/innsynsforesporselStatus", j.InnsynsforesporselStatus, false, fiksInnsynsstatuser)
	if len(j.RelaterteJournalposter) > 10 {
		c.add("/relaterteJournalposter", "must have at most 10 items")
	}
	for i, r := range j.RelaterteJournalposter {
		c.notBlank(ptr("/relaterteJournalposter", i), r, true)
	}
	c.skjemaer("/edialogSkjemaer", j.EdialogSkjemaer)
	if deref(j.InnsynsforesporselStatus) == "IKKE_FORESPURT" {
		if j.MappeID == nil {
			c.add("/mappeId", "is required when innsynsforesporselStatus is IKKE_FORESPURT")
		}
		c.notBlank("/systemId", j.SystemID, true)
	}
	if deref(j.Dokumenttype) == "TILTAKSPLAN" {
		t := j.TiltaksplanDetaljer
		if t == nil {
			c.add("/tiltaksplanDetaljer", "is required when dokumenttype is TILTAKSPLAN")
		} else {
			c.enum("/tiltaksplanDetaljer/tiltaksstatus", t.Tiltaksstatus, true, fiksTiltaksstatuser)
			c.dateTime("/tiltaksplanDetaljer/startdato", t.Startdato, true)
			c.dateTime("/tiltaksplanDetaljer/sluttdato", t.Sluttdato, true)
			if t.Delmal == nil {
				c.add("/tiltaksplanDetaljer/delmal", "is required: a list of goals")
			}
			for i, d := range t.Delmal {
				p := ptr("/tiltaksplanDetaljer/delmal", i)
				if d == nil {
					c.add(p, "must be an object")
					continue
				}
				c.notBlank(ptr(p, "id"), d.ID, true)
				c.notBlank(ptr(p, "beskrivelse"), d.Beskrivelse, true)
			}
		}
	} else if j.TiltaksplanDetaljer != nil {
		c.add("/tiltaksplanDetaljer", "must be null unless dokumenttype is TILTAKSPLAN")
	}
	if len(c.problems) > 0 {
		return c.err()
	}

	// The portal: it stores and serves PDF and plain text only, and needs
	// to know who may see the post.
	if j.EksponertFor == nil {
		c.add("/eksponertFor", "portal: is required; a party not in it does not see the post")
	}
	for i, d := range j.Dokumenter {
		p := ptr("/dokumenter", i)
		if d == nil {
			c.add(p, "portal: must be a document, not null")
			continue
		}
		if _, ok := portalContentType(*d.MimeType); !ok {
			c.add(ptr(p, "mimeType"), "portal: must be application/pdf or text/plain")
		}
		if d.Storrelse != nil && (*d.Storrelse < 1 || *d.Storrelse > maxDocumentSize) {
			c.add(ptr(p, "storrelse"), "portal: must be between 1 and %d bytes", maxDocumentSize)
		}
	}
	if len(j.Dokumenter) > maxDocumentsPerPost {
		c.add("/dokumenter", "portal: must have at most %d documents", maxDocumentsPerPost)
	}
	return c.err()
}

// DecodeJournalpost decodes and validates a journalpost message.
func DecodeJournalpost(data []byte) (*FiksJournalpost, error) {
	var j FiksJournalpost
	if err := decodeStrict(data, &j); err != nil {
		return nil, err
	}
	var raw map[string]jsontext.Value
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, invalidAt("", "must be a JSON object")
	}
	return &j, ValidateJournalpost(&j, raw)
}

// DecodeInnsynsstatus decodes the answer to a request for access. Only
// the answers GODKJENT and AVVIST (or FORESPURT, back to pending) are taken.
func DecodeInnsynsstatus(data []byte) (string, error) {
	var s FiksInnsynsstatus
	if err := decodeStrict(data, &s); err != nil {
		return "", err
	}
	var c checker
	c.enum("/innsynsforesporselStatus", s.InnsynsforesporselStatus, true, []string{"FORESPURT", "GODKJENT", "AVVIST"})
	if err := c.err(); err != nil {
		return "", err
	}
	return *s.InnsynsforesporselStatus, nil
}

// Limits on what a case system sends.
const (
	maxDocumentSize     = 25 << 20 // bytes per document
	maxDocumentsPerPost = 50
	maxJSONBody         = 1 << 20
)

// portalContentType is the stored content type for a mimeType the portal
// serves (documents.content_type allows exactly these).
func portalContentType(mimeType string) (string, bool) {
	base, _, _ := strings.Cut(strings.ToLower(strings.TrimSpace(mimeType)), ";")
	switch strings.TrimSpace(base) {
	case "application/pdf":
		return "application/pdf", true
	case "text/plain":
		return "text/plain; charset=utf-8", true
	}
	return "", false
}

// checkContent checks uploaded bytes against their declared type: a PDF
// starts like one; text is valid UTF-8.
func checkContent(contentType string, b []byte) error {
	switch contentType {
	case "application/pdf":
		if !strings.HasPrefix(string(b[:min(len(b), 5)]), "%PDF-") {
			return errors.New("the content is not a PDF")
		}
	default:
		if !utf8.Valid(b) {
			return errors.New("the text is not valid UTF-8")
		}
	}
	return nil
}

// validMeldingID reports whether id, from a path, is a UUID.
func validMeldingID(id string) bool { return fiksUUIDPattern.MatchString(id) }

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}
