package consistency

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/IBM/sarama"

	"github.com/regionsync/regionsync/mirror"
)

// AuditorOptions configure a continuous audit of one flow.
type AuditorOptions struct {
	Flow           string
	Source, Target string // region aliases
	SourceConfig   *sarama.Config
	TargetConfig   *sarama.Config
	SourceBrokers  []string
	TargetBrokers  []string
	Selector       *mirror.Selector
	Naming         mirror.Naming
	// Window and Settle as in AuditOptions (defaults 1m and 2m).
	Window, Settle time.Duration
	// Tick between judgements and topic refreshes. Default 1s.
	Tick time.Duration
	// OnWindow receives every judged window, clean or not.
	OnWindow func(WindowResult)
}

// Auditor follows a flow's source topics and their copies on the target
// as they are written, reading each record once per side: it buffers the
// digests of the open windows and judges each window once it is closed and
// the mirror is past it. It starts at the window that was open Settle ago,
// so history before that is left to AuditTopic.
type Auditor struct {
	o   AuditorOptions
	log *slog.Logger

	mu    sync.Mutex
	parts map[tpKey]*partAudit
}

type tpKey struct {
	topic string
	part  int32
}

// partAudit is one partition's open windows on both sides.
type partAudit struct {
	src, dst map[time.Time][]record
	newest   time.Time // newest timestamp read on the target
	judged   time.Time // windows starting before this were judged
}

// NewAuditor returns an auditor; Run does the I/O.
func NewAuditor(o AuditorOptions, log *slog.Logger) (*Auditor, error) {
	if o.Selector == nil || o.Naming == nil || o.SourceConfig == nil || o.TargetConfig == nil || o.OnWindow == nil {
		return nil, errors.New("consistency: auditor needs a selector, a naming, both client configs and OnWindow")
	}
	if o.Window <= 0 {
		o.Window = time.Minute
	}
	if o.Settle <= 0 {
		o.Settle = 2 * time.Minute
	}
	if o.Tick <= 0 {
		o.Tick = time.Second
	}
	return &Auditor{o: o, log: log, parts: map[tpKey]*partAudit{}}, nil
}

