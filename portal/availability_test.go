package portal

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"familieportal/i18n"
	"familieportal/messaging"
)

// Expected texts below are written out by hand from the catalogs and the
// calendar, not derived from the code under test. The fixed moments are in
// March 2026 (before any real "now" these tests run at, so the demo's
// sessions stay valid): Friday 6 March 2026 16:00 is after Kari's chat has
// closed for the weekend, and Monday 9 March opens it at 08:00.

// avClock is a clock the test moves; the server, the chat store and the
// auto-replier all read it, from their own goroutines.
type avClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *avClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t.UTC()
}

func (c *avClock) set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// oslo is a wall-clock time in Europe/Oslo.
func oslo(y int, m time.Month, d, hh, mm int) time.Time {
	return time.Date(y, m, d, hh, mm, 0, 0, messaging.Oslo())
}

// weekdaysWindows is Monday to Friday from start to end (minutes).
func weekdaysWindows(start, end int) []messaging.Window {
	var ws []messaging.Window
	for wd := time.Monday; wd <= time.Friday; wd++ {
		ws = append(ws, messaging.Window{Weekday: wd, StartMin: start, EndMin: end})
	}
	return ws
}

// postForm posts form to path as the demo person who, from the portal's
// own origin (which the CSRF middleware accepts without a token).
func (e *env) postForm(who, path string, form url.Values) *httptest.ResponseRecorder {
	e.t.Helper()
	req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	if who != "" {
		req.AddCookie(&http.Cookie{Name: sessionCookie, Value: e.tokens[who]})
	}
	rec := httptest.NewRecorder()
	e.srv.ServeHTTP(rec, req)
	return rec
}

// getLang is get with the language cookie set.
func (e *env) getLang(who, path, lang string) *httptest.ResponseRecorder {
	e.t.Helper()
	req := httptest.NewRequest(http.MethodGet, path, nil)
	req.AddCookie(&http.Cookie{Name: langCookie, Value: lang})
	if who != "" {
		req.AddCookie(&http.Cookie{Name: sessionCookie, Value: e.tokens[who]})
	}
	rec := httptest.NewRecorder()
	e.srv.ServeHTTP(rec, req)
	return rec
}

// mailbox is the e-mail edge: it keeps what the notifier sends. (The SMTP
// conversation itself is tested in messaging against a real server.)
type mailbox struct {
	mu   sync.Mutex
	sent []messaging.Notification
}

func (m *mailbox) SendEmail(_ context.Context, n messaging.Notification) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sent = append(m.sent, n)
	return nil
}

// to returns how many e-mails went to addr.
func (m *mailbox) to(addr string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for _, x := range m.sent {
		if x.To == addr {
			n++
		}
	}
	return n
}

// newAvChat is newChatEnv with the auto-replier and the notification
// outbox as the chat's observers, and one clock for the portal, the chat's
// store, the replier and the outbox.
func newAvChat(t *testing.T, start time.Time) (*chatEnv, *avClock) {
	t.Helper()
	base := newEnv(t, Options{Demo: true})
	clock := &avClock{t: start}
	base.store.now = clock.now
	replier := messaging.NewAutoReplier(messaging.NewAvailabilityStore(base.db), AutoReplyText(base.bundle), clock.now, nil)
	mail := &mailbox{}
	notifier, err := messaging.NewNotifier(base.db, base.store.ChatAccess(), messaging.NotifierConfig{
		Email: mail,
		Text:  func(lang, id string) string { return base.bundle.Localizer(lang).T(id, nil) },
		Now:   clock.now,
	})
	if err != nil {
		t.Fatal(err)
	}
	e, chat := startChat(t, base, messaging.NewStore(base.db).WithClock(clock.now), replier, notifier)
	replier.Attach(chat) // before any message: the server has only just started
	e.notifier, e.mail = notifier, mail
	return e, clock
}

// saveSettings stores settings for the demo person who, failing the test
// on any field error.
func saveSettings(t *testing.T, e *env, who string, st messaging.Settings) {
	t.Helper()
	errs, err := messaging.NewAvailabilityStore(e.db).SaveSettings(context.Background(), e.users[who], st)
	if err != nil || len(errs) > 0 {
		t.Fatalf("SaveSettings(%s) = %v, %v", who, errs, err)
	}
}

type storedReply struct {
	Body, SenderID, Kind string
}

// autoReplies returns the automatic replies in conversation id, oldest first.
func autoReplies(t *testing.T, e *env, id string) []storedReply {
	t.Helper()
	var rs []storedReply
	if err := e.db.Select(&rs, e.db.Rebind(`
		SELECT body, sender_id AS senderid, kind FROM messages
		WHERE conversation_id = ? AND kind = 'auto_reply' ORDER BY seq`), id); err != nil {
		t.Fatal(err)
	}
	return rs
}

