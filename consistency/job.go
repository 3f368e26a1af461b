package consistency

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/regionsync/regionsync/topology"
)

// AuditJob is the region leader's continuous Kafka audit of the flows into
// its region: an Auditor per flow for the whole term, and every Interval a
// report of the windows judged since the last one, written to etcd at
// ReportKey (fenced by leadership; the latest per flow) and handed to
// Publish (NATS). One term runs one job; a new term starts a new one, so a
// run is never started twice.
type AuditJob struct {
	Flows []AuditorOptions // OnWindow is set by the job
	// ExactlyOnce names the flows whose duplicates count as divergence.
	ExactlyOnce map[string]bool
	Keys        topology.Keys
	// Interval between reports. Default 1m. Jitter delays the first report
	// by a random part of itself.
	Interval, Jitter time.Duration
	// Metrics, optional.
	Metrics *Metrics
	// Publish, when set, receives every report (the NATS side).
	Publish func(context.Context, KafkaAuditReport)
	Log     *slog.Logger
}

// ReportKey is where the latest report of flow's Kafka audit is kept.
func ReportKey(k topology.Keys, flow string) string {
	return k.Prefix + "reconcile/kafka-audit/" + flow
}

// ReportPrefix holds every stored reconcile report.
func ReportPrefix(k topology.Keys) string { return k.Prefix + "reconcile/" }

// Task is the topology.LeaderFunc.
func (j *AuditJob) Task(ctx context.Context, l *topology.Leader) error {
	if j.Interval <= 0 {
		j.Interval = time.Minute
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	type acc struct {
		mu      sync.Mutex
		windows []WindowResult
		since   time.Time
	}
	accs := make([]*acc, len(j.Flows))
	for i, o := range j.Flows {
		a := &acc{since: time.Now().UTC()}
		accs[i] = a
		o.OnWindow = func(w WindowResult) {
			a.mu.Lock()
			a.windows = append(a.windows, w)
			a.mu.Unlock()
		}
		au, err := NewAuditor(o, j.Log)
		if err != nil {
			return err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				if err := au.Run(ctx); err != nil {
					j.Log.Warn("consistency: audit stopped; restarting", "flow", o.Flow, "err", err)
					select {
					case <-ctx.Done():
					case <-time.After(5 * time.Second):
					}
				}
			}
		}()
	}
	if j.Jitter > 0 {
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(rand.N(j.Jitter)):
		}
	}
	t := time.NewTicker(j.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		for i, o := range j.Flows {
			a := accs[i]
			a.mu.Lock()
			ws, since := a.windows, a.since
			a.windows, a.since = nil, time.Now().UTC()
			a.mu.Unlock()
			r := KafkaAuditReport{SchemaVersion: 1, Kind: "kafka-audit", Flow: o.Flow, Source: o.Source, Target: o.Target,
				ExactlyOnce: j.ExactlyOnce[o.Flow], StartedAt: since, FinishedAt: time.Now().UTC(), Divergent: []WindowResult{}, Errors: []string{}}
			r.Add(ws, 0)
			j.Metrics.observe(r)
			if err := j.store(ctx, l, r); err != nil {
				j.Log.Warn("consistency: audit report not stored", "flow", o.Flow, "err", err)
			}
			if j.Publish != nil {
				j.Publish(ctx, r)
			}
		}
	}
}

func (j *AuditJob) store(ctx context.Context, l *topology.Leader, r KafkaAuditReport) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	_, err = l.Put(ctx, ReportKey(j.Keys, r.Flow), string(b))
	return err
}

// Divergence says whether a report shows unrepaired divergence: records
// missing on the target or matching nothing on the source (data lost or
// altered), or duplicated where the flow promised exactly-once; and why.
// At-least-once flows may duplicate after a restart by design.
func Divergence(r KafkaAuditReport) (bool, string) {
	bad := r.Missing + r.Unexpected
	if r.ExactlyOnce {
		bad += r.Duplicated
	}
	if bad == 0 && len(r.Errors) == 0 {
		return false, ""
	}
	return true, fmt.Sprintf("audit of flow %s: %d missing, %d unexpected, %d duplicated, %d reordered records in %d windows; %d errors",
		r.Flow, r.Missing, r.Unexpected, r.Duplicated, r.Reordered, len(r.Divergent), len(r.Errors))
}
