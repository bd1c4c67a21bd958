// Package portal is the Familieportal web application: routes, handlers,
// sessions and sign-in, the one access check, case insight (cases,
// timeline, documents), the audit log and the templates.
//
// It is the only package that imports Echo. Data flows one way: the HTTP
// edge authenticates and parses, Store.Authorize decides and audits, and the
// store reads only what the resulting Grant allows.
package portal

import (
	"errors"
	"time"
)

// Errors returned by stores and handlers. Server.handleError maps them to
// responses; anything else is an unexpected error and is logged.
var (
	// ErrNotFound means "does not exist" and "exists but is not yours"
	// alike, so that a guessed id reveals nothing.
	ErrNotFound = errors.New("portal: not found")
	// ErrUnauthorized means no one is signed in.
	ErrUnauthorized = errors.New("portal: not signed in")
	// ErrInvalid means the request itself is malformed.
	ErrInvalid = errors.New("portal: invalid request")
)

// Kind is what sort of user someone is.
type Kind string

// The kinds of user.
const (
	KindCitizen    Kind = "citizen"    // a parent or youth, signed in with ID-porten
	KindCaseworker Kind = "caseworker" // staff assigned to cases
	KindTeamLead   Kind = "teamlead"   // staff who see all cases of their team
)

// Staff reports whether k works at the office.
func (k Kind) Staff() bool { return k == KindCaseworker || k == KindTeamLead }

// User is a person who can sign in.
type User struct {
	ID     string `db:"id"`
	Kind   Kind   `db:"kind"`
	Name   string `db:"name"`
	Lang   string `db:"lang"` // saved language, "" if never chosen
	TeamID string `db:"team_id"`
	Unit   string `db:"unit"`
}

// Role is a party's relation to the child in a case.
type Role string

// Party roles. A youth (15+, or granted party rights) is a party in their own case.
const (
	RoleMother   Role = "mother"
	RoleFather   Role = "father"
	RoleParent   Role = "parent"
	RoleGuardian Role = "guardian"
	RoleYouth    Role = "youth"
)

// Status is where a case is.
type Status string

// Case statuses, in the order a case moves through them.
const (
	StatusReceived      Status = "received"
	StatusInvestigation Status = "investigation"
	StatusMeasures      Status = "measures"
	StatusClosed        Status = "closed"
)

// Case is what a viewer may know about a child welfare case.
type Case struct {
	ID               string     `db:"id"`
	Reference        string     `db:"reference"`
	ChildName        string     `db:"child_name"`
	Status           Status     `db:"status"`
	OpenedAt         time.Time  `db:"opened_at"`
	InvestigationDue *time.Time `db:"investigation_due"`
	ClosedAt         *time.Time `db:"closed_at"`
	OfficeID         string     `db:"office_id"`
}

// Office is a child welfare service (barneverntjeneste).
type Office struct {
	ID             string `db:"id"`
	Name           string `db:"name"`
	Municipality   string `db:"municipality"`
	Phone          string `db:"phone"`
	EmergencyPhone string `db:"emergency_phone"`
}

// DocKind is what sort of document something is.
type DocKind string

// Document kinds.
const (
	DocDecision DocKind = "decision" // vedtak
	DocPlan     DocKind = "plan"     // tiltaksplan
	DocReport   DocKind = "report"
	DocMinutes  DocKind = "minutes"
	DocLetter   DocKind = "letter"
)

// Document is a published case document, without its content.
type Document struct {
	ID          string     `db:"id"`
	CaseID      string     `db:"case_id"`
	Title       string     `db:"title"`
	Kind        DocKind    `db:"kind"`
	PublishedAt time.Time  `db:"published_at"`
	AppealDue   *time.Time `db:"appeal_due"`
	Filename    string     `db:"filename"`
	ContentType string     `db:"content_type"`
	Size        int64      `db:"size"`
	SHA256      string     `db:"sha256"`
	// New is true until the viewer first opens the document.
	New bool `db:"is_new"`
}

// Event is one entry on a case's timeline.
type Event struct {
	ID         string    `db:"id"`
	Kind       string    `db:"kind"`
	OccurredAt time.Time `db:"occurred_at"`
	Note       string    `db:"note"`
}
