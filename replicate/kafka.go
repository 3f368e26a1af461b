package replicate

import (
	"context"
	"errors"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/regionsync/regionsync/internal/config"
)

// KafkaFigures are the measurements behind a Kafka Status: one entry per
// flow from Status.Source to Status.Target.
type KafkaFigures struct {
	Flows []FlowFigures `json:"flows"`
}

// KafkaOptions configure a Kafka observer.
type KafkaOptions struct {
	Flows []KafkaFlow
	// Budgets returns the budgets a target region is judged against.
	Budgets func(target string) config.Budgets
	// Interval between samples. Default 1s.
	Interval time.Duration
}

// Kafka observes mirror flows from outside: any worker of any region can
// run it and get the same figures, whoever runs the flows. New does no I/O;
// Run connects and samples every Interval.
type Kafka struct {
	opts KafkaOptions
	log  *slog.Logger
	m    *kafkaMetrics
	obs  []*flowObserver

	mu     sync.Mutex
	latest []Status
}

// NewKafka returns an observer of opts.Flows reporting into reg.
func NewKafka(opts KafkaOptions, reg prometheus.Registerer, log *slog.Logger) (*Kafka, error) {
	if opts.Interval <= 0 {
		opts.Interval = time.Second
	}
	if opts.Budgets == nil {
		return nil, errors.New("replicate: KafkaOptions.Budgets is required")
	}
	k := &Kafka{opts: opts, log: log, m: newKafkaMetrics(reg)}
	for _, f := range opts.Flows {
		if f.Selector == nil || f.Naming == nil || f.SourceConfig == nil || f.TargetConfig == nil {
			return nil, errors.New("replicate: flow " + f.Name + ": selector, naming and both client configs are required")
		}
		k.obs = append(k.obs, newFlowObserver(f, log))
	}
	return k, nil
}

// Run samples every Interval until ctx ends, then closes its clients and
// returns nil. Unreachable clusters make figures unknown; they never end Run.
func (k *Kafka) Run(ctx context.Context) error {
	defer k.close()
	t := time.NewTicker(k.opts.Interval)
	defer t.Stop()
	for {
		k.sampleAll(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Sample measures every flow once and returns the statuses. The offset-sync
// log is read to its end first, so a one-shot sample takes at least a
// second; use it from commands, not from a running worker. Clients are
// closed before it returns.
func (k *Kafka) Sample(ctx context.Context) []Status {
	ctx, cancel := context.WithCancel(ctx)
	defer func() { cancel(); k.close() }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		k.sampleAll(ctx)
		if k.settled() || time.Now().After(deadline) || ctx.Err() != nil {
			return k.Statuses()
		}
		select {
		case <-ctx.Done():
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// settled reports whether every flow's tails have caught up.
func (k *Kafka) settled() bool {
	for _, o := range k.obs {
		if o.syncTail == nil || !o.syncTail.caughtUp.Load() || o.hbTail == nil || !o.hbTail.caughtUp.Load() {
			return false
		}
		o.mu.Lock()
		done := o.cp.done
		o.mu.Unlock()
		if !done {
			return false
		}
	}
	return true
}

func (k *Kafka) close() {
	for _, o := range k.obs {
		o.close()
	}
}

// Statuses returns the latest status per (source, target) pair, sorted.
func (k *Kafka) Statuses() []Status {
	k.mu.Lock()
	defer k.mu.Unlock()
	return append([]Status(nil), k.latest...)
}

func (k *Kafka) sampleAll(ctx context.Context) {
	now := time.Now()
	byPair := map[Pair][]FlowFigures{}
	var pairs []Pair
	for _, o := range k.obs {
		start := time.Now()
		ff := o.sample(ctx, now)
		k.m.observeFlow(o.f, ff, time.Since(start))
		if ff.Error != "" {
			k.log.Debug("replicate: flow figures incomplete", "flow", o.f.Name, "err", ff.Error)
		}
		p := Pair{o.f.Source, o.f.Target}
		if _, ok := byPair[p]; !ok {
			pairs = append(pairs, p)
		}
		byPair[p] = append(byPair[p], ff)
	}
	sort.Slice(pairs, func(i, j int) bool { return pairs[i].String() < pairs[j].String() })
	out := make([]Status, 0, len(pairs))
	for _, p := range pairs {
		s := kafkaStatus(p, byPair[p], k.opts.Budgets(p.Target), now)
		k.m.observeStatus(s)
		out = append(out, s)
	}
	k.mu.Lock()
	k.latest = out
	k.mu.Unlock()
}

// kafkaStatus judges the flows of one pair against the target's budgets.
func kafkaStatus(p Pair, flows []FlowFigures, b config.Budgets, now time.Time) Status {
	s := Status{Store: StoreKafka, Source: p.Source, Target: p.Target, ObservedAt: now,
		RPOSeconds: 0, Kafka: &KafkaFigures{Flows: flows}}
	rpo := b.RPOBudget.Std().Seconds()
	for _, f := range flows {
		s.RPOSeconds = worstFigure(s.RPOSeconds, f.LagSeconds)
		lagRecords := Figure(f.LagRecords)
		if !f.RecordLagSeconds.Known() {
			lagRecords = UnknownFigure()
		}
		s.Checks = append(s.Checks,
			UpperBound("lag_seconds", StoreKafka, f.Flow, float64(f.LagSeconds), rpo, "seconds"),
			UpperBound("lag_records", StoreKafka, f.Flow, float64(lagRecords), float64(b.MaxKafkaLagRecords), "records"),
			UpperBound("heartbeat_age", StoreKafka, f.Flow, float64(f.HeartbeatAgeSeconds), rpo, "seconds"),
			UpperBound("checkpoint_age", StoreKafka, f.Flow, float64(f.CheckpointAgeSeconds), b.MaxCheckpointAge.Std().Seconds(), "seconds"),
		)
		if f.Error != "" {
			for i := range s.Checks {
				if c := &s.Checks[i]; c.Subject == f.Flow && c.Result == Unknown {
					c.Reason += ": " + f.Error
				}
			}
		}
	}
	return s
}

// worstFigure is the larger of a and b; unknown wins (fail-safe).
func worstFigure(a, b Figure) Figure {
	if !a.Known() || !b.Known() {
		return UnknownFigure()
	}
	return max(a, b)
}
