package portal

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestNotifications: each person chooses their own notices; a bad address
// gets a clear error and changes nothing; turning notices off keeps no
// address; a portal without a mail server says so and offers no choice.
func TestNotifications(t *testing.T) {
	e := newEnv(t, Options{Demo: true, NotificationsOn: true})
	stored := func(who string) NotificationContact {
		t.Helper()
		var c NotificationContact
		if err := e.db.Get(&c, e.db.Rebind(`SELECT channel, email FROM contact_preferences WHERE user_id = ?`), e.users[who]); err != nil {
			t.Fatal(err)
		}
		return c
	}

	page := e.get("sara", "/notifications").Body.String()
	for _, want := range []string{"Varsler om nye meldinger", `value="sara@example.invalid"`, `id="channel-email" name="channel" value="email" checked`,
		"Vi sender ikke varsler om natta"} {
		if !strings.Contains(page, want) {
			t.Errorf("Sara's page lacks %q", want)
		}
	}
	if page := e.get("kari", "/notifications").Body.String(); !strings.Contains(page, "bare mens chatten din er åpen") {
		t.Error("Kari's page does not say she is notified only while her chat is open")
	}

	for _, bad := range []string{"sara@", "sara example.no", "Sara <sara@example.no>", ""} {
		rec := e.postForm("sara", "/notifications", url.Values{"channel": {"email"}, "email": {bad}})
		if rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), "Skriv en e-postadresse, for eksempel navn@eksempel.no.") {
			t.Errorf("POST email %q = %d, want 400 with the error", bad, rec.Code)
		}
		if c := stored("sara"); c.Email != "sara@example.invalid" || c.Channel != "email" {
			t.Errorf("after the bad address %q: stored %+v, want unchanged", bad, c)
		}
	}
	if rec := e.postForm("sara", "/notifications", url.Values{"channel": {"pigeon"}}); rec.Code != http.StatusBadRequest {
		t.Errorf("POST channel=pigeon = %d, want 400", rec.Code)
	}

	rec := e.postForm("sara", "/notifications", url.Values{"channel": {"email"}, "email": {" ny.adresse@eksempel.no "}})
	if rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "/notifications?saved=1" {
		t.Fatalf("POST a good address = %d %q", rec.Code, rec.Header().Get("Location"))
	}
	if c := stored("sara"); c.Email != "ny.adresse@eksempel.no" || c.Channel != "email" {
		t.Errorf("stored %+v, want the new address", c)
	}
	if page := e.get("sara", "/notifications?saved=1").Body.String(); !strings.Contains(page, "Valget ditt er lagret.") {
		t.Error("no confirmation after saving")
	}

	if rec := e.postForm("sara", "/notifications", url.Values{"channel": {"none"}, "email": {"ny.adresse@eksempel.no"}}); rec.Code != http.StatusSeeOther {
		t.Fatalf("POST none = %d", rec.Code)
	}
	if c := stored("sara"); c.Channel != "none" || c.Email != "" {
		t.Errorf("after turning notices off: stored %+v, want none and no address", c)
	}
	// Jonas chooses for himself; Sara's choice is not his.
	if rec := e.postForm("jonas", "/notifications", url.Values{"channel": {"email"}, "email": {"jonas@eksempel.no"}}); rec.Code != http.StatusSeeOther {
		t.Fatalf("Jonas POST = %d", rec.Code)
	}
	if c := stored("jonas"); c.Email != "jonas@eksempel.no" {
		t.Errorf("Jonas stored %+v", c)
	}

	off := newEnv(t, Options{Demo: true})
	if page := off.get("sara", "/notifications").Body.String(); !strings.Contains(page, "Denne portalen sender ikke varsler ennå.") || strings.Contains(page, `name="channel"`) {
		t.Error("without a mail server the page must say so and offer no choice")
	}
	if rec := off.postForm("sara", "/notifications", url.Values{"channel": {"none"}}); rec.Code != http.StatusNotFound {
		t.Errorf("POST without a mail server = %d, want 404", rec.Code)
	}
	if rec := e.get("", "/notifications"); rec.Code == http.StatusOK {
		t.Errorf("GET /notifications signed out = %d, want the sign-in", rec.Code)
	}
}
