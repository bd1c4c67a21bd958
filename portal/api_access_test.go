package portal

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// A family member from whom documents are withheld asks for access from
// the notice; the request reaches the case system through the feed, its
// answer comes back and is shown to them — and to no one else.
func TestAccessRequest_roundTrip(t *testing.T) {
	e := newFiksEnv(t)
	e.importSamples()
	emma := e.caseOf("Emma")
	jonas, sara := e.session("jonas"), e.session("sara")
	post := func(token, site string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodPost, "/cases/"+emma+"/access-requests", strings.NewReader(url.Values{}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Sec-Fetch-Site", site)
		req.AddCookie(&http.Cookie{Name: sessionCookie, Value: token})
		rec := httptest.NewRecorder()
		e.srv.ServeHTTP(rec, req)
		return rec
	}
	page := e.page(jonas, "/cases/"+emma).Body.String()
	if !strings.Contains(page, `action="/cases/`+emma+`/access-requests"`) || strings.Contains(page, emmaMinutes) {
		t.Fatal("Jonas's case page has no request form in the notice, or shows the withheld title")
	}
	if strings.Contains(e.page(sara, "/cases/"+emma).Body.String(), "/access-requests") {
		t.Error("Sara, from whom nothing is withheld, is offered a request for access")
	}
	if rec := post(jonas, "cross-site"); rec.Code != http.StatusForbidden {
		t.Errorf("cross-site request for access = %d, want 403", rec.Code)
	}
	if n := e.count(`SELECT COUNT(*) FROM access_requests`); n != 0 {
		t.Fatalf("a refused post stored %d requests", n)
	}
	for i := 0; i < 2; i++ { // asking twice makes one request
		rec := post(jonas, "same-origin")
		if rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "/cases/"+emma+"/access-requests" {
			t.Fatalf("request for access = %d to %q", rec.Code, rec.Header().Get("Location"))
		}
	}
	if rec := post(sara, "same-origin"); rec.Code != http.StatusBadRequest {
		t.Errorf("Sara asking, with nothing withheld = %d, want 400", rec.Code)
	}
	if rec := post(e.session("leila"), "same-origin"); rec.Code != http.StatusNotFound {
		t.Errorf("Leila asking in Emma's case = %d, want 404", rec.Code)
	}
	if n := e.count(`SELECT COUNT(*) FROM access_requests`); n != 1 {
		t.Fatalf("%d requests stored, want 1", n)
	}
	if body := e.page(jonas, "/cases/"+emma+"/access-requests").Body.String(); !strings.Contains(body, "venter på svar") {
		t.Errorf("Jonas's requests page does not show the pending request:\n%s", body)
	}

	// The case system reads it from the feed and answers.
	items, _ := e.feedAll(e.key, "", 100)
	var req *FeedAccessRequest
	for _, it := range items {
		if it.Type == "access_request" {
			if req != nil {
				t.Error("the request is in the feed twice")
			}
			req = it.AccessRequest
			if it.Party.Rolle == nil || *it.Party.Rolle != "FAR" || it.Case.SystemID == nil {
				t.Errorf("the request does not name the party and case: %+v", it)
			}
		}
	}
	if req == nil || req.Status != "FORESPURT" {
		t.Fatalf("no pending request in the feed: %+v", items)
	}
	if rec := e.api(http.MethodPut, "/api/v1/innsynsforesporsler/"+req.ID, e.key, []byte(`{"innsynsforesporselStatus":"GODKJENT"}`)); rec.Code != http.StatusNoContent {
		t.Fatalf("answer = %d %s", rec.Code, rec.Body)
	}
	if body := e.page(jonas, "/cases/"+emma+"/access-requests").Body.String(); !strings.Contains(body, "Godkjent") {
		t.Error("Jonas does not see the answer")
	}
	if body := e.page(sara, "/cases/"+emma+"/access-requests").Body.String(); strings.Contains(body, "Godkjent") || strings.Contains(body, "venter") {
		t.Error("Sara sees Jonas's request")
	}
	if rec := e.page(e.session("kari"), "/cases/"+emma+"/access-requests"); rec.Code != http.StatusNotFound {
		t.Errorf("staff on a family member's requests page = %d, want 404", rec.Code)
	}

	// Access granted: the case system exposes the minutes to Jonas too.
	id, body := sampleFile(t, "journalposter", "emma-referat-jonas")
	granted := edit(t, body, func(m map[string]any) {
		var jonasPart map[string]any
		b, _ := json.Marshal(map[string]any{"rolle": "FAR", "fodselsnummer": fiksPID["jonas"], "fornavn": "Jonas", "etternavn": "Hansen"})
		_ = json.Unmarshal(b, &jonasPart)
		m["eksponertFor"] = append(m["eksponertFor"].([]any), jonasPart)
		m["innsynsforesporselStatus"] = "GODKJENT"
		delete(m, "mappeId")
	})
	if rec := e.api(http.MethodPut, "/api/v1/journalposter/"+id, e.key, granted); rec.Code != http.StatusOK {
		t.Fatalf("resend with Jonas exposed = %d %s", rec.Code, rec.Body)
	}
	if _, _, err := e.store.AuthorizeDocument(context.Background(), e.citizen("jonas"), e.docOf(emmaMinutes), ActDocumentRead); err != nil {
		t.Errorf("Jonas cannot open the minutes after access was granted: %v", err)
	}
	if page := e.page(jonas, "/cases/"+emma).Body.String(); strings.Contains(page, "withheld-h") {
		t.Error("the withheld notice still shows after access was granted")
	}
}
