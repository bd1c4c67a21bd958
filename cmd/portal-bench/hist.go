package main

import (
	"math"
	"sync/atomic"
	"time"
)

// hist is a log-linear latency histogram safe for concurrent use: 1 µs
// buckets up to 1 ms, then buckets 2% wide up to about 10 minutes.
type hist struct {
	counts [histBuckets]atomic.Uint64
	n      atomic.Uint64
	max    atomic.Int64 // ns
}

const (
	histLinear  = 1000 // 1 µs buckets below 1 ms
	histBuckets = histLinear + 700
	histGrowth  = 1.02
)

var logGrowth = math.Log(histGrowth)

func bucketOf(d time.Duration) int {
	us := d.Microseconds()
	if us < 0 {
		us = 0
	}
	if us < histLinear {
		return int(us)
	}
	i := histLinear + int(math.Log(float64(us)/histLinear)/logGrowth)
	return min(i, histBuckets-1)
}

// upper returns the largest duration bucket i holds.
func upper(i int) time.Duration {
	if i < histLinear {
		return time.Duration(i+1) * time.Microsecond
	}
	return time.Duration(histLinear*math.Pow(histGrowth, float64(i-histLinear+1))) * time.Microsecond
}

func (h *hist) record(d time.Duration) {
	h.counts[bucketOf(d)].Add(1)
	h.n.Add(1)
	for {
		m := h.max.Load()
		if int64(d) <= m || h.max.CompareAndSwap(m, int64(d)) {
			return
		}
	}
}

// quantile returns the bucket bound at or below which a fraction q of the
// samples lie (0 with no samples); the max is exact.
func (h *hist) quantile(q float64) time.Duration {
	n := h.n.Load()
	if n == 0 {
		return 0
	}
	if q >= 1 {
		return time.Duration(h.max.Load())
	}
	rank := uint64(math.Ceil(q * float64(n)))
	var seen uint64
	for i := range h.counts {
		seen += h.counts[i].Load()
		if seen >= rank {
			return min(upper(i), time.Duration(h.max.Load()))
		}
	}
	return time.Duration(h.max.Load())
}

// latency is a histogram's summary, in milliseconds, for the report.
type latency struct {
	N    uint64  `json:"n"`
	P50  float64 `json:"p50_ms"`
	P99  float64 `json:"p99_ms"`
	P999 float64 `json:"p999_ms"`
	Max  float64 `json:"max_ms"`
}

func ms(d time.Duration) float64 { return math.Round(float64(d)/1e3) / 1e3 }

func (h *hist) summary() latency {
	return latency{N: h.n.Load(), P50: ms(h.quantile(0.5)), P99: ms(h.quantile(0.99)),
		P999: ms(h.quantile(0.999)), Max: ms(h.quantile(1))}
}
