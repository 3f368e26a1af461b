package replicate

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/regionsync/regionsync/internal/config"
)

// CassandraOptions configure a Cassandra observer.
type CassandraOptions struct {
	// DCs, one per region with Cassandra. Every ordered pair of them gets a
	// Status.
	DCs []CassandraDC
	// Budgets returns the budgets a target region is judged against.
	Budgets func(target string) config.Budgets
	// Interval between samples. Default 1s.
	Interval time.Duration
	// ProbeTimeout per node probe. Default 1s: with a 1s interval a node
	// that stops answering shows as down within 2s.
	ProbeTimeout time.Duration
	// RepairInterval between reads of system_distributed.repair_history.
	// Default 1m.
	RepairInterval time.Duration
	// LastReconcile, when set, returns when keyspace was last reconciled
	// clean between the two DCs (zero: never); consistency/ provides it.
	LastReconcile func(keyspace, sourceDC, targetDC string) time.Time
}

// CassandraFigures are the measurements behind a Cassandra Status: the
// target DC's nodes and keyspaces, and the hints the source DC holds for it.
type CassandraFigures struct {
	SourceDC string `json:"sourceDc"`
	TargetDC string `json:"targetDc"`
	// Error when the target or source DC could not be reached at all.
	Error     string              `json:"error,omitempty"`
	Nodes     []NodeFigures       `json:"nodes"`
	Keyspaces []KeyspaceFigures   `json:"keyspaces"`
	Hints     HintFigures         `json:"pendingHints"`
	Schema    SchemaAgreementView `json:"schema"`
}

// KeyspaceFigures are one keyspace's availability in the target DC and its
// repair age.
type KeyspaceFigures struct {
	Availability
	// Error when the keyspace's replication is unknown (missing keyspace,
	// not NetworkTopologyStrategy).
	Error              string `json:"error,omitempty"`
	SinceRepairSeconds Figure `json:"sinceRepairSeconds"`
}

// SchemaAgreementView: the distinct schema versions of the nodes that
// answered, across all DCs.
type SchemaAgreementView struct {
	Agreement bool     `json:"agreement"`
	Versions  []string `json:"versions"`
}

// Cassandra observes the multi-DC replication of the configured keyspaces.
// New does no I/O; Run connects (one DC-filtered session per DC) and
// samples every Interval.
type Cassandra struct {
	opts   CassandraOptions
	log    *slog.Logger
	m      *cassMetrics
	dcs    []*dcSession
	repair *repairReader

	mu     sync.Mutex
	latest []Status
}

// NewCassandra returns an observer of opts.DCs reporting into reg.
func NewCassandra(opts CassandraOptions, reg prometheus.Registerer, log *slog.Logger) (*Cassandra, error) {
	if opts.Interval <= 0 {
		opts.Interval = time.Second
	}
	if opts.ProbeTimeout <= 0 {
		opts.ProbeTimeout = time.Second
	}
	if opts.RepairInterval <= 0 {
		opts.RepairInterval = time.Minute
	}
	if opts.Budgets == nil {
		return nil, errors.New("replicate: CassandraOptions.Budgets is required")
	}
	c := &Cassandra{opts: opts, log: log, m: newCassMetrics(reg), repair: newRepairReader(opts.RepairInterval)}
	for _, dc := range opts.DCs {
		if dc.Cluster == nil || dc.DC == "" || dc.Region == "" {
			return nil, fmt.Errorf("replicate: cassandra dc %q of region %q: region, dc and cluster config are required", dc.DC, dc.Region)
		}
		c.dcs = append(c.dcs, &dcSession{dc: dc, probeTimeout: opts.ProbeTimeout})
	}
	return c, nil
}

