package messaging

// This file is the wire protocol, version 1 (docs/protocol.md): the frames
// in both directions, strict decoding of what clients send, and the limits
// on message text. Nothing here does I/O.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"
)

// ProtocolVersion is the version of the websocket protocol this package
// speaks. It is sent in the hello frame; a change that an existing client
// could misread gets a new version.
const ProtocolVersion = 1

// Limits on message text. Both apply: the character limit is what people
// see, the byte limit bounds storage and frames whatever the script.
const (
	MaxBodyRunes = 4000  // characters (Unicode code points) per message
	MaxBodyBytes = 12000 // bytes of UTF-8 per message
	// MaxClientIDLen bounds a client id, in bytes. Client ids are UUIDs in
	// practice; any 1 to MaxClientIDLen characters from [A-Za-z0-9_-] are
	// accepted.
	MaxClientIDLen = 64
	// MaxIDLen bounds a conversation id in a frame, in bytes. Longer ids
	// cannot exist and are refused as invalid before any lookup.
	MaxIDLen = 128
	// maxFrameBytes is the read limit of a socket. It leaves room for a
	// body of MaxBodyRunes characters even when a client escapes every
	// character as \uXXXX, and for a sync frame with many cursors. A larger
	// frame closes the socket with 1009 (message too big).
	maxFrameBytes = 64 << 10
	// maxSyncCursors bounds the conversations in one sync frame.
	maxSyncCursors = 2000
	// maxJSONDepth bounds nesting in a client frame (the deepest valid
	// frame, sync, has depth 2).
	maxJSONDepth = 4
)

// ErrorCode is the code of an error frame. Clients act on the code; the
// frame's message is for people.
type ErrorCode string

// The error codes of protocol v1.
const (
	CodeNotFound    ErrorCode = "not_found"    // no such conversation, or not yours
	CodeInvalid     ErrorCode = "invalid"      // malformed or unknown frame, bad field
	CodeTooLarge    ErrorCode = "too_large"    // body over MaxBodyRunes or MaxBodyBytes
	CodeRateLimited ErrorCode = "rate_limited" // slow down, then retry
	CodeUnavailable ErrorCode = "unavailable"  // not stored; retry with the same client_id
)

// MessageID is the i18n message ID of the text sent with code.
func (c ErrorCode) MessageID() string { return "chat_error_" + string(c) }

// MessageIDResync is the i18n message ID of the text sent with a
// resync_required frame.
const MessageIDResync = "chat_error_resync"

// MessageIDs lists every i18n message ID this package asks
// Participant.Translate for, so that a test in the portal can check that
// each catalog has them.
func MessageIDs() []string {
	return []string{
		CodeNotFound.MessageID(),
		CodeInvalid.MessageID(),
		CodeTooLarge.MessageID(),
		CodeRateLimited.MessageID(),
		CodeUnavailable.MessageID(),
		MessageIDResync,
	}
}

// codeOf maps an error from the service to the code a client sees.
// Anything unexpected is "unavailable": nothing was stored, and a retry with
// the same client id is always safe.
func codeOf(err error) ErrorCode {
	switch {
	case errors.Is(err, ErrNotFound):
		return CodeNotFound
	case errors.Is(err, ErrTooLarge):
		return CodeTooLarge
	case errors.Is(err, ErrInvalidMessage):
		return CodeInvalid
	case errors.Is(err, ErrRateLimited):
		return CodeRateLimited
	default:
		return CodeUnavailable
	}
}

// Frame types of protocol v1.
const (
	typeHello          = "hello"
	typeSend           = "send"
	typeSync           = "sync"
	typeSynced         = "synced"
	typeRead           = "read"
	typeTyping         = "typing"
	typeAck            = "ack"
	typeMessage        = "message"
	typeError          = "error"
	typeResyncRequired = "resync_required"
)

// Server → client frames. Field names and order are the contract in
// docs/protocol.md.

type wireUser struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	Role Role   `json:"role"`
}

type wireConversation struct {
	ID      string `json:"id"`
	Case    string `json:"case"`
	Title   string `json:"title"`
	LastSeq int64  `json:"last_seq"`
	Unread  int    `json:"unread"`
}

type helloFrame struct {
	Type          string             `json:"type"`
	V             int                `json:"v"`
	User          wireUser           `json:"user"`
	Conversations []wireConversation `json:"conversations"`
}

type ackFrame struct {
	Type         string `json:"type"`
	ClientID     string `json:"client_id"`
	Conversation string `json:"conversation"`
	ID           string `json:"id"`
	Seq          int64  `json:"seq"`
	At           string `json:"at"`
}

type messageFrame struct {
	Type         string      `json:"type"`
	Conversation string      `json:"conversation"`
	ID           string      `json:"id"`
	Seq          int64       `json:"seq"`
	Sender       wireUser    `json:"sender"`
	Kind         MessageKind `json:"kind"`
	Body         string      `json:"body"`
	At           string      `json:"at"`
}

