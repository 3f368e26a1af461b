package replicate

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"sort"
	"sync"
	"time"

	"github.com/IBM/sarama"

	"github.com/regionsync/regionsync/mirror"
)

// KafkaFlow describes a mirror flow to observe. The observer needs no access
// to the process running the flow: it reads the source cluster's offsets and
// the target cluster's offset-sync and heartbeat topics.
type KafkaFlow struct {
	Name           string
	Source, Target string // region aliases
	// SourceConfig and TargetConfig carry TLS and SASL; they are copied.
	SourceConfig, TargetConfig   *sarama.Config
	SourceBrokers, TargetBrokers []string
	Selector                     *mirror.Selector
	Naming                       mirror.Naming
}

// FlowFigures are one flow's measurements.
type FlowFigures struct {
	Flow string `json:"flow"`
	// LagRecords: records on the source not yet copied, summed over partitions.
	LagRecords int64 `json:"lagRecords"`
	// RecordLagSeconds: now minus the timestamp of the oldest source record
	// not yet copied (0 when every partition is copied).
	RecordLagSeconds Figure `json:"recordLagSeconds"`
	// HeartbeatAgeSeconds: now minus the send time of the newest heartbeat of
	// the flow found on the target. Grows by a second per second when the
	// flow stalls, even without traffic.
	HeartbeatAgeSeconds Figure `json:"heartbeatAgeSeconds"`
	// LagSeconds: the larger of the two above; the flow's data-loss window.
	LagSeconds Figure `json:"lagSeconds"`
	// CheckpointAgeSeconds: how long the oldest consumer-group offset that
	// the target should have (translated from the source) has been missing
	// or behind there; 0 when all are current.
	CheckpointAgeSeconds Figure             `json:"checkpointAgeSeconds"`
	StaleCheckpoints     int                `json:"staleCheckpoints"`
	Partitions           []PartitionFigures `json:"partitions"`
	// Error says why some figure is unknown.
	Error string `json:"error,omitempty"`
}

// PartitionFigures are one source partition's measurements.
type PartitionFigures struct {
	Topic      string `json:"topic"`
	Partition  int32  `json:"partition"`
	HighWater  int64  `json:"highWater"`
	Copied     int64  `json:"copied"` // next source offset not yet on the target
	LagRecords int64  `json:"lagRecords"`
	LagSeconds Figure `json:"lagSeconds"`
}

type cachedTime struct {
	offset int64
	ts     time.Time
}

// flowObserver measures one flow. sample is called from one goroutine; the
// tails update copied, translator and lastHB under mu.
type flowObserver struct {
	f   KafkaFlow
	log *slog.Logger

	src, dst           sarama.Client
	srcAdmin, dstAdmin sarama.ClusterAdmin
	srcCons, dstCons   sarama.Consumer
	syncTail, hbTail   *tail
	topicsAt           time.Time

	mu         sync.Mutex
	copied     map[tp]int64 // source partition → next upstream offset not copied
	translator *mirror.Translator
	lastHB     time.Time

	tsCache    map[tp]cachedTime
	staleSince map[string]time.Time // "group topic/partition" → first seen stale; only the checkpoint pass touches it

	// The checkpoint pass (consumer groups on both clusters) is slow on a
	// cluster with many groups, so it runs beside the samples, one at a
	// time, and samples report its latest result.
	cpWG sync.WaitGroup
	cp   checkpointResult
}

type checkpointResult struct {
	running bool
	done    bool      // a pass finished
	stale   int       // stale translated offsets
	oldest  time.Time // when the oldest of them was first seen stale
	err     error
}

func newFlowObserver(f KafkaFlow, log *slog.Logger) *flowObserver {
	return &flowObserver{f: f, log: log, copied: map[tp]int64{}, translator: mirror.NewTranslator(),
		tsCache: map[tp]cachedTime{}, staleSince: map[string]time.Time{}}
}

// connect opens the clients; a failure leaves the observer unconnected and
// is retried by the next sample.
func (o *flowObserver) connect() error {
	if o.src != nil {
		return nil
	}
	sc := *o.f.SourceConfig
	sc.Consumer.Return.Errors = true
	sc.Consumer.Fetch.Default = 16 << 10 // reads single records for timestamps
	tc := *o.f.TargetConfig
	tc.Consumer.Return.Errors = true
	tc.Consumer.IsolationLevel = sarama.ReadCommitted
	src, err := sarama.NewClient(o.f.SourceBrokers, &sc)
	if err != nil {
		return fmt.Errorf("source %q: %w", o.f.Source, err)
	}
	dst, err := sarama.NewClient(o.f.TargetBrokers, &tc)
	if err != nil {
		src.Close()
		return fmt.Errorf("target %q: %w", o.f.Target, err)
	}
	o.src, o.dst = src, dst
	// None of these do I/O beyond what the clients already did.
	o.srcAdmin, _ = sarama.NewClusterAdminFromClient(src)
	o.dstAdmin, _ = sarama.NewClusterAdminFromClient(dst)
	o.srcCons, _ = sarama.NewConsumerFromClient(src)
	o.dstCons, _ = sarama.NewConsumerFromClient(dst)
	return nil
}

// close ends the tails (their context must have ended) and the clients.
func (o *flowObserver) close() {
	o.cpWG.Wait()
	for _, t := range []*tail{o.syncTail, o.hbTail} {
		if t != nil {
			<-t.done
		}
	}
	if o.src == nil {
		return
	}
	o.srcCons.Close()
	o.dstCons.Close()
	o.src.Close()
	o.dst.Close()
}