// Run samples every Interval until ctx ends, then closes its sessions and
// returns nil. Unreachable DCs make figures unknown; they never end Run.
func (c *Cassandra) Run(ctx context.Context) error {
	defer c.close()
	t := time.NewTicker(c.opts.Interval)
	defer t.Stop()
	for {
		c.sampleAll(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Sample measures once and returns the statuses; sessions are closed
// before it returns.
func (c *Cassandra) Sample(ctx context.Context) []Status {
	defer c.close()
	c.sampleAll(ctx)
	return c.Statuses()
}

// Statuses returns the latest status per (source, target) pair, sorted.
func (c *Cassandra) Statuses() []Status {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Status(nil), c.latest...)
}

func (c *Cassandra) close() {
	for _, d := range c.dcs {
		d.close()
	}
}

func (c *Cassandra) sampleAll(ctx context.Context) {
	start, now := time.Now(), time.Now()
	views := make([]dcView, len(c.dcs))
	var wg sync.WaitGroup
	for i, d := range c.dcs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			views[i] = d.sample(ctx, now)
			if views[i].err != nil {
				c.log.Debug("replicate: cassandra dc unreachable", "dc", d.dc.DC, "err", views[i].err)
			}
		}()
	}
	wg.Wait()
	if ctx.Err() != nil {
		return
	}
	w := c.merge(views)
	c.repair.refresh(ctx, c.dcs, w.keyspaces, now)
	var out []Status
	for i, src := range c.dcs {
		for j, dst := range c.dcs {
			if i == j {
				continue
			}
			s := c.pairStatus(src.dc, dst.dc, views[i], views[j], w, now)
			c.m.observePair(s)
			out = append(out, s)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		return Pair{out[i].Source, out[i].Target}.String() < Pair{out[j].Source, out[j].Target}.String()
	})
	c.m.observeWorld(w, views, c.dcs)
	c.m.sampleSeconds.Observe(time.Since(start).Seconds())
	c.mu.Lock()
	c.latest = out
	c.mu.Unlock()
}

// world is what all DCs' views say together.
type world struct {
	ring      *ring
	ks        map[string]map[string]int
	ksErr     map[string]string
	up        map[string]bool
	gossip    map[string]string
	schema    SchemaAgreementView
	keyspaces []string // watched, sorted
}

func (c *Cassandra) merge(views []dcView) world {
	w := world{up: map[string]bool{}, gossip: map[string]string{}}
	versions := map[string]bool{}
	for _, v := range views {
		if w.ring == nil && v.ring != nil {
			w.ring, w.ks, w.ksErr = v.ring, v.ks, v.ksErr
		}
		for id, st := range v.gossip {
			w.gossip[id] = st
		}
	}
	for i := range views {
		for k := range views[i].nodes {
			n := &views[i].nodes[k]
			// A node that answers but announced anything but NORMAL in
			// gossip (shutdown, LEAVING, …) does not serve.
			if st, ok := w.gossip[n.HostID]; n.Up && ok && st != "" && st != "NORMAL" {
				n.Up, n.Reason = false, "gossip status "+st
			}
			if n.Up {
				w.up[n.HostID] = true
				versions[n.SchemaVersion] = true
			}
		}
	}
	for v := range versions {
		w.schema.Versions = append(w.schema.Versions, v)
	}
	sort.Strings(w.schema.Versions)
	w.schema.Agreement = len(w.schema.Versions) == 1
	seen := map[string]bool{}
	for _, d := range c.dcs {
		for _, k := range d.dc.Keyspaces {
			if !seen[k] {
				seen[k] = true
				w.keyspaces = append(w.keyspaces, k)
			}
		}
	}
	sort.Strings(w.keyspaces)
	return w
}

