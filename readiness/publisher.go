package readiness

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/regionsync/regionsync/consistency"
	"github.com/regionsync/regionsync/internal/config"
	"github.com/regionsync/regionsync/replicate"
	"github.com/regionsync/regionsync/topology"
)

// Sources are what an observer judges regions from. Every func must be
// cheap and safe for concurrent use: they are called each interval.
type Sources struct {
	// Statuses of every store and region pair the observer measures.
	Statuses func() []replicate.Status
	// Topology is the observer's live view: registry, workers, etcd health.
	Topology func() topology.Topology
	// Extra checks per region (for example the latest reconcile); optional.
	Extra func(region string) []Check
}

// PublisherOptions configure a Publisher.
type PublisherOptions struct {
	// Observer is the region whose leader publishes.
	Observer string
	Keys     topology.Keys
	// Regions to judge (every region of the config, including Observer).
	Regions []string
	// ExpectedStores per region: stores that must report a status into it.
	ExpectedStores func(region string) []string
	Budgets        func(region string) config.Budgets
	// Interval between evaluations. Default 1s.
	Interval time.Duration
	// Signer signs verdicts and aggregates; nil publishes them unsigned.
	Signer *Signer
	// Verifier, when set, drops verdicts from etcd that are unsigned or
	// wrongly signed before they are counted.
	Verifier *Verifier
	// Bus receives aggregates (KV) and events; nil publishes to etcd only
	// (SetBus attaches one later, once NATS answers).
	Bus *Bus
}

// Publisher is the observer's leader task: each interval it judges every
// region, writes its verdicts to etcd (lease-bound, fenced), reads every
// observer's verdicts in the same fenced way, aggregates them by majority
// and publishes the aggregates to the NATS KV bucket, with a CloudEvent on
// every state change and an alert when a region stops being READY.
type Publisher struct {
	opts PublisherOptions
	src  Sources
	eval *Evaluator
	log  *slog.Logger
	m    *publisherMetrics
	bus  atomic.Pointer[Bus]
	live atomic.Pointer[Liveness]

	mu       sync.Mutex
	latest   map[string]Aggregate
	rejected map[string]int64 // key → mod revision already logged as not counted

	reports     map[string]consistency.KafkaAuditReport // flow → latest audit report
	cassReports map[string]consistency.CassandraReport  // job → latest Cassandra diff report
	mirrored    string                                  // the active overrides last mirrored to the bucket (keys@revisions)
	mirroredTo  *Bus
}

// NewPublisher returns a publisher; it does no I/O.
func NewPublisher(opts PublisherOptions, src Sources, reg prometheus.Registerer, log *slog.Logger) (*Publisher, error) {
	if opts.Observer == "" || opts.Budgets == nil || src.Statuses == nil || src.Topology == nil {
		return nil, errors.New("readiness: publisher needs an observer, budgets, statuses and topology")
	}
	if opts.Interval <= 0 {
		opts.Interval = time.Second
	}
	if opts.ExpectedStores == nil {
		opts.ExpectedStores = func(string) []string { return nil }
	}
	p := &Publisher{opts: opts, src: src, eval: NewEvaluator(opts.Observer, opts.Budgets), log: log,
		m: newPublisherMetrics(reg), latest: map[string]Aggregate{}, rejected: map[string]int64{}}
	if opts.Bus != nil {
		p.bus.Store(opts.Bus)
	}
	return p, nil
}

// SetBus attaches the NATS bus; aggregates go to it from the next step.
func (p *Publisher) SetBus(b *Bus) { p.bus.Store(b) }

// SetLiveness attaches worker heartbeats: a registered worker not heard
// within HeartbeatTimeout no longer counts as live.
func (p *Publisher) SetLiveness(l *Liveness) { p.live.Store(l) }

