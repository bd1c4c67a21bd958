package messaging

import (
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestDecodeFrame(t *testing.T) {
	tests := []struct {
		name     string
		raw      string
		wantType string    // on success
		wantCode ErrorCode // on failure
		clientID string
	}{
		{"send", `{"type":"send","conversation":"c1","client_id":"id-1","body":"hei"}`, "send", "", ""},
		{"send, keys in any order", `{"body":"hei","client_id":"id-1","conversation":"c1","type":"send"}`, "send", "", ""},
		{"sync", `{"type":"sync","cursors":{"c1":3,"c2":0}}`, "sync", "", ""},
		{"sync, nothing to sync", `{"type":"sync","cursors":{}}`, "sync", "", ""},
		{"read", `{"type":"read","conversation":"c1","seq":4}`, "read", "", ""},
		{"typing", " \n{\"type\":\"typing\",\"conversation\":\"c1\"}\n ", "typing", "", ""},

		{"empty", ``, "", CodeInvalid, ""},
		{"null", `null`, "", CodeInvalid, ""},
		{"string", `"send"`, "", CodeInvalid, ""},
		{"unknown type", `{"type":"hello"}`, "", CodeInvalid, ""},
		{"type in other case", `{"type":"SEND","conversation":"c1","client_id":"id-1","body":"hei"}`, "", CodeInvalid, ""},
		{"key in other case", `{"type":"send","Conversation":"c1","client_id":"id-1","body":"hei"}`, "", CodeInvalid, "id-1"},
		{"duplicate top-level key", `{"type":"send","conversation":"c2","conversation":"c1","client_id":"id-1","body":"hei"}`, "", CodeInvalid, ""},
		{"duplicate type", `{"type":"typing","type":"send","conversation":"c1","client_id":"id-1","body":"hei"}`, "", CodeInvalid, ""},
		{"duplicate nested key", `{"type":"sync","cursors":{"c1":9,"c1":0}}`, "", CodeInvalid, ""},
		{"trailing object", `{"type":"typing","conversation":"c1"}{"type":"typing","conversation":"c1"}`, "", CodeInvalid, ""},
		{"unterminated", `{"type":"typing","conversation":"c1"`, "", CodeInvalid, ""},
		{"extra field", `{"type":"read","conversation":"c1","seq":4,"by":"kari"}`, "", CodeInvalid, ""},
		{"missing field", `{"type":"read","conversation":"c1"}`, "", CodeInvalid, ""},
		{"null seq", `{"type":"read","conversation":"c1","seq":null}`, "", CodeInvalid, ""},
		{"string seq", `{"type":"read","conversation":"c1","seq":"4"}`, "", CodeInvalid, ""},
		{"seq too big for int64", `{"type":"read","conversation":"c1","seq":9223372036854775808}`, "", CodeInvalid, ""},
		{"null cursors", `{"type":"sync","cursors":null}`, "", CodeInvalid, ""},
		{"conversation with a space", `{"type":"typing","conversation":"c 1"}`, "", CodeInvalid, ""},
		{"conversation not a string", `{"type":"typing","conversation":1}`, "", CodeInvalid, ""},
		{"invalid UTF-8", "{\"type\":\"typing\",\"conversation\":\"c\xff\"}", "", CodeInvalid, ""},
		{"body with a bad type keeps the client id", `{"type":"send","conversation":"c1","client_id":"id-2","body":[]}`, "", CodeInvalid, "id-2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in, ferr := decodeFrame([]byte(tt.raw))
			if tt.wantCode == "" {
				if ferr != nil || in.Type != tt.wantType {
					t.Errorf("decodeFrame(%s) = %+v, %v; want type %s", tt.raw, in, ferr, tt.wantType)
				}
				return
			}
			if ferr == nil {
				t.Fatalf("decodeFrame(%s) = %+v, want error %s", tt.raw, in, tt.wantCode)
			}
			if ferr.code != tt.wantCode || ferr.clientID != tt.clientID {
				t.Errorf("decodeFrame(%s) error = %v (client id %q), want %s (client id %q)", tt.raw, ferr, ferr.clientID, tt.wantCode, tt.clientID)
			}
		})
	}
}