// pairStatus judges target DC dst (and the hints src holds for it) against
// dst's budgets.
func (c *Cassandra) pairStatus(src, dst CassandraDC, sv, dv dcView, w world, now time.Time) Status {
	b := c.opts.Budgets(dst.Region)
	f := &CassandraFigures{SourceDC: src.DC, TargetDC: dst.DC, Nodes: dv.nodes, Schema: w.schema,
		Hints: HintFigures{Bytes: UnknownFigure(), OldestAgeSeconds: UnknownFigure()}}
	s := Status{Store: StoreCassandra, Source: src.Region, Target: dst.Region, ObservedAt: now,
		RPOSeconds: UnknownFigure(), Cassandra: f}
	subject := dst.DC
	reach := func(dc string, err error) Check {
		msg := ""
		if err != nil {
			msg = fmt.Sprintf("cannot reach Cassandra dc %s: %v", dc, err)
		}
		return Bool("dc_reachable", StoreCassandra, dc, err == nil, msg)
	}
	s.Checks = append(s.Checks, reach(dst.DC, dv.err), reach(src.DC, sv.err))
	if dv.err != nil || sv.err != nil || w.ring == nil {
		f.Error = errors.Join(dv.err, sv.err).Error()
		if w.ring == nil && f.Error == "" {
			f.Error = "no node answered with the ring (system.local, system.peers_v2)"
		}
		return s
	}
	for _, ks := range w.keyspaces {
		kf := KeyspaceFigures{Availability: Availability{Keyspace: ks, DC: dst.DC}, SinceRepairSeconds: c.repair.since(ks, now)}
		sub := ks + "@" + dst.DC
		rfs, ok := w.ks[ks]
		switch {
		case !ok && w.ksErr[ks] != "":
			kf.Error = w.ksErr[ks]
		case !ok:
			kf.Error = "keyspace does not exist"
		default:
			kf.Availability = w.ring.availability(ks, dst.DC, rfs[dst.DC], w.up)
		}
		f.Keyspaces = append(f.Keyspaces, kf)
		if kf.Error != "" {
			s.Checks = append(s.Checks, Bool("keyspace_replication", StoreCassandra, sub, false, fmt.Sprintf("keyspace %s: %s", ks, kf.Error)))
			continue
		}
		required := slices.Contains(b.RequireLocalQuorum, ks)
		s.Checks = append(s.Checks,
			rangesCheck("local_quorum", sub, kf.Availability, kf.QuorumUnavailable, required),
			rangesCheck("local_one", sub, kf.Availability, kf.OneUnavailable, true),
			sinceCheck("since_repair", sub, kf.SinceRepairSeconds, b.MaxSinceRepair.Std(), "no successful repair of "+ks+" is recorded in system_distributed.repair_history"))
		if c.opts.LastReconcile != nil {
			since := Figure(math.Inf(1))
			if t := c.opts.LastReconcile(ks, src.DC, dst.DC); !t.IsZero() {
				since = Figure(now.Sub(t).Seconds())
			}
			s.Checks = append(s.Checks, sinceCheck("since_reconcile", sub, since, b.MaxSinceReconcile.Std(), "no clean reconcile of "+ks+" between "+src.DC+" and "+dst.DC+" is recorded"))
		}
	}
	schemaMsg := ""
	if !w.schema.Agreement {
		schemaMsg = fmt.Sprintf("nodes that answer disagree on the schema: versions %v", w.schema.Versions)
	}
	s.Checks = append(s.Checks, Bool("schema_agreement", StoreCassandra, "cluster", w.schema.Agreement, schemaMsg))
	// Hints src holds for dst, and dst's nodes down: together the window
	// of writes accepted in src that dst does not have.
	if h, ok := sv.hints[dst.DC]; ok {
		f.Hints = *h
	} else if h := sv.hints[""]; h != nil {
		f.Hints = *h
		f.Hints.OldestAgeSeconds = 0
	}
	rpo := f.Hints.OldestAgeSeconds
	if f.Hints.HostsFailed > 0 || f.Hints.HostsAsked == 0 {
		rpo = UnknownFigure()
	}
	for _, n := range dv.nodes {
		if !n.Up && n.DownSince != nil {
			rpo = worstFigure(rpo, Figure(now.Sub(*n.DownSince).Seconds()))
		}
	}
	s.RPOSeconds = rpo
	s.Checks = append(s.Checks,
		UpperBound("unreplicated_window", StoreCassandra, src.DC+"→"+subject, float64(rpo), b.RPOBudget.Std().Seconds(), "seconds"),
		UpperBound("pending_hint_files", StoreCassandra, src.DC+"→"+subject, float64(f.Hints.Files), float64(b.MaxPendingHints), "files"))
	return s
}

// rangesCheck: value token ranges cannot be served at a consistency level;
// failing when required, else a warning.
func rangesCheck(name, subject string, a Availability, unavailable int, required bool) Check {
	c := Check{Name: name, Store: StoreCassandra, Subject: subject, Value: float64(unavailable), Threshold: 0, Unit: "ranges", Result: Pass}
	if unavailable == 0 {
		return c
	}
	c.Result = Warn
	if required {
		c.Result = Fail
	}
	c.Reason = fmt.Sprintf("%s: %d of %d token ranges cannot be served at %s in %s (replication factor %d there)",
		a.Keyspace, unavailable, a.Ranges, map[string]string{"local_quorum": "LOCAL_QUORUM", "local_one": "LOCAL_ONE"}[name], a.DC, a.ReplicationFactor)
	return c
}

// sinceCheck judges an age in seconds: +Inf means "never" and fails with
// the never reason, NaN is unknown; a budget ≤ 0 disables the check.
func sinceCheck(name, subject string, since Figure, budget time.Duration, never string) Check {
	switch {
	case budget <= 0:
		return Check{Name: name, Store: StoreCassandra, Subject: subject, Unit: "seconds", Result: Pass}
	case math.IsInf(float64(since), 1):
		return Check{Name: name, Store: StoreCassandra, Subject: subject, Threshold: budget.Seconds(), Unit: "seconds", Result: Fail, Reason: never}
	}
	return UpperBound(name, StoreCassandra, subject, float64(since), budget.Seconds(), "seconds")
}
