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

// httpResult is one page's run: closed loop (Concurrency workers, each
// sending its next request when the last is answered) or open loop (Rate
// requests a second, each sent when due, however slow the others are).
type httpResult struct {
	Target      string        `json:"target"`
	Page        string        `json:"page"`
	Concurrency int           `json:"concurrency,omitempty"`
	Rate        float64       `json:"rate,omitempty"` // open loop: requests due per second
	Requests    int64         `json:"requests"`
	RPS         float64       `json:"rps"`
	Latency     latency       `json:"latency"`
	Errors      int64         `json:"errors"`
	Statuses    map[int]int64 `json:"statuses"`
	Bytes       int64         `json:"bytes"`
	mu          sync.Mutex    // guards Statuses while the workers run

	h          hist
	n, errs, b atomic.Int64
}

// pageClient is an HTTP client for one run, signed in per request.
func pageClient(conns int) (*http.Client, func()) {
	tr := &http.Transport{MaxIdleConns: conns, MaxIdleConnsPerHost: conns, DisableCompression: true}
	cl := &http.Client{Transport: tr, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return cl, tr.CloseIdleConnections
}

// get requests r and records its outcome, timed from from: when it was
// sent (closed loop) or when it was due (open loop, so that a request the
// bench sent late is not measured as a fast one).
func (res *httpResult) get(ctx context.Context, cl *http.Client, addr string, r httpReq, from time.Time) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+r.path, nil)
	req.Header.Set("Cookie", "__Host-session="+r.token)
	resp, err := cl.Do(req)
	if err != nil {
		res.errs.Add(1)
		return
	}
	k, _ := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	res.h.record(time.Since(from))
	res.n.Add(1)
	res.b.Add(k)
	res.mu.Lock()
	res.Statuses[resp.StatusCode]++
	res.mu.Unlock()
	if resp.StatusCode != http.StatusOK {
		res.errs.Add(1)
	}
}

// finish fills in the totals of a run that took el.
func (res *httpResult) finish(el time.Duration) *httpResult {
	res.Requests, res.Errors, res.Bytes = res.n.Load(), res.errs.Load(), res.b.Load()
	res.RPS = float64(res.Requests) / el.Seconds()
	res.Latency = res.h.summary()
	return res
}

// httpRun requests reqs round-robin from conc workers for d.
func httpRun(ctx context.Context, t *target, page string, reqs []httpReq, conc int, d time.Duration) *httpResult {
	res := &httpResult{Target: t.name, Page: page, Concurrency: conc, Statuses: map[int]int64{}}
	if len(reqs) == 0 {
		return res
	}
	cl, closeIdle := pageClient(conc)
	defer closeIdle()
	var next atomic.Int64
	var wg sync.WaitGroup
	stop := time.Now().Add(d)
	start := time.Now()
	for range conc {
		wg.Go(func() {
			for time.Now().Before(stop) && ctx.Err() == nil {
				res.get(ctx, cl, t.addr, reqs[int(next.Add(1))%len(reqs)], time.Now())
			}
		})
	}
	wg.Wait()
	return res.finish(time.Since(start))
}

// httpOpenRun requests reqs round-robin at rate a second for d, each when
// it is due, on a goroutine of its own: a slow answer does not hold back
// the next request, so the latencies are what a visitor waits at that
// load rather than the queue a fixed number of clients builds.
func httpOpenRun(ctx context.Context, t *target, page string, reqs []httpReq, rate float64, d time.Duration) *httpResult {
	res := &httpResult{Target: t.name, Page: page, Rate: rate, Statuses: map[int]int64{}}
	if len(reqs) == 0 || rate <= 0 {
		return res
	}
	cl, closeIdle := pageClient(256)
	defer closeIdle()
	var wg sync.WaitGroup
	start := time.Now()
	total := int(rate * d.Seconds())
	for i := 0; i < total && ctx.Err() == nil; i++ {
		// Paced by "due = start + i/rate", not a ticker per request.
		due := start.Add(time.Duration(float64(i) / rate * float64(time.Second)))
		if w := time.Until(due); w > 0 {
			time.Sleep(w)
		}
		r := reqs[i%len(reqs)]
		wg.Go(func() { res.get(ctx, cl, t.addr, r, due) })
	}
	wg.Wait()
	return res.finish(time.Since(start))
}