// ensureTails starts the offset-sync and heartbeat tails once their topics
// exist on the target.
func (o *flowObserver) ensureTails(ctx context.Context) error {
	if o.syncTail == nil || !o.syncTail.alive() {
		t, err := startTail(ctx, o.dst, o.dstCons, mirror.OffsetSyncTopic(o.f.Name),
			func(oldest, _ int64) int64 { return oldest }, o.onSync)
		if err != nil {
			return fmt.Errorf("offset-sync topic %q on target: %w", mirror.OffsetSyncTopic(o.f.Name), err)
		}
		o.syncTail = t
	}
	if o.hbTail == nil || !o.hbTail.alive() {
		topic := o.f.Naming.Remote(o.f.Source, mirror.HeartbeatTopic)
		t, err := startTail(ctx, o.dst, o.dstCons, topic,
			func(oldest, newest int64) int64 { return max(oldest, newest-1000) }, o.onHeartbeat)
		if err != nil {
			return fmt.Errorf("heartbeat topic %q on target: %w", topic, err)
		}
		o.hbTail = t
	}
	return nil
}

func (o *flowObserver) onSync(m *sarama.ConsumerMessage) {
	var s mirror.OffsetSync
	if err := s.UnmarshalBinary(m.Value); err != nil {
		o.log.Warn("replicate: skipping malformed offset-sync record", "flow", o.f.Name,
			"topic", m.Topic, "offset", m.Offset, "err", err)
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	p := tp{s.Topic, s.Partition}
	if end := s.Upstream + s.Count; end > o.copied[p] {
		o.copied[p] = end
	}
	o.translator.Add(s)
}

func (o *flowObserver) onHeartbeat(m *sarama.ConsumerMessage) {
	if string(m.Key) != o.f.Name {
		return
	}
	var hb mirror.Heartbeat
	if err := json.Unmarshal(m.Value, &hb); err != nil {
		o.log.Warn("replicate: skipping malformed heartbeat record", "flow", o.f.Name,
			"topic", m.Topic, "offset", m.Offset, "err", err)
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if t := time.UnixMilli(hb.SentAt); t.After(o.lastHB) {
		o.lastHB = t
	}
}

// sourcePartitions lists the mirrored partitions of the source (user
// topics: the heartbeat topic is measured by heartbeat age), refreshing
// metadata every 5 s so new topics are seen.
func (o *flowObserver) sourcePartitions() ([]tp, error) {
	if time.Since(o.topicsAt) > 5*time.Second {
		if err := o.src.RefreshMetadata(); err != nil {
			return nil, fmt.Errorf("source metadata: %w", err)
		}
		o.topicsAt = time.Now()
	}
	topics, err := o.src.Topics()
	if err != nil {
		return nil, fmt.Errorf("source topics: %w", err)
	}
	var out []tp
	for _, t := range topics {
		if t == mirror.HeartbeatTopic || !o.f.Selector.Match(t) || o.f.Naming.FromCluster(o.f.Target, t) {
			continue // heartbeats are measured by their age, not as lag
		}
		ps, err := o.src.Partitions(t)
		if err != nil {
			return nil, fmt.Errorf("partitions of source topic %q: %w", t, err)
		}
		for _, p := range ps {
			out = append(out, tp{t, p})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].topic != out[j].topic {
			return out[i].topic < out[j].topic
		}
		return out[i].partition < out[j].partition
	})
	return out, nil
}

// sample measures the flow now. Figures it cannot measure are unknown and
// Error says why; sample never returns early on a partial failure.
func (o *flowObserver) sample(ctx context.Context, now time.Time) FlowFigures {
	ff := FlowFigures{Flow: o.f.Name, RecordLagSeconds: UnknownFigure(), HeartbeatAgeSeconds: UnknownFigure(),
		LagSeconds: UnknownFigure(), CheckpointAgeSeconds: UnknownFigure()}
	if err := o.connect(); err != nil {
		ff.Error = err.Error()
		return ff
	}
	if err := o.ensureTails(ctx); err != nil {
		ff.Error = err.Error()
	}
	o.heartbeatFigure(&ff, now)
	if err := o.lagFigures(ctx, &ff, now); err != nil && ff.Error == "" {
		ff.Error = err.Error()
	}
	if err := o.checkpointFigures(ctx, &ff, now); err != nil && ff.Error == "" {
		ff.Error = err.Error()
	}
	ff.LagSeconds = maxKnown(ff.RecordLagSeconds, ff.HeartbeatAgeSeconds)
	return ff
}

func (o *flowObserver) heartbeatFigure(ff *FlowFigures, now time.Time) {
	if o.hbTail == nil || !o.hbTail.caughtUp.Load() {
		return
	}
	o.mu.Lock()
	last := o.lastHB
	o.mu.Unlock()
	if !last.IsZero() {
		ff.HeartbeatAgeSeconds = Figure(max(0, now.Sub(last).Seconds()))
	}
}

// maxKnown is the larger of the known figures, unknown only if both are.
func maxKnown(a, b Figure) Figure {
	switch {
	case !a.Known():
		return b
	case !b.Known():
		return a
	}
	return Figure(math.Max(float64(a), float64(b)))
}
