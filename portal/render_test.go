package portal

import (
	"testing"

	"familieportal/messaging"
)

func TestAcceptsGzip(t *testing.T) {
	tests := []struct {
		name, header string
		want         bool
	}{
		{"no header asks for identity only", "", false},
		{"plain", "gzip", true},
		{"coding in any case", "GZip", true},
		{"among others", "gzip, deflate, br", true},
		{"with a lower weight", "br;q=1.0, gzip;q=0.8", true},
		{"not listed", "deflate, br", false},
		{"only identity", "identity", false},
		{"identity refused, gzip listed", "identity;q=0, gzip", true},
		{"a longer name is another coding", "gzipx, gzip2", false},
		{"empty list members", ",, gzip ,,", true},

		{"zero", "gzip;q=0", false},
		{"zero with three decimals", "gzip;q=0.000", false},
		{"zero with a bare point", "gzip;q=0.", false},
		{"Q in upper case, space after ;", "gzip; Q=0.0", false},
		{"space and tabs around ; and =", "gzip \t; q = 0", false},
		{"the smallest weight above zero", "gzip;q=0.001", true},
		{"one", "gzip;q=1", true},
		{"one with three zeros", "gzip;q=1.000", true},
		{"tabs around the weight", "\tgzip\t;\tq=0.5", true},

		{"wildcard", "*", true},
		{"wildcard refused", "*;q=0", false},
		{"wildcard with a weight", "br, *;q=0.5", true},
		{"gzip refused, wildcard allowed: the name wins", "gzip;q=0, *", false},
		{"wildcard first, then gzip refused", "*, gzip;q=0", false},
		{"wildcard refused, gzip allowed: the name wins", "*;q=0, gzip", true},
		{"identity, wildcard refused", "identity, *;q=0", false},

		{"x-gzip is gzip", "x-gzip", true},
		{"x-gzip in any case, with a weight", "X-GZIP;q=0.5", true},
		{"x-gzip refused", "x-gzip;q=0", false},
		{"gzip refused under one name, allowed under the other", "gzip;q=0, x-gzip", false},
		{"gzip listed twice, refused once", "gzip, gzip;q=0", false},

		{"malformed: empty weight", "gzip;q=", false},
		{"malformed: no =", "gzip;q", false},
		{"malformed: not a number", "gzip;q=abc", false},
		{"malformed: above one", "gzip;q=1.001", false},
		{"malformed: two", "gzip;q=2", false},
		{"malformed: four decimals", "gzip;q=0.0001", false},
		{"malformed: no leading digit", "gzip;q=.5", false},
		{"malformed: negative", "gzip;q=-1", false},
		{"malformed: trailing junk", "gzip;q=0.5x", false},
		{"malformed: a second weight", "gzip;q=0.5;q=1", false},
		{"malformed: another parameter", "gzip;level=9", false},
		{"malformed gzip, wildcard allowed: the name still wins", "gzip;q=abc, *", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := acceptsGzip(tt.header); got != tt.want {
				t.Errorf("acceptsGzip(%q) = %v, want %v", tt.header, got, tt.want)
			}
		})
	}
}

func TestQvalue(t *testing.T) {
	tests := []struct {
		in     string
		want   int
		wantOK bool
	}{
		{"0", 0, true}, {"0.", 0, true}, {"0.000", 0, true}, {"0.001", 1, true},
		{"0.5", 500, true}, {"0.25", 250, true}, {"0.999", 999, true},
		{"1", 1000, true}, {"1.", 1000, true}, {"1.000", 1000, true},
		{"", 0, false}, {".5", 0, false}, {"1.001", 0, false}, {"1.5", 0, false},
		{"2", 0, false}, {"0.0000", 0, false}, {"0,5", 0, false}, {"0.a", 0, false},
		{" 0", 0, false}, {"00", 0, false}, {"+1", 0, false},
	}
	for _, tt := range tests {
		got, ok := qvalue(tt.in)
		if ok != tt.wantOK || (ok && got != tt.want) {
			t.Errorf("qvalue(%q) = %d, %v, want %d, %v", tt.in, got, ok, tt.want, tt.wantOK)
		}
	}
}

// TestChatView_Lines: the server-rendered message list has the markup
// static/js/app.js gives a live message, with every value escaped.
func TestChatView_Lines(t *testing.T) {
	v := chatView{Messages: []chatMessage{
		{Message: messaging.Message{Seq: 7, Body: "a<b"}, Day: "I dag", Class: "msg", Sender: `Kari "K" · Saksbehandler`, ISO: "2026-11-23T08:00:00Z", Clock: "09:00"},
		{Message: messaging.Message{Seq: 8, Body: "mine & yours"}, Mine: true, Class: "msg mine", ISO: "2026-11-23T08:01:00Z", Clock: "09:01"},
		{Message: messaging.Message{Seq: 9, Body: "stengt"}, Class: "msg system", Sender: "Automatisk svar", ISO: "2026-11-23T08:01:01Z", Clock: "09:01"},
	}}
	want := `<li class="day" aria-hidden="false"><span>I dag</span></li>
<li class="msg" data-seq="7">
<span class="sender">Kari &#34;K&#34; · Saksbehandler</span>
<span class="body">a&lt;b</span>
<time class="when" datetime="2026-11-23T08:00:00Z">09:00</time>
</li>
<li class="msg mine" data-seq="8">
<span class="body">mine &amp; yours</span>
<time class="when" datetime="2026-11-23T08:01:00Z">09:01</time>
</li>
<li class="msg system" data-seq="9">
<span class="sender">Automatisk svar</span>
<span class="body">stengt</span>
<time class="when" datetime="2026-11-23T08:01:01Z">09:01</time>
</li>
`
	if got := string(v.Lines()); got != want {
		t.Errorf("Lines() =\n%s\nwant\n%s", got, want)
	}
	if got := (chatView{}).Lines(); got != "" {
		t.Errorf("Lines() of no messages = %q, want nothing", got)
	}
}