// say sends body as the socket's person into conversation id and waits for
// the ack, then for a sync round trip: the server handles one frame at a
// time and observers run inside the send, so after "synced" any automatic
// reply has been stored. It returns the message frames seen meanwhile.
func say(t *testing.T, e *chatEnv, s *socket, id, body string) []frame {
	t.Helper()
	var lastSeq int64
	if err := e.db.Get(&lastSeq, e.db.Rebind(`SELECT last_seq FROM conversations WHERE id = ?`), id); err != nil {
		t.Fatal(err)
	}
	clientID := NewID()
	s.send(frame{"type": "send", "conversation": id, "client_id": clientID, "body": body})
	ack, before := s.until("ack")
	if ack["client_id"] != clientID {
		t.Fatalf("ack = %v, want client id %s", ack, clientID)
	}
	var n int
	if err := e.db.Get(&n, e.db.Rebind(`SELECT COUNT(*) FROM messages WHERE client_id = ? AND body = ?`), clientID, body); err != nil || n != 1 {
		t.Fatalf("acked message stored %d times (err %v), want 1", n, err)
	}
	s.send(frame{"type": "sync", "cursors": map[string]any{id: lastSeq}})
	_, more := s.until("synced")
	var msgs []frame
	for _, f := range append(before, more...) {
		if f["type"] == "message" {
			msgs = append(msgs, f)
		}
	}
	return msgs
}

// TestAutoReply_onePerClosedPeriod is the integration test of the chat
// outside the caseworker's window: messages are stored and acknowledged as
// always; each conversation gets exactly one automatic reply per closed
// period, in the family member's language, in the caseworker's name; none
// once a caseworker has answered in that period; a new one in the next
// closed period; and none while the chat is open. Kari, who wants e-mail,
// is not notified before her window opens on Monday, and then of each
// conversation that waits for her, once.
func TestAutoReply_onePerClosedPeriod(t *testing.T) {
	e, clock := newAvChat(t, oslo(2026, 3, 6, 16, 0)) // Friday, after closing
	// kariMail runs the outbox at when and checks that Kari has had want
	// e-mails in all.
	kariMail := func(when time.Time, want int) {
		t.Helper()
		clock.set(when)
		if _, err := e.notifier.SendDue(context.Background()); err != nil {
			t.Fatal(err)
		}
		if got := e.mail.to("kari@example.invalid"); got != want {
			t.Errorf("%s: Kari has had %d e-mails, want %d", when.Format(time.DateTime), got, want)
		}
	}
	saveSettings(t, e.env, "kari", messaging.Settings{Windows: map[messaging.Channel][]messaging.Window{
		messaging.ChannelChat: weekdaysWindows(8*60, 15*60+30),
	}})
	if err := e.store.SetLanguage(context.Background(), e.users["jonas"], "nn"); err != nil {
		t.Fatal(err)
	}
	emmaSara, emmaJonas, linaMaria := e.convs["emma/sara"], e.convs["emma/jonas"], e.convs["lina/maria"]
	sara, _ := e.dial("sara")
	jonas, _ := e.dial("jonas")
	maria, _ := e.dial("maria")
	kari, _ := e.dial("kari")

	// Friday 16:00: the first message of the weekend gets the reply, live.
	msgs := say(t, e, sara, emmaSara, "Hei, er det noen der?")
	var live frame
	for _, m := range msgs {
		if m["kind"] == "auto_reply" {
			live = m
		}
	}
	if live == nil {
		t.Fatalf("sara got no auto_reply message frame; got %v", msgs)
	}
	if sender, _ := live["sender"].(map[string]any); sender["id"] != e.users["kari"] {
		t.Errorf("auto-reply sender = %v, want Kari", live["sender"])
	}
	rs := autoReplies(t, e.env, emmaSara)
	if len(rs) != 1 {
		t.Fatalf("after the first message: %d auto-replies, want 1", len(rs))
	}
	for _, want := range []string{"Takk for meldingen.", "Chatten er stengt nå.", "Kari ser den mandag kl. 08.00.",
		"Ring barnevernvakten på 21 99 99 99. Den er åpen nå.", "116 111", "ring 112"} {
		if !strings.Contains(rs[0].Body, want) {
			t.Errorf("auto-reply %q lacks %q", rs[0].Body, want)
		}
	}
	if rs[0].SenderID != e.users["kari"] {
		t.Errorf("auto-reply stored as sent by %s, want Kari", rs[0].SenderID)
	}

	// Saturday: the same closed period, so no second reply.
	clock.set(oslo(2026, 3, 7, 10, 0))
	say(t, e, sara, emmaSara, "Jeg prøver igjen.")
	say(t, e, sara, emmaSara, "Og en gang til.")
	if n := len(autoReplies(t, e.env, emmaSara)); n != 1 {
		t.Errorf("three messages in one closed period: %d auto-replies, want 1", n)
	}

	// Jonas reads Nynorsk: his own conversation gets its own reply, in nn.
	clock.set(oslo(2026, 3, 7, 11, 0))
	say(t, e, jonas, emmaJonas, "Hei frå Jonas")
	if rs := autoReplies(t, e.env, emmaJonas); len(rs) != 1 || !strings.Contains(rs[0].Body, "Takk for meldinga.") ||
		!strings.Contains(rs[0].Body, "Kari ser ho måndag kl. 08.00.") {
		t.Errorf("jonas's auto-replies = %+v, want one in Nynorsk", rs)
	}

	// Kari answers Maria on Saturday: after a person has answered in this
	// closed period, Maria's next message gets no automatic reply.
	clock.set(oslo(2026, 3, 7, 14, 0))
	say(t, e, kari, linaMaria, "Hei Maria, jeg så meldingen din.")
	clock.set(oslo(2026, 3, 7, 15, 0))
	say(t, e, maria, linaMaria, "Thank you!")
	if n := len(autoReplies(t, e.env, linaMaria)); n != 0 {
		t.Errorf("after Kari answered in the closed period: %d auto-replies, want 0", n)
	}

	// Nothing reaches Kari over the weekend, nor before 08:00 on Monday;
	// then one e-mail for each of the three conversations waiting.
	kariMail(oslo(2026, 3, 7, 15, 30), 0)
	kariMail(oslo(2026, 3, 8, 12, 0), 0)
	kariMail(oslo(2026, 3, 9, 7, 59), 0)
	kariMail(oslo(2026, 3, 9, 8, 0), 3)
	kariMail(oslo(2026, 3, 9, 12, 0), 3)

	// Monday 16:00 is the next closed period: a new reply each.
	clock.set(oslo(2026, 3, 9, 16, 0))
	say(t, e, sara, emmaSara, "Ny uke, nytt spørsmål.")
	rs = autoReplies(t, e.env, emmaSara)
	if len(rs) != 2 || !strings.Contains(rs[1].Body, "Kari ser den i morgen kl. 08.00.") {
		t.Errorf("next closed period: auto-replies %+v, want a second one for tomorrow 08.00", rs)
	}
	clock.set(oslo(2026, 3, 9, 16, 30))
	say(t, e, maria, linaMaria, "One more question.")
	rs = autoReplies(t, e.env, linaMaria)
	if len(rs) != 1 {
		t.Fatalf("maria in the next closed period: %d auto-replies, want 1", len(rs))
	}
	for _, want := range []string{"Thank you for your message.", "Kari will see it tomorrow at 08:00.", "116 111", "call 112"} {
		if !strings.Contains(rs[0].Body, want) {
			t.Errorf("English auto-reply %q lacks %q", rs[0].Body, want)
		}
	}

	// Monday evening's messages reach Kari when she starts on Tuesday.
	kariMail(oslo(2026, 3, 9, 23, 0), 3)
	kariMail(oslo(2026, 3, 10, 8, 0), 5)

	// Tuesday 10:00 the chat is open: no automatic reply.
	clock.set(oslo(2026, 3, 10, 10, 0))
	say(t, e, sara, emmaSara, "Er du der nå?")
	if n := len(autoReplies(t, e.env, emmaSara)); n != 2 {
		t.Errorf("message while open: %d auto-replies, want still 2", n)
	}
}

