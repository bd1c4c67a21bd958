package portal

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers/legacy"

	"familieportal/docs"
)

func loadOpenAPI(t *testing.T) *openapi3.T {
	t.Helper()
	doc, err := openapi3.NewLoader().LoadFromData(docs.OpenAPI)
	if err != nil {
		t.Fatal(err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("docs/openapi.yaml is not valid OpenAPI: %v", err)
	}
	return doc
}

// The OpenAPI document is valid, served, and describes exactly the API's
// routes: every route is in it and everything in it is a route.
func TestOpenAPI_matchesRoutes(t *testing.T) {
	doc := loadOpenAPI(t)
	e := newFiksEnv(t)
	rec := e.api(http.MethodGet, "/api/v1/openapi.yaml", "", nil)
	if rec.Code != http.StatusOK || !bytes.Equal(rec.Body.Bytes(), docs.OpenAPI) {
		t.Fatalf("GET /api/v1/openapi.yaml = %d, not the document", rec.Code)
	}

	param := regexp.MustCompile(`:([A-Za-z]+)`)
	routes := map[string]bool{}
	for _, r := range e.srv.e.Routes() {
		if !strings.HasPrefix(r.Path, "/api/") || r.Path == "/api/*" {
			continue
		}
		routes[r.Method+" "+param.ReplaceAllString(r.Path, "{$1}")] = true
	}
	documented := map[string]bool{}
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			documented[method+" "+path] = true
		}
	}
	var missing, extra []string
	for r := range routes {
		if !documented[r] {
			missing = append(missing, r)
		}
	}
	for d := range documented {
		if !routes[d] {
			extra = append(extra, d)
		}
	}
	slices.Sort(missing)
	slices.Sort(extra)
	if len(missing) > 0 || len(extra) > 0 {
		t.Errorf("routes not in docs/openapi.yaml: %v\ndocumented but not routes: %v", missing, extra)
	}
	if len(routes) < 10 {
		t.Errorf("only %d API routes found", len(routes))
	}
}

// Real responses of the API follow the document's schemas.
func TestOpenAPI_responsesFollowTheDocument(t *testing.T) {
	doc := loadOpenAPI(t)
	router, err := legacy.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	e := newFiksEnv(t)
	e.importSamples()
	saraID, sara := sampleFile(t, "mapper", "emma-sara")
	postID, _ := sampleFile(t, "journalposter", "emma-plan-sara")
	check := func(method, path string, body []byte, header ...string) {
		t.Helper()
		req := httptest.NewRequest(method, path, bytes.NewReader(body))
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		req.Header.Set("Authorization", "Bearer "+e.key)
		rec := httptest.NewRecorder()
		e.srv.ServeHTTP(rec, req)
		route, params, err := router.FindRoute(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route,
			Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}}
		out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: rec.Code,
			Header: rec.Header(), Body: io.NopCloser(bytes.NewReader(rec.Body.Bytes()))}
		if err := openapi3filter.ValidateResponse(context.Background(), out); err != nil {
			t.Errorf("%s %s = %d %s:\n%v", method, path, rec.Code, rec.Body, err)
		}
	}
	check(http.MethodPut, "/api/v1/mapper/"+saraID, sara)
	check(http.MethodPut, "/api/v1/mapper/"+saraID, edit(t, sara, func(m map[string]any) { m["x"] = 1 }))
	check(http.MethodGet, "/api/v1/mapper/"+saraID, nil)
	check(http.MethodGet, "/api/v1/journalposter/"+postID, nil)
	check(http.MethodGet, "/api/v1/journalposter/"+"00000000-0000-4000-8000-000000000000", nil)
	check(http.MethodGet, "/api/v1/feed?limit=5", nil)
	check(http.MethodDelete, "/api/v1/journalposter/"+postID+"/dokumenter/0", nil)
}