type readFrame struct {
	Type         string   `json:"type"`
	Conversation string   `json:"conversation"`
	Seq          int64    `json:"seq"`
	By           wireUser `json:"by"`
}

type typingFrame struct {
	Type         string   `json:"type"`
	Conversation string   `json:"conversation"`
	By           wireUser `json:"by"`
}

type errorFrame struct {
	Type         string    `json:"type"`
	Code         ErrorCode `json:"code"`
	ClientID     string    `json:"client_id,omitempty"`
	Conversation string    `json:"conversation,omitempty"`
	Message      string    `json:"message"`
}

type resyncFrame struct {
	Type         string `json:"type"`
	Conversation string `json:"conversation"`
	Message      string `json:"message"`
}

type syncedFrame struct {
	Type string `json:"type"`
}

// formatAt formats an instant the way every frame carries it: RFC 3339,
// UTC, milliseconds.
func formatAt(t time.Time) string {
	return t.UTC().Format("2006-01-02T15:04:05.000Z07:00")
}

func newMessageFrame(m Message) messageFrame {
	return messageFrame{
		Type:         typeMessage,
		Conversation: m.ConversationID,
		ID:           m.ID,
		Seq:          m.Seq,
		Sender:       wireUser{ID: m.SenderID, Name: m.SenderName, Role: m.SenderRole},
		Kind:         m.Kind,
		Body:         m.Body,
		At:           formatAt(m.CreatedAt),
	}
}

func newAckFrame(m Message) ackFrame {
	return ackFrame{
		Type:         typeAck,
		ClientID:     m.ClientID,
		Conversation: m.ConversationID,
		ID:           m.ID,
		Seq:          m.Seq,
		At:           formatAt(m.CreatedAt),
	}
}

func userOf(p Participant) wireUser {
	return wireUser{ID: p.UserID, Name: p.Name, Role: p.Role}
}

// encode marshals a server frame. The frames are plain structs of strings
// and numbers, so marshalling cannot fail; a failure is a programming error.
func encode(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("messaging: encode %T: %v", v, err))
	}
	return b
}

// Client → server.

// inFrame is any client frame. Which fields a type needs is in frameFields;
// pointers tell a missing field from a zero value.
type inFrame struct {
	Type         string           `json:"type"`
	Conversation string           `json:"conversation"`
	ClientID     string           `json:"client_id"`
	Body         *string          `json:"body"`
	Cursors      map[string]int64 `json:"cursors"`
	Seq          *int64           `json:"seq"`
}

// frameFields is, per frame type, the exact set of keys the frame must have:
// every one present, no other, in exactly this spelling.
var frameFields = map[string][]string{
	typeSend:   {"type", "conversation", "client_id", "body"},
	typeSync:   {"type", "cursors"},
	typeRead:   {"type", "conversation", "seq"},
	typeTyping: {"type", "conversation"},
}

// frameError is why a client frame was refused, with what the error frame
// can echo back.
type frameError struct {
	code         ErrorCode
	clientID     string
	conversation string
	reason       string // for tests and debugging; never sent
}

func (e *frameError) Error() string { return string(e.code) + ": " + e.reason }

func invalid(format string, args ...any) *frameError {
	return &frameError{code: CodeInvalid, reason: fmt.Sprintf(format, args...)}
}

