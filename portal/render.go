package portal

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"html/template"
	"io/fs"
	"mime"
	"net"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"familieportal/i18n"
	"familieportal/portal/db"
	"familieportal/static"
)

//go:embed templates
var templateFS embed.FS

const readyTimeout = 2 * time.Second

// Ready reports whether the database answers with all migrations applied.
func (s *Store) Ready(ctx context.Context) error { return db.Ready(ctx, s.db) }

func parseCIDR(s string) (net.IP, *net.IPNet, error) {
	ip, n, err := net.ParseCIDR(strings.TrimSpace(s))
	if err != nil {
		return nil, nil, fmt.Errorf("trusted proxy range %q: %w", s, err)
	}
	return ip, n, nil
}

// page is what every template gets: the layout needs the localizer, the
// user, the CSRF token, the CSP nonce, the office for the emergency footer.
type page struct {
	L      *i18n.Localizer
	User   *User
	CSRF   string
	Nonce  string
	Path   string // the current path, for the language switcher to come back to
	Office Office
	Vakt   string // the barnevernvakt's state now ("open now, until 08.00"), for the footer
	Title  string
	Langs  []string
	Data   any
}

// render writes the page template name with data inside the layout.
func (s *Server) render(c echo.Context, status int, name, title string, data any) error {
	p := page{
		L:     s.localizer(c),
		Path:  c.Request().URL.Path,
		Title: title,
		Langs: i18n.Supported(),
		Data:  data,
	}
	if u, ok := userFrom(c); ok {
		p.User = &u
	}
	p.CSRF, _ = c.Get(ctxCSRF).(string)
	p.Nonce, _ = c.Get(ctxNonce).(string)
	// The emergency numbers are on every page, signed in or not.
	// Without the office's settings the footer still has the numbers and
	// the fixed hours, only not whether the barnevernvakt answers now.
	o, settings, ok, err := s.store.footerOffice(c.Request().Context())
	if err != nil {
		s.log.WarnContext(c.Request().Context(), "footer: office", "office", o.ID, "err", err)
	}
	p.Office = o
	if ok {
		p.Vakt = vaktNow(p.L, settings, s.store.now())
	}
	return c.Render(status, name, p)
}

// parsePages parses each page template together with the layout.
func parsePages(funcs template.FuncMap) (map[string]*template.Template, error) {
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return nil, err
	}
	pages := map[string]*template.Template{}
	for _, name := range names {
		base := path.Base(name)
		if base == "layout.html" || base == "partials.html" {
			continue
		}
		t, err := template.New(base).Funcs(funcs).ParseFS(templateFS,
			"templates/layout.html", "templates/partials.html", name)
		if err != nil {
			return nil, fmt.Errorf("parse %s: %w", name, err)
		}
		pages[base] = t
	}
	return pages, nil
}

// templateFuncs are the helpers templates may call. Every word goes
// through the localizer; data from the case system is shown as given.
func (s *Server) templateFuncs() template.FuncMap {
	return template.FuncMap{
		"t": func(l *i18n.Localizer, id string, kv ...any) string {
			return l.T(id, kvMap(kv))
		},
		"n": func(l *i18n.Localizer, id string, count int, kv ...any) string {
			return l.N(id, count, kvMap(kv))
		},
		"date":     func(l *i18n.Localizer, t any) string { return timeFmt(t, l.Date) },
		"datetime": func(l *i18n.Localizer, t any) string { return timeFmt(t, l.DateTime) },
		"static":   s.assets.url,
		"kb":       func(n int64) int64 { return (n + 1023) / 1024 },
		"iso": func(t any) string {
			return timeFmt(t, func(t time.Time) string { return t.UTC().Format(time.RFC3339) })
		},
		"list":     func(xs ...any) []any { return xs },
		"inc":      func(n int) int { return n + 1 },
		"dec":      func(n int) int { return n - 1 },
		"dict":     func(kv ...any) map[string]any { return kvMap(kv) },
		"langName": i18n.LangName,
	}
}

func kvMap(kv []any) map[string]any {
	if len(kv) == 0 {
		return nil
	}
	m := make(map[string]any, len(kv)/2)
	for i := 0; i+1 < len(kv); i += 2 {
		if k, ok := kv[i].(string); ok {
			m[k] = kv[i+1]
		}
	}
	return m
}

func timeFmt(v any, f func(time.Time) string) string {
	switch t := v.(type) {
	case time.Time:
		return f(t)
	case *time.Time:
		if t != nil {
			return f(*t)
		}
	}
	return ""
}

