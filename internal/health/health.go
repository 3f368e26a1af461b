// Package health probes a process's dependencies (Kafka, etcd, NATS,
// Cassandra, per region) on an interval and reports the result to /readyz and
// as Prometheus metrics. It only says whether a dependency answers; what the
// answer means for failover is readiness' business.
package health

import (
	"context"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// ProbeFunc checks one dependency; it must return within ctx's deadline.
type ProbeFunc func(ctx context.Context) error

// Result is the latest outcome of one probe.
type Result struct {
	Region     string
	Dependency string
	Up         bool
	Err        string // empty when Up
	Latency    time.Duration
	CheckedAt  time.Time // zero until the first probe finished
}

type probe struct {
	region, dep string
	fn          ProbeFunc
}

// Checker runs probes. Construct with New, add probes with Add before Run.
type Checker struct {
	interval, timeout time.Duration
	log               *slog.Logger
	probes            []probe
	mu                sync.Mutex
	results           map[[2]string]Result
	up                *prometheus.GaugeVec
	latency           *prometheus.HistogramVec
	failures          *prometheus.CounterVec
}

// New returns a checker probing every interval with a per-probe timeout.
func New(interval, timeout time.Duration, reg prometheus.Registerer, log *slog.Logger) *Checker {
	c := &Checker{
		interval: interval, timeout: timeout, log: log,
		results: map[[2]string]Result{},
		up: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "regionsync_dependency_up",
			Help: "1 when the last probe of the dependency succeeded, 0 otherwise.",
		}, []string{"region", "dependency"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "regionsync_dependency_probe_duration_seconds",
			Help:    "Duration of dependency probes.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 4, 8),
		}, []string{"region", "dependency"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "regionsync_dependency_probe_failures_total",
			Help: "Dependency probes that failed or timed out.",
		}, []string{"region", "dependency"}),
	}
	reg.MustRegister(c.up, c.latency, c.failures)
	return c
}

// Add registers a probe of dependency dep in region. Not safe after Run.
func (c *Checker) Add(region, dep string, fn ProbeFunc) {
	c.probes = append(c.probes, probe{region, dep, fn})
	c.results[[2]string{region, dep}] = Result{Region: region, Dependency: dep, Err: "not probed yet"}
	c.up.WithLabelValues(region, dep).Set(0)
}

// Run probes all dependencies at once, then every interval, until ctx is
// cancelled; it returns nil then. Probes run concurrently, each bounded by
// the timeout, so one hung dependency does not delay the others.
func (c *Checker) Run(ctx context.Context) error {
	t := time.NewTicker(c.interval)
	defer t.Stop()
	for {
		c.probeAll(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

func (c *Checker) probeAll(ctx context.Context) {
	var wg sync.WaitGroup
	for _, p := range c.probes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.probeOne(ctx, p)
		}()
	}
	wg.Wait()
}

func (c *Checker) probeOne(ctx context.Context, p probe) {
	pctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	start := time.Now()
	err := p.fn(pctx)
	if ctx.Err() != nil {
		return // shutting down: not a dependency failure
	}
	r := Result{Region: p.region, Dependency: p.dep, Up: err == nil, Latency: time.Since(start), CheckedAt: time.Now()}
	c.latency.WithLabelValues(p.region, p.dep).Observe(r.Latency.Seconds())
	if err != nil {
		r.Err = err.Error()
		c.failures.WithLabelValues(p.region, p.dep).Inc()
		c.up.WithLabelValues(p.region, p.dep).Set(0)
	} else {
		c.up.WithLabelValues(p.region, p.dep).Set(1)
	}
	c.mu.Lock()
	prev := c.results[[2]string{p.region, p.dep}]
	c.results[[2]string{p.region, p.dep}] = r
	c.mu.Unlock()
	if prev.Up != r.Up || prev.CheckedAt.IsZero() {
		if r.Up {
			c.log.Info("dependency up", "region", p.region, "dependency", p.dep, "latency", r.Latency)
		} else {
			c.log.Warn("dependency down", "region", p.region, "dependency", p.dep, "err", r.Err)
		}
	}
}

// Results returns the latest result of every probe, sorted by region then
// dependency.
func (c *Checker) Results() []Result {
	c.mu.Lock()
	out := make([]Result, 0, len(c.results))
	for _, r := range c.results {
		out = append(out, r)
	}
	c.mu.Unlock()
	sort.Slice(out, func(i, j int) bool {
		if out[i].Region != out[j].Region {
			return out[i].Region < out[j].Region
		}
		return out[i].Dependency < out[j].Dependency
	})
	return out
}

// Ready reports whether every dependency answered its last probe, with one
// entry per "region/dependency": "" when up, else the error. It fits
// httpserver.ReadyFunc.
func (c *Checker) Ready() (bool, map[string]string) {
	ok, detail := true, map[string]string{}
	for _, r := range c.Results() {
		detail[r.Region+"/"+r.Dependency] = r.Err
		ok = ok && r.Up
	}
	return ok, detail
}