// TestAutoReply_substituteAnswers: while Ola is away with Kari as his
// substitute, Noah's message out of hours is answered in Kari's name, says
// who answers and when she reads it; Kari sees the conversation in her
// inbox and can answer in it; once the absence is over she cannot.
func TestAutoReply_substituteAnswers(t *testing.T) {
	e, clock := newAvChat(t, oslo(2026, 3, 6, 16, 0))
	e.db.MustExec(`UPDATE availability_absences SET from_day = '2026-03-02', to_day = '2026-03-13'`)
	conv := e.convs["noah/noah"]

	kari, hello := e.dial("kari")
	if !helloConversations(hello)[conv] {
		t.Fatal("Kari, Ola's substitute, does not have Noah's conversation")
	}
	noah, _ := e.dial("noah")
	say(t, e, noah, conv, "Hei, når er møtet?")
	rs := autoReplies(t, e.env, conv)
	if len(rs) != 1 || rs[0].SenderID != e.users["kari"] {
		t.Fatalf("auto-replies = %+v, want one from Kari", rs)
	}
	for _, want := range []string{"Ola Berg er borte til og med 13. mars 2026.", "Kari Nordmann svarer i mellomtiden.",
		"Kari ser den mandag kl. 08.00."} {
		if !strings.Contains(rs[0].Body, want) {
			t.Errorf("auto-reply %q lacks %q", rs[0].Body, want)
		}
	}
	if body := e.get("kari", "/inbox?show=all").Body.String(); !strings.Contains(body, "/conversations/"+conv) {
		t.Error("Kari's inbox lacks Noah's conversation while she substitutes")
	}
	// She answers in the conversation, but the case itself stays closed to
	// her, and the conversation page does not link to it.
	if rec := e.get("kari", "/conversations/"+conv); rec.Code != http.StatusOK || strings.Contains(rec.Body.String(), `href="/cases/`+e.cases["noah"]) {
		t.Errorf("Kari's view of Noah's conversation = %d, and must not link to the case she cannot open", rec.Code)
	}
	if rec := e.get("kari", "/cases/"+e.cases["noah"]); rec.Code != http.StatusNotFound {
		t.Errorf("Kari GET Noah's case = %d, want 404 (a substitute gets the conversation, not the case)", rec.Code)
	}
	say(t, e, kari, conv, "Hei Noah, Kari her. Møtet er tirsdag.")

	// The case page tells Noah who answers.
	page := e.get("noah", "/cases/"+e.cases["noah"]).Body.String()
	if !strings.Contains(page, "Ola Berg er borte til og med 13. mars 2026. Kari Nordmann svarer i mellomtiden.") {
		t.Error("Noah's case page does not say that Kari answers while Ola is away")
	}

	clock.set(oslo(2026, 3, 16, 10, 0)) // the absence is over
	kari2, hello := e.dial("kari")
	if helloConversations(hello)[conv] {
		t.Error("Kari still has Noah's conversation after the absence")
	}
	kari2.send(frame{"type": "send", "conversation": conv, "client_id": NewID(), "body": "etterpå"})
	if f, _ := kari2.until("error"); f["code"] != "not_found" {
		t.Errorf("Kari sending after the absence = %v, want not_found", f)
	}
	// A substitute must be staff: even written straight into the table, a
	// citizen named as substitute gets nothing.
	e.db.MustExec(e.db.Rebind(`UPDATE availability_absences SET to_day = '2026-03-20', substitute_id = ?`), e.users["per"])
	if _, hello := e.dial("per"); len(helloConversations(hello)) != 0 {
		t.Error("a citizen named as substitute got conversations")
	}
}