// Latest returns the aggregates this publisher computed last, by region.
func (p *Publisher) Latest() map[string]Aggregate {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[string]Aggregate, len(p.latest))
	for k, v := range p.latest {
		out[k] = v
	}
	return out
}

// Task is the topology.LeaderFunc: it publishes every Interval until the
// term ends (ctx cancelled), then returns nil.
func (p *Publisher) Task(ctx context.Context, l *topology.Leader) error {
	// What this process judged in an earlier term is stale: READY needs a
	// full hold period within this one.
	p.eval.Reset()
	t := time.NewTicker(p.opts.Interval)
	defer t.Stop()
	for {
		if err := p.Step(ctx, l); err != nil {
			if errors.Is(err, topology.ErrNotLeader) || ctx.Err() != nil {
				return nil
			}
			p.m.errors.WithLabelValues("step").Inc()
			p.log.Warn("readiness: publish step failed", "observer", p.opts.Observer, "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Step evaluates, writes, aggregates and publishes once.
func (p *Publisher) Step(ctx context.Context, l *topology.Leader) error {
	start := time.Now()
	now := start
	topo := p.src.Topology()
	if h := topo.Health; h != nil && !h.CheckedAt.IsZero() && !h.QuorumReachable {
		// Nothing can be written or read fenced without quorum, and this
		// term will end when the lease does: say so on NATS while we can.
		p.failSafe(ctx, now, "observer "+p.opts.Observer+" cannot reach etcd's quorum: "+h.QuorumError)
		return nil
	}
	err := p.step(ctx, l, topo, now)
	if err != nil && !errors.Is(err, topology.ErrNotLeader) && ctx.Err() == nil {
		p.failSafe(ctx, now, fmt.Sprintf("observer %s cannot publish through etcd: %v", p.opts.Observer, err))
	}
	if err == nil {
		p.m.stepSeconds.Observe(time.Since(start).Seconds())
	}
	return err
}

// failSafe turns every region's aggregate on NATS NOT_READY when this
// observer cannot use etcd: the bucket must not keep saying READY until
// expiry.
func (p *Publisher) failSafe(ctx context.Context, now time.Time, reason string) {
	bus := p.bus.Load()
	if bus == nil {
		return
	}
	for _, region := range p.opts.Regions {
		p.eval.Failed(region)
		ttl := p.opts.Budgets(region).VerdictTTL.Std()
		a := Aggregate{SchemaVersion: SchemaVersion, Region: region, State: NotReady, Reason: reason, Votes: []Vote{}, Verdicts: []Verdict{},
			RPOSeconds: replicate.UnknownFigure(), ObservedAt: now, ExpiresAt: now.Add(ttl), PublishedBy: p.opts.Observer}
		prev, err := bus.PutFailSafe(ctx, a, p.opts.Signer)
		switch {
		case errors.Is(err, ErrStale):
		case err != nil:
			p.m.errors.WithLabelValues("kv").Inc()
			p.log.Warn("readiness: fail-safe verdict not published", "region", region, "err", err)
		default:
			p.changed(ctx, bus, prev, a)
		}
	}
}

// step evaluates, writes, reads and aggregates with etcd, each etcd call
// bounded so a lost quorum cannot stall it.
func (p *Publisher) step(ctx context.Context, l *topology.Leader, topo topology.Topology, now time.Time) error {
	octx, cancel := context.WithTimeout(ctx, max(p.opts.Interval, time.Second))
	defer cancel()
	statuses := p.src.Statuses()
	puts := make([]clientv3.Op, 0, len(p.opts.Regions))
	verdicts := make([]Verdict, 0, len(p.opts.Regions))
	for _, region := range p.opts.Regions {
		v := p.eval.Evaluate(p.inputs(region, now, topo, statuses))
		if p.opts.Signer != nil {
			if err := p.opts.Signer.SignVerdict(&v); err != nil {
				return err
			}
		}
		b, err := json.Marshal(v)
		if err != nil {
			return fmt.Errorf("verdict on %s: %w", region, err)
		}
		puts = append(puts, clientv3.OpPut(p.opts.Keys.Verdict(region, p.opts.Observer), string(b), clientv3.WithLease(l.Lease())))
		verdicts = append(verdicts, v)
	}
	// Every verdict in one fenced transaction, then one fenced read.
	if _, err := l.Txn(octx, nil, puts, nil); err != nil {
		return fmt.Errorf("write verdicts: %w", err)
	}
	for _, v := range verdicts {
		p.m.verdict.observe(v.Region, p.opts.Observer, v.State)
	}
	resp, err := l.Txn(octx, nil, []clientv3.Op{
		clientv3.OpGet(p.opts.Keys.Readiness(), clientv3.WithPrefix()),
		clientv3.OpGet(p.opts.Keys.Overrides(), clientv3.WithPrefix()),
		clientv3.OpGet(consistency.ReportPrefix(p.opts.Keys), clientv3.WithPrefix()),
	}, nil)
	if err != nil {
		return fmt.Errorf("read verdicts: %w", err)
	}
	p.keepReports(resp.Responses[2].GetResponseRange().Kvs)
	byRegion := p.decodeVerdicts(resp.Responses[0].GetResponseRange().Kvs)
	if bus := p.bus.Load(); bus != nil {
		p.mirrorOverrides(ctx, bus, resp.Responses[1].GetResponseRange().Kvs, now)
	}
	for _, region := range p.opts.Regions {
		a := AggregateVerdicts(region, byRegion[region], now, resp.Header.Revision, p.opts.Observer, p.opts.Budgets(region).VerdictTTL.Std())
		if p.opts.Signer != nil {
			if err := p.opts.Signer.SignAggregate(&a); err != nil {
				return err
			}
		}
		p.mu.Lock()
		p.latest[region] = a
		p.mu.Unlock()
		p.m.aggregate.observe(region, "", a.State)
		if bus := p.bus.Load(); bus != nil {
			p.publish(ctx, bus, a)
		}
	}
	return nil
}

// inputs gathers what the observer knows about region.
func (p *Publisher) inputs(region string, now time.Time, topo topology.Topology, statuses []replicate.Status) Inputs {
	in := Inputs{Region: region, Now: now, ExpectedStores: p.opts.ExpectedStores(region)}
	for _, s := range statuses {
		if s.Target == region {
			in.Statuses = append(in.Statuses, s)
		}
	}
	if h := topo.Health; h != nil {
		in.EtcdQuorum, in.EtcdQuorumErr = h.QuorumReachable, h.QuorumError
	} else {
		in.EtcdQuorumErr = "no etcd health measured yet"
	}
	live := p.live.Load()
	for _, w := range topo.Workers {
		if w.Region != region {
			continue
		}
		if alive, ok := live.Alive(region, w.ID, now); ok && !alive {
			continue // registered, but silent on NATS: killed or cut off
		}
		in.Workers++
	}
	if p.src.Extra != nil {
		in.Extra = p.src.Extra(region)
	}
	in.Extra = append(in.Extra, p.reconcileChecks(region, now)...)
	return in
}

// keepReports remembers the latest reconcile reports (read in the step's
// fenced read; the next evaluation uses them).
func (p *Publisher) keepReports(kvs []*mvccpb.KeyValue) {
	kafka := map[string]consistency.KafkaAuditReport{}
	cass := map[string]consistency.CassandraReport{}
	for _, kv := range kvs {
		r, err := consistency.DecodeReport(kv.Value)
		if err != nil {
			continue
		}
		switch r := r.(type) {
		case consistency.KafkaAuditReport:
			kafka[r.Flow] = r
		case consistency.CassandraReport:
			cass[r.Job] = r
		}
	}
	p.mu.Lock()
	p.reports, p.cassReports = kafka, cass
	p.mu.Unlock()
}

// reconcileChecks judges the latest reconcile reports that concern region:
// the Kafka audit of every flow into it, and every Cassandra job comparing
// its DC. Unrepaired divergence fails; the report's age is judged against
// max_since_reconcile, plus the job's own interval and jitter for a
// Cassandra job (a daily job is not stale after two hours). A job without
// a report yet adds no check.
func (p *Publisher) reconcileChecks(region string, now time.Time) []Check {
	p.mu.Lock()
	defer p.mu.Unlock()
	type judged struct {
		target   string
		bad      bool
		why      string
		finished time.Time
		schedule float64 // seconds the next run may take to come, on top of the budget
	}
	var js []judged
	for f, r := range p.reports {
		if r.Target == region {
			bad, why := consistency.Divergence(r)
			js = append(js, judged{f, bad, why, r.FinishedAt, 0})
		}
	}
	for job, r := range p.cassReports {
		if r.RegionA == region || r.RegionB == region {
			bad, why := consistency.CassandraDivergence(r)
			js = append(js, judged{"cassandra:" + job, bad, why, r.FinishedAt, r.ScheduleSeconds})
		}
	}
	sort.Slice(js, func(i, j int) bool { return js[i].target < js[j].target })
	b := p.opts.Budgets(region)
	var out []Check
	for _, j := range js {
		out = append(out,
			replicate.Bool("reconcile_divergence", StoreConsistency, j.target, !j.bad, j.why),
			replicate.UpperBound("since_reconcile", StoreConsistency, j.target, max(0, now.Sub(j.finished).Seconds()), b.MaxSinceReconcile.Std().Seconds()+j.schedule, "seconds"))
	}
	return out
}

// decodeVerdicts parses readiness/<region>/<observer> values; malformed
// or (with a Verifier) unverifiable ones are logged and not counted.
func (p *Publisher) decodeVerdicts(kvs []*mvccpb.KeyValue) map[string][]Verdict {
	out := map[string][]Verdict{}
	for _, kv := range kvs {
		rel := strings.TrimPrefix(string(kv.Key), p.opts.Keys.Readiness())
		region, observer, ok := strings.Cut(rel, "/")
		var v Verdict
		err := json.Unmarshal(kv.Value, &v)
		switch {
		case !ok:
			err = errors.New("key is not readiness/<region>/<observer>")
		case err != nil:
		case v.Region != region || v.Observer != observer:
			err = fmt.Errorf("verdict names region %q observer %q", v.Region, v.Observer)
		case v.SchemaVersion != SchemaVersion:
			err = fmt.Errorf("unknown schema version %d", v.SchemaVersion)
		case p.opts.Verifier != nil:
			err = p.opts.Verifier.VerifyVerdict(v)
		}
		if err != nil {
			p.m.errors.WithLabelValues("verdict_rejected").Inc()
			if p.rejected[string(kv.Key)] != kv.ModRevision { // once per value
				p.rejected[string(kv.Key)] = kv.ModRevision
				p.log.Warn("readiness: verdict not counted", "key", string(kv.Key), "revision", kv.ModRevision, "err", err)
			}
			continue
		}
		out[region] = append(out[region], v)
	}
	for _, vs := range out {
		sort.Slice(vs, func(i, j int) bool { return vs[i].Observer < vs[j].Observer })
	}
	return out
}

// mirrorOverrides copies the active overrides from etcd (the record) to
// the KV bucket (override.<region>) for gate clients, and removes the ones
// that expired or were deleted.
func (p *Publisher) mirrorOverrides(ctx context.Context, bus *Bus, kvs []*mvccpb.KeyValue, now time.Time) {
	active := map[string]Override{}
	sig := ""
	for _, kv := range kvs {
		var o Override
		region := strings.TrimPrefix(string(kv.Key), p.opts.Keys.Overrides())
		if err := json.Unmarshal(kv.Value, &o); err != nil || o.Region != region {
			if p.rejected[string(kv.Key)] != kv.ModRevision {
				p.rejected[string(kv.Key)] = kv.ModRevision
				p.log.Warn("readiness: override ignored", "key", string(kv.Key), "revision", kv.ModRevision, "err", err, "region", o.Region)
			}
			continue
		}
		if o.Active(now) {
			active[region] = o
			sig += fmt.Sprintf("%s@%d;", kv.Key, kv.ModRevision)
		}
	}
	if sig == p.mirrored && bus == p.mirroredTo {
		return // the bucket already holds exactly these
	}
	if err := bus.SyncOverrides(ctx, active); err != nil {
		p.m.errors.WithLabelValues("kv").Inc()
		p.log.Warn("readiness: overrides not mirrored to the KV bucket", "err", err)
		return
	}
	p.mirrored, p.mirroredTo = sig, bus
}

// publish stores a in the KV bucket; the observer whose compare-and-swap
// changed the state sends the CloudEvent (and an alert when the region
// stops being READY). A stale aggregate (another observer published a
// newer one) is dropped.
func (p *Publisher) publish(ctx context.Context, bus *Bus, a Aggregate) {
	prev, err := bus.PutAggregate(ctx, a)
	switch {
	case errors.Is(err, ErrStale):
		return
	case err != nil:
		p.m.errors.WithLabelValues("kv").Inc()
		p.log.Warn("readiness: KV put failed", "region", a.Region, "err", err)
		return
	}
	p.changed(ctx, bus, prev, a)
}

// changed sends the CloudEvent of a state change (and the alert when a
// region stops being READY); nothing when the state did not change.
func (p *Publisher) changed(ctx context.Context, bus *Bus, prev, a Aggregate) {
	if prev.State == a.State {
		return
	}
	ev, err := NewEvent(fmt.Sprintf("readiness-%s-%d", a.Region, a.Revision), "regionsync://"+a.PublishedBy, TypeReadiness,
		a.Region, "aggregate.schema.json", a, a.ObservedAt)
	if err == nil {
		err = bus.Publish(ctx, SubjectReadiness+"."+a.Region, ev)
	}
	if err != nil {
		p.m.errors.WithLabelValues("event").Inc()
		p.log.Warn("readiness: state change event not published", "region", a.Region, "state", a.State, "err", err)
	}
	p.log.Info("readiness: region state changed", "region", a.Region, "from", prev.State, "to", a.State, "reason", a.Reason)
	if prev.State == Ready || (prev.State == "" && a.State != Ready) {
		p.alert(ctx, bus, a, prev.State)
	}
}

// Alert is what regionsync.alerts.readiness carries
// (schemas/alert.schema.json).
type Alert struct {
	Kind     string    `json:"kind"`
	Severity string    `json:"severity"`
	Region   string    `json:"region"`
	Summary  string    `json:"summary"`
	From     State     `json:"from,omitempty"`
	To       State     `json:"to"`
	At       time.Time `json:"at"`
	Revision int64     `json:"revision"`
}

func (p *Publisher) alert(ctx context.Context, bus *Bus, a Aggregate, from State) {
	al := Alert{Kind: "readiness", Severity: "critical", Region: a.Region, From: from, To: a.State, At: a.ObservedAt, Revision: a.Revision,
		Summary: fmt.Sprintf("region %s is %s: %s", a.Region, a.State, a.Reason)}
	ev, err := NewEvent(fmt.Sprintf("alert-readiness-%s-%d", a.Region, a.Revision), "regionsync://"+a.PublishedBy, TypeAlert,
		a.Region, "alert.schema.json", al, a.ObservedAt)
	if err == nil {
		err = bus.Publish(ctx, SubjectAlerts+".readiness", ev)
	}
	if err != nil {
		p.m.errors.WithLabelValues("alert").Inc()
		p.log.Warn("readiness: alert not published", "region", a.Region, "err", err)
	}
}