// assets serves the embedded static files under names that change when
// their content does, so browsers may cache them forever.
type assets struct {
	hash  map[string]string // "css/app.css" -> content hash
	gz    map[string][]byte // gzip-compressed content, where it is smaller
	files fs.FS
}

func newAssets() (*assets, error) {
	a := &assets{hash: map[string]string{}, gz: map[string][]byte{}, files: static.FS}
	err := fs.WalkDir(static.FS, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(static.FS, p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		a.hash[p] = hex.EncodeToString(sum[:])[:12]
		// Compressed once, here: CSS and JavaScript shrink to about a
		// third, which a phone on a slow connection notices. Only these
		// files are compressed, never pages: a page mixes secrets (the
		// CSRF token) with what a person typed, the setting for
		// compression side channels (BREACH).
		var z bytes.Buffer
		w, _ := gzip.NewWriterLevel(&z, gzip.BestCompression)
		w.Write(b)
		if err := w.Close(); err != nil {
			return err
		}
		if z.Len() < len(b)*9/10 {
			a.gz[p] = z.Bytes()
		}
		return nil
	})
	return a, err
}

// acceptsGzip reports whether an Accept-Encoding header (RFC 9110
// § 12.5.3) allows gzip: gzip, or its alias x-gzip (§ 8.4.1.3), is listed
// with a weight above zero, or is not listed and "*" is. An empty header
// asks for identity only. Where the header is unclear (a weight that is
// not a qvalue, a coding listed twice with different answers) the answer
// is no: identity is always safe to send.
func acceptsGzip(header string) bool {
	var gzipListed, gzipOK, starListed, starOK bool
	for _, member := range strings.Split(header, ",") {
		coding, params, hasParams := strings.Cut(member, ";")
		q := 1000
		if hasParams {
			q = weight(params)
		}
		switch strings.ToLower(strings.Trim(coding, ows)) {
		case "gzip", "x-gzip":
			gzipOK = q > 0 && (gzipOK || !gzipListed)
			gzipListed = true
		case "*": // any coding not listed by name
			starOK = q > 0 && (starOK || !starListed)
			starListed = true
		}
	}
	if gzipListed {
		return gzipOK
	}
	return starOK
}

// ows is HTTP's optional white space.
const ows = " \t"

// weight returns, in thousandths, the weight that an Accept-Encoding
// member's parameters (what follows its ";") give: a "q" in any case, then
// "=" and a qvalue, white space allowed around each. Anything else, such
// as a second parameter, weighs 0.
func weight(params string) int {
	name, value, _ := strings.Cut(params, "=")
	if !strings.EqualFold(strings.Trim(name, ows), "q") {
		return 0
	}
	q, ok := qvalue(strings.Trim(value, ows))
	if !ok {
		return 0
	}
	return q
}

// qvalue parses a qvalue (RFC 9110 § 12.4.2) into thousandths:
// "0" [ "." 0*3DIGIT ] or "1" [ "." 0*3("0") ].
func qvalue(s string) (int, bool) {
	if s == "" || (s[0] != '0' && s[0] != '1') {
		return 0, false
	}
	q, frac := int(s[0]-'0')*1000, s[1:]
	if frac != "" {
		if frac[0] != '.' || len(frac) > 4 {
			return 0, false
		}
		frac = frac[1:]
	}
	for i, unit := 0, 100; i < len(frac); i, unit = i+1, unit/10 {
		if frac[i] < '0' || frac[i] > '9' {
			return 0, false
		}
		q += int(frac[i]-'0') * unit
	}
	return q, q <= 1000
}

// url returns the fingerprinted URL of the static file name.
func (a *assets) url(name string) string {
	return "/static/" + a.hash[name] + "/" + name
}

// handleStatic serves GET /static/:hash/*. Only the current fingerprint of
// an embedded file is served; anything else, traversal included, is a 404.
func (s *Server) handleStatic(c echo.Context) error {
	name := c.Param("*")
	h, ok := s.assets.hash[name]
	if !ok || h != c.Param("hash") {
		return ErrNotFound
	}
	b, err := fs.ReadFile(s.assets.files, name)
	if err != nil {
		return ErrNotFound
	}
	hdr := c.Response().Header()
	hdr.Set("Cache-Control", "public, max-age=31536000, immutable")
	if z, ok := s.assets.gz[name]; ok {
		hdr.Add("Vary", "Accept-Encoding")
		if acceptsGzip(c.Request().Header.Get("Accept-Encoding")) {
			hdr.Set("Content-Encoding", "gzip")
			b = z
		}
	}
	return c.Blob(http.StatusOK, mime.TypeByExtension(path.Ext(name)), b)
}