// TestAvailability_frames: when Kari's chat closes, the notifier sends an
// availability frame to everyone who may see each of her conversations,
// and says when it opens again.
func TestAvailability_frames(t *testing.T) {
	e, clock := newAvChat(t, oslo(2026, 3, 6, 15, 0)) // Friday, open
	saveSettings(t, e.env, "kari", messaging.Settings{Windows: map[messaging.Channel][]messaging.Window{
		messaging.ChannelChat: weekdaysWindows(8*60, 15*60+30),
	}})
	e.db.MustExec(`DELETE FROM availability_absences`) // Noah's conversations follow Ola alone
	n := messaging.NewAvailabilityNotifier(e.srv.chat, messaging.NewAvailabilityStore(e.db), clock.now, nil)
	ctx := context.Background()
	next, err := n.Check(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := oslo(2026, 3, 6, 15, 30); !next.Equal(want) {
		t.Errorf("first Check: next = %v, want %v", next, want)
	}
	sara, _ := e.dial("sara")
	leila, _ := e.dial("leila")

	clock.set(oslo(2026, 3, 6, 15, 30))
	if next, err = n.Check(ctx); err != nil {
		t.Fatal(err)
	}
	if want := oslo(2026, 3, 9, 8, 0); !next.Equal(want) {
		t.Errorf("after closing: next = %v, want %v (Monday 08:00)", next, want)
	}
	// Wait for the frame itself: a sync reply is written by the socket's
	// own reader and may overtake a frame still on its way through the hub.
	want := frame{"type": "availability", "conversation": e.convs["emma/sara"], "channel": "chat", "open": false,
		"at": "2026-03-06T14:30:00.000Z", "until": "2026-03-09T07:00:00.000Z"}
	if got, _ := sara.until("availability"); !reflect.DeepEqual(got, want) {
		t.Errorf("sara's availability frame = %v, want %v", got, want)
	}
	// Exactly one: nothing more by the time a later sync comes back.
	sara.send(frame{"type": "sync", "cursors": map[string]any{}})
	if _, before := sara.until("synced"); len(before) != 0 {
		t.Errorf("sara got more frames after the availability frame: %v", before)
	}
	// Ola's chat follows the office's hours, which close at 15:30 too, so
	// Leila hears about her own conversation only.
	if got, _ := leila.until("availability"); got["conversation"] != e.convs["noah/leila"] {
		t.Errorf("leila got a frame about another conversation: %v", got)
	}
	leila.send(frame{"type": "sync", "cursors": map[string]any{}})
	if _, before := leila.until("synced"); len(before) != 0 {
		t.Errorf("leila got more frames than the one about her conversation: %v", before)
	}
	// Nothing changes between two checks at the same state: no frame.
	if _, err := n.Check(ctx); err != nil {
		t.Fatal(err)
	}
	sara.send(frame{"type": "sync", "cursors": map[string]any{}})
	if _, before := sara.until("synced"); len(before) != 0 {
		t.Errorf("a second Check without a change sent %v", before)
	}
}

// TestCase_contactCard: the family's view of when they can reach Kari, per
// channel, the answer time and the emergency block, closed and open, in
// the three languages.
func TestCase_contactCard(t *testing.T) {
	e, clock := newAvChat(t, oslo(2026, 3, 6, 16, 0)) // Friday after closing
	emma := "/cases/" + e.cases["emma"]

	nb := e.get("sara", emma).Body.String()
	for _, want := range []string{
		// Kari's demo windows: chat Mon–Tue and Thu–Fri 08–15.30, Wed 08–12;
		// phone 09–11; video and meetings follow the office's hours.
		"<strong>Chat:</strong> Stengt nå. Åpner mandag kl. 08.00.",
		"<strong>Telefon, 21 00 00 00:</strong> Stengt nå. Åpner mandag kl. 09.00.",
		"<strong>Videosamtale:</strong> Stengt nå. Åpner mandag kl. 08.00.",
		"<strong>Møte på kontoret:</strong> Stengt nå. Åpner mandag kl. 08.00.",
		"Du kan vente svar innen 2 virkedager, senest tirsdag kl. 15.30.",
		"Barnevernvakten, 21 99 99 99: åpen nå, til mandag kl. 08.00.",
		"116 111", "112",
		// The line above the write box, as UI.md has it.
		"Chatten er stengt nå. Meldingen din blir lagret, og Kari ser den mandag kl. 08.00. Haster det? Ring barnevernvakten 21 99 99 99.",
	} {
		if !strings.Contains(nb, want) {
			t.Errorf("Sara's case page (Friday 16.00) lacks %q", want)
		}
	}
	if nn := e.getLang("sara", emma, "nn").Body.String(); !strings.Contains(nn, "<strong>Chat:</strong> Stengd no. Opnar måndag kl. 08.00.") {
		t.Error("the Nynorsk case page lacks the chat's opening")
	}
	en := e.get("maria", "/cases/"+e.cases["lina"]).Body.String()
	for _, want := range []string{
		"<strong>Chat:</strong> Closed now. Opens Monday at 08:00.",
		"You can expect an answer within 2 working days, by Tuesday at 15:30 at the latest.",
		"The child welfare emergency service, 21 99 99 99: open now, until Monday at 08:00.",
	} {
		if !strings.Contains(en, want) {
			t.Errorf("Maria's English case page lacks %q", want)
		}
	}

	clock.set(oslo(2026, 3, 4, 10, 0)) // Wednesday morning: open until noon
	nb = e.get("sara", emma).Body.String()
	for _, want := range []string{
		"<strong>Chat:</strong> Åpen nå, til kl. 12.00.",
		"<strong>Telefon, 21 00 00 00:</strong> Åpen nå, til kl. 11.00.",
		"Kari svarer vanligvis innen 2 virkedager. Chatten er åpen man–tir 08.00–15.30; ons 08.00–12.00; tor–fre 08.00–15.30.",
		"Barnevernvakten, 21 99 99 99: åpner i dag kl. 15.30. Til da svarer barneverntjenesten på 21 00 00 00.",
		// The footer on every page: the barnevernvakt's state now.
		`<strong class="vakt-now">Stengt nå. Åpner i dag kl. 15.30.</strong>`,
	} {
		if !strings.Contains(nb, want) {
			t.Errorf("Sara's case page (Wednesday 10.00) lacks %q", want)
		}
	}
}

// TestAvailability_access: only staff reach the editing page, and only team
// leads the waiting list; families get the 404 of a page that does not
// exist, and the signed out are sent to sign in.
func TestAvailability_access(t *testing.T) {
	e, _ := newAvChat(t, oslo(2026, 3, 6, 16, 0))
	before := countAvailabilityRows(t, e.env)
	for _, who := range everyone {
		staff := who == "kari" || who == "ola" || who == "ingrid"
		want := http.StatusNotFound
		if staff {
			want = http.StatusOK
		}
		if rec := e.get(who, "/availability"); rec.Code != want {
			t.Errorf("%s GET /availability = %d, want %d", who, rec.Code, want)
		}
		if !staff {
			rec := e.postForm(who, "/availability", url.Values{"w.chat.1": {"08.00–09.00"}})
			if rec.Code != http.StatusNotFound {
				t.Errorf("%s POST /availability = %d, want 404", who, rec.Code)
			}
		}
		want = http.StatusNotFound
		if who == "ingrid" {
			want = http.StatusOK
		}
		if rec := e.get(who, "/waiting"); rec.Code != want {
			t.Errorf("%s GET /waiting = %d, want %d", who, rec.Code, want)
		}
	}
	if rec := e.get("", "/availability"); rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "/signin" {
		t.Errorf("signed out GET /availability = %d to %q, want 303 to /signin", rec.Code, rec.Header().Get("Location"))
	}
	if rec := e.postForm("", "/availability", url.Values{"w.chat.1": {"08.00–09.00"}}); rec.Code != http.StatusUnauthorized {
		t.Errorf("signed out POST /availability = %d, want 401", rec.Code)
	}
	if rec := e.get("", "/waiting"); rec.Code != http.StatusSeeOther {
		t.Errorf("signed out GET /waiting = %d, want 303", rec.Code)
	}
	if after := countAvailabilityRows(t, e.env); after != before {
		t.Errorf("refused requests changed the settings: %d rows, was %d", after, before)
	}
}

// countAvailabilityRows counts every stored availability setting.
func countAvailabilityRows(t *testing.T, e *env) int {
	t.Helper()
	var n int
	if err := e.db.Get(&n, `SELECT (SELECT COUNT(*) FROM availability_windows) + (SELECT COUNT(*) FROM availability_exceptions)
		+ (SELECT COUNT(*) FROM availability_absences)`); err != nil {
		t.Fatal(err)
	}
	return n
}

// kariForm is the form as Kari's stored demo settings fill it, which the
// cases below change one field at a time.
func kariForm() url.Values {
	return url.Values{
		"w.chat.1": {"08.00–15.30"}, "w.chat.2": {"08.00–15.30"}, "w.chat.3": {"08.00–12.00"},
		"w.chat.4": {"08.00–15.30"}, "w.chat.5": {"08.00–15.30"},
		"w.phone.1": {"09.00–11.00"}, "w.phone.2": {"09.00–11.00"}, "w.phone.3": {"09.00–11.00"},
		"w.phone.4": {"09.00–11.00"}, "w.phone.5": {"09.00–11.00"},
		"x.0.date": {""}, "x.0.channel": {""}, "x.0.kind": {"closed"}, "x.0.start": {""}, "x.0.end": {""},
		"a.0.from": {""}, "a.0.to": {""}, "a.0.substitute": {""},
	}
}

// TestAvailability_invalidInputChangesNothing posts one mistake at a time
// (with a valid change next to it) and expects the field's error, an
// error summary linking to the field, and the stored settings untouched.
func TestAvailability_invalidInputChangesNothing(t *testing.T) {
	e := newEnv(t, Options{Demo: true})
	ctx := context.Background()
	avail := messaging.NewAvailabilityStore(e.db)
	stored := func() messaging.Settings {
		st, err := avail.Settings(ctx, e.users["kari"])
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	original := stored()
	if len(original.Windows[messaging.ChannelChat]) != 5 {
		t.Fatalf("Kari's demo chat windows = %v, want five", original.Windows[messaging.ChannelChat])
	}
	tests := []struct {
		name    string
		set     url.Values
		field   string // the input id the error is on
		wantErr string
	}{
		{"end before start", url.Values{"w.chat.1": {"15.00–08.00"}}, "w-chat-1", "Sluttiden må være etter starttiden."},
		{"overlapping windows", url.Values{"w.chat.2": {"08.00–12.00, 11.00–15.00"}}, "w-chat-2", "Tiden overlapper med en annen tid samme dag."},
		{"a time that does not exist on any clock", url.Values{"w.phone.3": {"25.00–26.00"}}, "w-phone-3", "Tiden må være mellom 00.00 og 24.00."},
		{"minutes past 59", url.Values{"w.video.4": {"08.75–10.00"}}, "w-video-4", "Tiden må være mellom 00.00 og 24.00."},
		{"unreadable", url.Values{"w.video.4": {"fra åtte"}}, "w-video-4", "Skriv tidene som 08.00–15.30."},
		{"skipped by the spring change", url.Values{"x.0.date": {"2026-03-29"}, "x.0.start": {"02:30"}, "x.0.end": {"04:00"}},
			"x-0-start", "Denne tiden finnes ikke den dagen, fordi klokken stilles fram en time."},
		{"repeated by the autumn change", url.Values{"x.0.date": {"2026-10-25"}, "x.0.start": {"01:00"}, "x.0.end": {"02:30"}},
			"x-0-end", "Denne tiden finnes to ganger den dagen, fordi klokken stilles tilbake en time. Velg en annen tid."},
		{"a date that does not exist", url.Values{"x.0.date": {"2026-02-30"}}, "x-0-date", "Datoen finnes ikke."},
		{"a written date that does not exist", url.Values{"a.0.from": {"31.04.2026"}, "a.0.to": {"02.05.2026"}}, "a-0-from", "Datoen finnes ikke."},
		{"exception end before start", url.Values{"x.0.date": {"2026-05-05"}, "x.0.start": {"14:00"}, "x.0.end": {"09:00"}}, "x-0-end", "Sluttiden må være etter starttiden."},
		{"absence ends before it starts", url.Values{"a.0.from": {"2026-08-14"}, "a.0.to": {"2026-08-01"}}, "a-0-to", "Siste dag kan ikke være før første dag."},
		{"overlapping absences", url.Values{"a.0.from": {"2026-08-01"}, "a.0.to": {"2026-08-14"},
			"a.1.from": {"2026-08-10"}, "a.1.to": {"2026-08-20"}, "a.1.substitute": {""}}, "a-1-from", "Fraværet overlapper med et annet fravær."},
		{"a family member as substitute", url.Values{"a.0.from": {"2026-08-01"}, "a.0.to": {"2026-08-14"}}, "a-0-substitute", "Velg en kollega fra listen."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			form := kariForm()
			form.Set("w.meeting.1", "10.00–11.00") // a valid change that must not be saved either
			for k, v := range tt.set {
				form[k] = v
			}
			if tt.name == "a family member as substitute" {
				form.Set("a.0.substitute", e.users["sara"])
			}
			rec := e.postForm("kari", "/availability", form)
			if rec.Code != http.StatusBadRequest {
				t.Fatalf("POST = %d, want 400", rec.Code)
			}
			body := rec.Body.String()
			for _, want := range []string{tt.wantErr, `href="#` + tt.field + `"`, `id="` + tt.field + `-error"`, "Ingenting er lagret ennå."} {
				if !strings.Contains(body, want) {
					t.Errorf("page lacks %q", want)
				}
			}
			if got := stored(); !reflect.DeepEqual(got, original) {
				t.Errorf("settings changed:\n got %+v\nwant %+v", got, original)
			}
		})
	}
}

// TestAvailability_save: a valid form replaces the settings, and the page
// and the family's view show them.
func TestAvailability_save(t *testing.T) {
	e := newEnv(t, Options{Demo: true})
	clock := &avClock{t: oslo(2026, 3, 4, 10, 0)} // a Wednesday
	e.store.now = clock.now
	form := kariForm()
	form.Set("w.chat.3", "08.00–11.30, 12.00–15.30") // the Wednesday afternoon opened, with a lunch break
	form.Set("w.meeting.2", "10:00-12")
	form.Set("x.0.date", "2026-03-05")
	form.Set("x.0.channel", "chat")
	form.Set("x.0.kind", "closed")
	form.Set("a.0.from", "10.03.2026")
	form.Set("a.0.to", "2026-03-13")
	form.Set("a.0.substitute", e.users["ola"])
	rec := e.postForm("kari", "/availability", form)
	if rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "/availability?saved=1" {
		t.Fatalf("POST = %d to %q; body:\n%s", rec.Code, rec.Header().Get("Location"), rec.Body)
	}
	st, err := messaging.NewAvailabilityStore(e.db).Settings(context.Background(), e.users["kari"])
	if err != nil {
		t.Fatal(err)
	}
	want := messaging.Settings{
		Windows: map[messaging.Channel][]messaging.Window{
			messaging.ChannelChat: {
				{Weekday: time.Monday, StartMin: 480, EndMin: 930}, {Weekday: time.Tuesday, StartMin: 480, EndMin: 930},
				{Weekday: time.Wednesday, StartMin: 480, EndMin: 690}, {Weekday: time.Wednesday, StartMin: 720, EndMin: 930},
				{Weekday: time.Thursday, StartMin: 480, EndMin: 930}, {Weekday: time.Friday, StartMin: 480, EndMin: 930},
			},
			messaging.ChannelPhone:   weekdaysWindows(540, 660),
			messaging.ChannelMeeting: {{Weekday: time.Tuesday, StartMin: 600, EndMin: 720}},
		},
		Exceptions: []messaging.Exception{{Date: messaging.Date{Year: 2026, Month: 3, Day: 5}, Channel: messaging.ChannelChat, EndMin: 1440}},
		Absences: []messaging.Absence{{From: messaging.Date{Year: 2026, Month: 3, Day: 10}, To: messaging.Date{Year: 2026, Month: 3, Day: 13},
			SubstituteID: e.users["ola"]}},
	}
	if !reflect.DeepEqual(st, want) {
		t.Errorf("stored settings:\n got %+v\nwant %+v", st, want)
	}
	page := e.get("kari", "/availability?saved=1").Body.String()
	for _, w := range []string{"Endringene er lagret.", `value="08.00–11.30, 12.00–15.30"`, `value="2026-03-05"`, `value="2026-03-10"`,
		// The preview: Wednesday 10.00, open until the lunch break, and
		// tomorrow's exception closes Thursday.
		"<strong>Chat:</strong> Åpen nå, til kl. 11.30."} {
		if !strings.Contains(page, w) {
			t.Errorf("the page after saving lacks %q", w)
		}
	}
	clock.set(oslo(2026, 3, 4, 16, 0))
	if page := e.get("sara", "/cases/"+e.cases["emma"]).Body.String(); !strings.Contains(page, "<strong>Chat:</strong> Stengt nå. Åpner fredag kl. 08.00.") {
		t.Error("Sara's case page does not skip Thursday, which Kari closed")
	}
	clock.set(oslo(2026, 3, 11, 9, 0))
	if page := e.get("sara", "/cases/"+e.cases["emma"]).Body.String(); !strings.Contains(page, "Kari Nordmann er borte til og med 13. mars 2026. Ola Berg svarer i mellomtiden.") {
		t.Error("Sara's case page does not say that Ola answers while Kari is away")
	}

	// Removing rows removes them.
	form.Set("x.0.remove", "1")
	form.Set("a.0.remove", "1")
	if rec := e.postForm("kari", "/availability", form); rec.Code != http.StatusSeeOther {
		t.Fatalf("POST with removals = %d", rec.Code)
	}
	if st, _ := messaging.NewAvailabilityStore(e.db).Settings(context.Background(), e.users["kari"]); len(st.Exceptions)+len(st.Absences) != 0 {
		t.Errorf("after removing: %+v, want no exceptions or absences", st)
	}
}

// TestWaiting lists, for the team lead, the conversations in which a
// family has waited more than two working days, the longest wait first.
func TestWaiting(t *testing.T) {
	// Wednesday 18 September 2030, far after the demo's messages. The
	// session is made under this clock so that it is valid then.
	e, _ := newAvChat(t, oslo(2030, 9, 18, 12, 0))
	ctx := context.Background()
	tok, err := e.store.CreateSession(ctx, e.users["ingrid"])
	if err != nil {
		t.Fatal(err)
	}
	e.tokens["ingrid"] = tok
	chat := messaging.NewStore(e.db)
	write := func(who, conv string, at time.Time) {
		t.Helper()
		if _, _, err := chat.WithClock(func() time.Time { return at }).InsertMessage(ctx, messaging.Draft{
			ConversationID: conv, SenderID: e.users[who], ClientID: NewID(), Body: "…", Kind: messaging.KindText,
		}); err != nil {
			t.Fatal(err)
		}
	}
	convs := e.convs
	write("jonas", convs["emma/jonas"], oslo(2030, 9, 13, 10, 0)) // Friday: due Tuesday 15.30, overdue
	write("sara", convs["emma/sara"], oslo(2030, 9, 17, 9, 0))    // Tuesday: due Thursday, not yet
	write("leila", convs["noah/leila"], oslo(2030, 9, 10, 9, 0))  // answered below
	write("ola", convs["noah/leila"], oslo(2030, 9, 10, 11, 0))
	// From the demo: Noah (5 days before load) and Maria about Adam (44
	// days) and Lina (1 day) wrote last, all long before 2030.

	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodGet, "/waiting", nil)
	req.AddCookie(&http.Cookie{Name: sessionCookie, Value: tok})
	e.srv.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /waiting = %d", rec.Code)
	}
	body := rec.Body.String()
	order := []string{convs["adam/maria"], convs["noah/noah"], convs["lina/maria"], convs["emma/jonas"]}
	last := -1
	for _, id := range order {
		i := strings.Index(body, "/conversations/"+id)
		if i < 0 {
			t.Errorf("the list lacks conversation %s", id)
			continue
		}
		if i < last {
			t.Errorf("conversation %s is listed before one that waited longer", id)
		}
		last = i
	}
	for _, id := range []string{convs["emma/sara"], convs["noah/leila"]} {
		if strings.Contains(body, "/conversations/"+id) {
			t.Errorf("the list shows conversation %s, which is not overdue", id)
		}
	}
	if !strings.Contains(body, "Skulle hatt svar innen 17. september 2030 kl. 15.30") {
		t.Error("the list does not give Jonas's answer time (Tuesday 17 September 15.30)")
	}
}