// Run audits until ctx ends; it returns nil then, or an error when a
// cluster cannot be reached at start.
func (a *Auditor) Run(ctx context.Context) error {
	sc, tc := *a.o.SourceConfig, *a.o.TargetConfig
	sc.Consumer.IsolationLevel, tc.Consumer.IsolationLevel = sarama.ReadCommitted, sarama.ReadCommitted
	src, err := sarama.NewClient(a.o.SourceBrokers, &sc)
	if err != nil {
		return fmt.Errorf("consistency: audit %s: source: %w", a.o.Flow, err)
	}
	defer src.Close()
	dst, err := sarama.NewClient(a.o.TargetBrokers, &tc)
	if err != nil {
		return fmt.Errorf("consistency: audit %s: target: %w", a.o.Flow, err)
	}
	defer dst.Close()
	srcCons, err := sarama.NewConsumerFromClient(src)
	if err != nil {
		return err
	}
	defer srcCons.Close()
	dstCons, err := sarama.NewConsumerFromClient(dst)
	if err != nil {
		return err
	}
	defer dstCons.Close()
	var wg sync.WaitGroup
	defer wg.Wait()
	t := time.NewTicker(a.o.Tick)
	defer t.Stop()
	for {
		a.follow(ctx, &wg, src, dst, srcCons, dstCons)
		a.judge(time.Now())
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// follow starts reading every new partition of the selected topics on both
// sides, from the window that was open Settle ago.
func (a *Auditor) follow(ctx context.Context, wg *sync.WaitGroup, src, dst sarama.Client, srcCons, dstCons sarama.Consumer) {
	if err := src.RefreshMetadata(); err != nil {
		a.log.Warn("consistency: audit: source metadata", "flow", a.o.Flow, "err", err)
		return
	}
	topics, err := src.Topics()
	if err != nil {
		return
	}
	start := time.Now().Add(-a.o.Settle).Truncate(a.o.Window)
	for _, topic := range topics {
		if topic == mirror.HeartbeatTopic || !a.o.Selector.Match(topic) || a.o.Naming.FromCluster(a.o.Target, topic) {
			continue
		}
		ps, err := src.Partitions(topic)
		if err != nil {
			continue
		}
		remote := a.o.Naming.Remote(a.o.Source, topic)
		for _, p := range ps {
			k := tpKey{topic, p}
			a.mu.Lock()
			_, known := a.parts[k]
			a.mu.Unlock()
			if known {
				continue
			}
			sp, err := consumeFrom(src, srcCons, topic, p, start)
			if err != nil {
				continue
			}
			dp, err := consumeFrom(dst, dstCons, remote, p, start)
			if err != nil {
				sp.Close()
				continue // the remote topic is not there yet; next tick
			}
			pa := &partAudit{src: map[time.Time][]record{}, dst: map[time.Time][]record{}, judged: start}
			a.mu.Lock()
			a.parts[k] = pa
			a.mu.Unlock()
			wg.Add(2)
			go func() { defer wg.Done(); a.read(ctx, sp, pa, false) }()
			go func() { defer wg.Done(); a.read(ctx, dp, pa, true) }()
		}
	}
}

// consumeFrom starts at the first offset stamped at or after t.
func consumeFrom(c sarama.Client, cons sarama.Consumer, topic string, p int32, t time.Time) (sarama.PartitionConsumer, error) {
	off, err := c.GetOffset(topic, p, t.UnixMilli())
	if err != nil {
		return nil, err
	}
	if off < 0 {
		off = sarama.OffsetNewest
	}
	return cons.ConsumePartition(topic, p, off)
}

func (a *Auditor) read(ctx context.Context, pc sarama.PartitionConsumer, pa *partAudit, target bool) {
	defer pc.Close()
	for {
		select {
		case <-ctx.Done():
			return
		case err := <-pc.Errors():
			a.log.Warn("consistency: audit: read", "flow", a.o.Flow, "err", err)
		case m := <-pc.Messages():
			r := record{offset: m.Offset, ts: m.Timestamp, digest: Digest(m.Key, m.Value, m.Headers)}
			w := r.ts.Truncate(a.o.Window)
			a.mu.Lock()
			if w.Before(pa.judged) {
				// A record of a window already judged (late or re-sent)
				// is judged with the oldest open window.
				w = pa.judged
			}
			if target {
				pa.dst[w] = append(pa.dst[w], r)
				if r.ts.After(pa.newest) {
					pa.newest = r.ts
				}
			} else {
				pa.src[w] = append(pa.src[w], r)
			}
			a.mu.Unlock()
		}
	}
}

// judge compares every window that is closed and that the mirror is past.
func (a *Auditor) judge(now time.Time) {
	a.mu.Lock()
	var out []WindowResult
	for k, pa := range a.parts {
		starts := map[time.Time]bool{}
		for w := range pa.src {
			starts[w] = true
		}
		for w := range pa.dst {
			starts[w] = true
		}
		for w := range starts {
			end := w.Add(a.o.Window)
			if end.After(now.Add(-a.o.Settle)) && pa.newest.Before(end) {
				continue
			}
			res := WindowResult{Topic: k.topic, RemoteTopic: a.o.Naming.Remote(a.o.Source, k.topic), Partition: k.part,
				Start: w.UTC(), End: end.UTC(), Source: side(pa.src[w]), Target: side(pa.dst[w])}
			res.Missing, res.Duplicated, res.Reordered, res.Unexpected = compareWindow(pa.src[w], pa.dst[w])
			out = append(out, res)
			delete(pa.src, w)
			delete(pa.dst, w)
			if end.After(pa.judged) {
				pa.judged = end
			}
		}
	}
	a.mu.Unlock()
	for _, r := range out {
		a.o.OnWindow(r)
	}
}