// decodeFrame parses one client frame strictly.
//
// encoding/json alone is too lenient for a protocol that carries ids the
// access check depends on: it matches keys case-insensitively, keeps the
// last of duplicate keys, ignores trailing data when used as a stream, and
// replaces invalid UTF-8 silently. So the raw bytes must be valid UTF-8,
// the frame is walked token by token first (one JSON object, no duplicate
// key at any depth, nothing after it), and its keys must be exactly those of
// its type. Only then is it decoded, with unknown fields disallowed as a
// second guard.
func decodeFrame(raw []byte) (inFrame, *frameError) {
	var in inFrame
	if !utf8.Valid(raw) {
		return in, invalid("frame is not valid UTF-8")
	}
	keys, err := objectKeys(raw)
	if err != nil {
		return in, invalid("%v", err)
	}
	// Learn the type and, for a send, the client id before anything else can
	// fail, so the error can name the message the client is waiting on.
	var head struct {
		Type     string `json:"type"`
		ClientID string `json:"client_id"`
	}
	var fields map[string]json.RawMessage
	_ = json.Unmarshal(raw, &fields) // cannot fail after objectKeys
	_ = json.Unmarshal(fields["type"], &head.Type)
	if head.Type == typeSend {
		_ = json.Unmarshal(fields["client_id"], &head.ClientID)
	}
	fe := func(code ErrorCode, reason string) *frameError {
		e := &frameError{code: code, reason: reason}
		if validClientID(head.ClientID) {
			e.clientID = head.ClientID
		}
		return e
	}
	want, ok := frameFields[head.Type]
	if !ok {
		return in, fe(CodeInvalid, "unknown frame type")
	}
	if len(keys) != len(want) {
		return in, fe(CodeInvalid, "missing or extra fields")
	}
	for _, k := range want {
		if !keys[k] {
			return in, fe(CodeInvalid, "missing field "+k)
		}
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields() // a second guard; the key check above is exact
	if err := dec.Decode(&in); err != nil {
		return in, fe(CodeInvalid, "decode: "+err.Error())
	}
	switch in.Type {
	case typeSend:
		if !validClientID(in.ClientID) {
			return in, fe(CodeInvalid, "bad client_id")
		}
		if in.Body == nil {
			return in, fe(CodeInvalid, "body is null")
		}
	case typeSync:
		if in.Cursors == nil {
			return in, fe(CodeInvalid, "cursors is null")
		}
		if len(in.Cursors) > maxSyncCursors {
			return in, fe(CodeInvalid, "too many cursors")
		}
		for id, seq := range in.Cursors {
			if !validID(id) {
				return in, fe(CodeInvalid, "bad conversation id in cursors")
			}
			if seq < 0 {
				return in, &frameError{code: CodeInvalid, conversation: id, reason: "negative cursor"}
			}
		}
	case typeRead:
		if in.Seq == nil || *in.Seq < 0 {
			return in, fe(CodeInvalid, "bad seq")
		}
	}
	if in.Type != typeSync && !validID(in.Conversation) {
		return in, fe(CodeInvalid, "bad conversation id")
	}
	return in, nil
}

// objectKeys checks that raw is exactly one JSON object with no duplicate
// key at any depth and nothing but white space after it, and returns its
// top-level keys.
func objectKeys(raw []byte) (map[string]bool, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return nil, fmt.Errorf("not JSON: %w", err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, errors.New("frame is not a JSON object")
	}
	keys, err := walkObject(dec, 1)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("trailing data after the frame")
	}
	return keys, nil
}

// walkObject consumes an object whose '{' has been read.
func walkObject(dec *json.Decoder, depth int) (map[string]bool, error) {
	if depth > maxJSONDepth {
		return nil, errors.New("frame nested too deeply")
	}
	keys := make(map[string]bool)
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		k, ok := tok.(string)
		if !ok {
			return nil, errors.New("object key is not a string")
		}
		if keys[k] {
			return nil, fmt.Errorf("duplicate key %q", k)
		}
		keys[k] = true
		if err := walkValue(dec, depth); err != nil {
			return nil, err
		}
	}
	if _, err := dec.Token(); err != nil { // '}'
		return nil, err
	}
	return keys, nil
}

// walkValue consumes one value of any kind.
func walkValue(dec *json.Decoder, depth int) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	switch tok {
	case json.Delim('{'):
		_, err := walkObject(dec, depth+1)
		return err
	case json.Delim('['):
		if depth+1 > maxJSONDepth {
			return errors.New("frame nested too deeply")
		}
		for dec.More() {
			if err := walkValue(dec, depth+1); err != nil {
				return err
			}
		}
		_, err := dec.Token() // ']'
		return err
	}
	return nil
}

// validClientID reports whether s can be a client id: 1 to MaxClientIDLen
// characters from [A-Za-z0-9_-] (a UUID in practice).
func validClientID(s string) bool {
	if s == "" || len(s) > MaxClientIDLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// validID reports whether s can be a conversation id: non-empty, at most
// MaxIDLen bytes, printable ASCII without spaces. Ids are opaque; this only
// keeps junk out of the access check and the audit log.
func validID(s string) bool {
	if s == "" || len(s) > MaxIDLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f {
			return false
		}
	}
	return true
}

// CleanBody checks a message body and returns it as it will be stored.
//
// Text is stored as given, with one normalisation: CRLF line endings (what
// an HTML form submits) become LF, so the same text typed in the page and
// posted without JavaScript is stored the same way. It returns an error
// wrapping ErrInvalidMessage for invalid UTF-8, a body of only white space,
// or control characters other than newline and tab (C0, DEL and C1, a lone
// CR included), and ErrTooLarge for more than MaxBodyRunes characters or
// MaxBodyBytes bytes.
func CleanBody(body string) (string, error) {
	if !utf8.ValidString(body) {
		return "", fmt.Errorf("%w: body is not valid UTF-8", ErrInvalidMessage)
	}
	body = strings.ReplaceAll(body, "\r\n", "\n")
	if len(body) > MaxBodyBytes || utf8.RuneCountInString(body) > MaxBodyRunes {
		return "", ErrTooLarge
	}
	if strings.TrimSpace(body) == "" {
		return "", fmt.Errorf("%w: body is empty", ErrInvalidMessage)
	}
	for _, r := range body {
		if r == '\n' || r == '\t' {
			continue
		}
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r <= 0x9f) {
			return "", fmt.Errorf("%w: control character U+%04X in body", ErrInvalidMessage, r)
		}
	}
	return body, nil
}