// TestAvailability_pagesInEveryLanguage renders the new pages, and the
// pages that show availability, in nb, nn and en, with and without field
// errors, and checks that no message id shows instead of text.
func TestAvailability_pagesInEveryLanguage(t *testing.T) {
	e, _ := newAvChat(t, oslo(2026, 3, 6, 16, 0))
	var ids []string
	for _, k := range e.bundle.Keys("nb") {
		if strings.Contains(k, "_") {
			ids = append(ids, k)
		}
	}
	bad := kariForm()
	bad.Set("w.chat.1", "15.00–08.00")
	bad.Set("x.0.date", "2026-02-30")
	bad.Set("a.0.from", "2026-08-14")
	bad.Set("a.0.to", "2026-08-01")
	markers := map[string]string{"nb": "Tilgjengelighet", "nn": "Tilgjengelegheit", "en": "Availability"}
	for _, lang := range i18n.Supported() {
		pages := map[string]*httptest.ResponseRecorder{
			"kari /availability":   e.getLang("kari", "/availability", lang),
			"ingrid /waiting":      e.getLang("ingrid", "/waiting", lang),
			"kari /inbox":          e.getLang("kari", "/inbox", lang),
			"ingrid /inbox":        e.getLang("ingrid", "/inbox", lang),
			"sara case":            e.getLang("sara", "/cases/"+e.cases["emma"], lang),
			"noah case":            e.getLang("noah", "/cases/"+e.cases["noah"], lang),
			"kari case":            e.getLang("kari", "/cases/"+e.cases["emma"], lang),
			"kari /availability !": e.postFormLang("kari", "/availability", lang, bad),
		}
		for name, rec := range pages {
			if rec.Code >= 500 || rec.Code == http.StatusNotFound {
				t.Errorf("%s %s = %d", lang, name, rec.Code)
				continue
			}
			body := rec.Body.String()
			if !strings.Contains(body, `<html lang="`+lang+`">`) {
				t.Errorf("%s %s: not declared as %s", lang, name, lang)
			}
			text := tagRE.ReplaceAllString(body, " ")
			for _, id := range ids {
				if strings.Contains(text, id) {
					t.Errorf("%s %s: message id %q shown instead of text", lang, name, id)
				}
			}
		}
		if !strings.Contains(pages["kari /availability"].Body.String(), markers[lang]) {
			t.Errorf("%s: the availability page is not in %s", lang, lang)
		}
	}
	// Friday 16.00 is outside Kari's chat window: her inbox says so.
	if body := e.get("kari", "/inbox").Body.String(); !strings.Contains(body, "Du er utenfor chattetiden din.") {
		t.Error("Kari's inbox lacks the banner outside her chat hours")
	}
}

// postFormLang is postForm with the language cookie set.
func (e *env) postFormLang(who, path, lang string, form url.Values) *httptest.ResponseRecorder {
	e.t.Helper()
	req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	req.AddCookie(&http.Cookie{Name: langCookie, Value: lang})
	req.AddCookie(&http.Cookie{Name: sessionCookie, Value: e.tokens[who]})
	rec := httptest.NewRecorder()
	e.srv.ServeHTTP(rec, req)
	return rec
}