// FuzzDecodeFrame checks that no input panics and that whatever decodes
// satisfies the frame's rules.
func FuzzDecodeFrame(f *testing.F) {
	for _, s := range []string{
		`{"type":"send","conversation":"c1","client_id":"id-1","body":"hei"}`,
		`{"type":"sync","cursors":{"c1":3}}`,
		`{"type":"read","conversation":"c1","seq":4}`,
		`{"type":"typing","conversation":"c1"}`,
		`{"type":"sync","cursors":{"a":{"b":[1,{"c":2}]}}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		in, ferr := decodeFrame(raw)
		if ferr != nil {
			return
		}
		switch in.Type {
		case typeSend:
			if in.Body == nil || !validClientID(in.ClientID) || !validID(in.Conversation) {
				t.Errorf("accepted a bad send: %s", raw)
			}
		case typeSync:
			if in.Cursors == nil {
				t.Errorf("accepted sync without cursors: %s", raw)
			}
		case typeRead:
			if in.Seq == nil || *in.Seq < 0 {
				t.Errorf("accepted a bad read: %s", raw)
			}
		case typeTyping:
		default:
			t.Errorf("accepted type %q", in.Type)
		}
	})
}

func TestCleanBody(t *testing.T) {
	tests := []struct {
		name, in, want string
		err            error
	}{
		{"plain", "Hei Kari!", "Hei Kari!", nil},
		{"Norwegian and emoji", "Blåbærsyltetøy 👍", "Blåbærsyltetøy 👍", nil},
		{"newlines and tabs", "a\n\tb", "a\n\tb", nil},
		{"CRLF becomes LF", "a\r\nb\r\n", "a\nb\n", nil},
		{"markup is text", "<script>alert(1)</script>", "<script>alert(1)</script>", nil},
		{"exactly the character limit", strings.Repeat("a", MaxBodyRunes), strings.Repeat("a", MaxBodyRunes), nil},
		{"empty", "", "", ErrInvalidMessage},
		{"white space only", " \n\t ", "", ErrInvalidMessage},
		{"NUL", "a\x00", "", ErrInvalidMessage},
		{"bell", "a\a", "", ErrInvalidMessage},
		{"escape", "\x1b[2J", "", ErrInvalidMessage},
		{"lone CR", "a\rb", "", ErrInvalidMessage},
		{"DEL", "a\x7f", "", ErrInvalidMessage},
		{"C1 (NEL)", "a\u0085", "", ErrInvalidMessage},
		{"invalid UTF-8", "a\xffb", "", ErrInvalidMessage},
		{"one character too many", strings.Repeat("a", MaxBodyRunes+1), "", ErrTooLarge},
		{"too many bytes, few characters", strings.Repeat("😀", MaxBodyBytes/4+1), "", ErrTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := CleanBody(tt.in)
			if !errors.Is(err, tt.err) || (err == nil && got != tt.want) {
				t.Errorf("CleanBody(%q) = %q, %v; want %q, %v", tt.in, got, err, tt.want, tt.err)
			}
		})
	}
}

func TestOriginChecker(t *testing.T) {
	check, err := OriginChecker([]string{"https://Portal.Example:443/", "http://localhost:8080", "http://[::1]"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		origins []string
		want    bool
	}{
		{[]string{"https://portal.example"}, true},
		{[]string{"http://localhost:8080"}, true},
		{[]string{"http://[::1]"}, true},
		{nil, false},
		{[]string{""}, false},
		{[]string{"null"}, false},
		{[]string{"http://portal.example"}, false},
		{[]string{"https://portal.example:8443"}, false},
		{[]string{"https://portal.example.evil.example"}, false},
		{[]string{"https://evil.example"}, false},
		{[]string{"http://localhost"}, false},
		{[]string{"https://portal.example", "https://portal.example"}, false},
	}
	for _, tt := range tests {
		r := httptest.NewRequest("GET", "/ws", nil)
		for _, o := range tt.origins {
			r.Header.Add("Origin", o)
		}
		if got := check(r); got != tt.want {
			t.Errorf("check(Origin: %q) = %v, want %v", tt.origins, got, tt.want)
		}
	}
}

func TestBucket(t *testing.T) {
	t0 := time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)
	b := newBucket(3, time.Second)
	if !b.full(t0) {
		t.Errorf("a new bucket is not full")
	}
	for i := range 3 {
		if !b.allow(t0) {
			t.Fatalf("allow #%d refused within the burst", i+1)
		}
	}
	if b.allow(t0) {
		t.Errorf("allow beyond the burst")
	}
	if b.allow(t0.Add(999 * time.Millisecond)) {
		t.Errorf("allow before a token is back")
	}
	if !b.allow(t0.Add(time.Second)) {
		t.Errorf("refused after a token is back")
	}
	if b.full(t0.Add(3 * time.Second)) {
		t.Errorf("full too early")
	}
	if !b.full(t0.Add(4 * time.Second)) {
		t.Errorf("not full after the whole refill")
	}
}
