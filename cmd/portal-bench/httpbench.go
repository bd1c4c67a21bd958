package main

// Phase 4: the portal's pages, each closed-loop at a fixed concurrency,
// signed in with the sessions the bench wrote.

import (
	"context"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"familieportal/portal/db"
)

// httpReq is one page request as a signed-in user.
type httpReq struct {
	path, token string
}

// httpSets are the request mixes of phase 4, by page.
type httpSets struct {
	names []string
	reqs  map[string][]httpReq
}

// buildHTTPSets picks, from the connected users, citizens with their own
// cases and documents they may read, and caseworkers for the inbox.
func buildHTTPSets(ctx context.Context, path string, topo *topology, tokens map[string]string) (httpSets, error) {
	hs := httpSets{
		names: []string{"case overview", "document list", "document download", "caseworker inbox"},
		reqs:  map[string][]httpReq{},
	}
	d, err := db.Open(ctx, path, db.Options{})
	if err != nil {
		return hs, err
	}
	defer d.Close()
	for _, u := range topo.Order {
		tu := topo.Users[u]
		tok := tokens[u]
		if tu.Role != "citizen" {
			if len(hs.reqs["caseworker inbox"]) < 200 {
				hs.reqs["caseworker inbox"] = append(hs.reqs["caseworker inbox"], httpReq{"/inbox", tok})
			}
			continue
		}
		if len(hs.reqs["case overview"]) >= 1000 {
			continue
		}
		for _, c := range tu.Cases {
			hs.reqs["case overview"] = append(hs.reqs["case overview"], httpReq{"/cases/" + c, tok})
			hs.reqs["document list"] = append(hs.reqs["document list"], httpReq{"/cases/" + c + "/documents", tok})
			var docs []string
			// The visibility rule, as the portal applies it: published to
			// the party's role, not withheld from them, not withdrawn.
			if err := d.SelectContext(ctx, &docs, `
				SELECT d.id FROM documents d
				JOIN parties p ON p.case_id = d.case_id AND p.user_id = ? AND p.revoked_at IS NULL
				JOIN document_audience da ON da.document_id = d.id AND da.role = p.role
				WHERE d.case_id = ? AND d.withdrawn_at IS NULL
				  AND NOT EXISTS (SELECT 1 FROM document_withheld w WHERE w.document_id = d.id AND w.user_id = p.user_id)
				ORDER BY d.id LIMIT 3`, u, c); err != nil {
				return hs, err
			}
			for _, id := range docs {
				hs.reqs["document download"] = append(hs.reqs["document download"], httpReq{"/documents/" + id + "/download", tok})
			}
		}
	}
	return hs, nil
}

// httpResult is one page's closed-loop run.
type httpResult struct {
	Target      string        `json:"target"`
	Page        string        `json:"page"`
	Concurrency int           `json:"concurrency"`
	Requests    int64         `json:"requests"`
	RPS         float64       `json:"rps"`
	Latency     latency       `json:"latency"`
	Errors      int64         `json:"errors"`
	Statuses    map[int]int64 `json:"statuses"`
	Bytes       int64         `json:"bytes"`
	mu          sync.Mutex    // guards Statuses while the workers run
}

// httpRun requests reqs round-robin from conc workers for d.
func httpRun(ctx context.Context, t *target, page string, reqs []httpReq, conc int, d time.Duration) *httpResult {
	addr := t.addr
	res := &httpResult{Target: t.name, Page: page, Concurrency: conc, Statuses: map[int]int64{}}
	if len(reqs) == 0 {
		return res
	}
	tr := &http.Transport{MaxIdleConns: conc, MaxIdleConnsPerHost: conc, DisableCompression: true}
	defer tr.CloseIdleConnections()
	cl := &http.Client{Transport: tr, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	var h hist
	var next, n, errs, bytes atomic.Int64
	var wg sync.WaitGroup
	stop := time.Now().Add(d)
	start := time.Now()
	for w := 0; w < conc; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(stop) && ctx.Err() == nil {
				r := reqs[int(next.Add(1))%len(reqs)]
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+r.path, nil)
				req.Header.Set("Cookie", "__Host-session="+r.token)
				t := time.Now()
				resp, err := cl.Do(req)
				if err != nil {
					errs.Add(1)
					continue
				}
				k, _ := io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				h.record(time.Since(t))
				n.Add(1)
				bytes.Add(k)
				res.mu.Lock()
				res.Statuses[resp.StatusCode]++
				res.mu.Unlock()
				if resp.StatusCode != http.StatusOK {
					errs.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	el := time.Since(start)
	res.Requests, res.Errors, res.Bytes = n.Load(), errs.Load(), bytes.Load()
	res.RPS = float64(res.Requests) / el.Seconds()
	res.Latency = h.summary()
	return res
}
