package mirror

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"
)

// OffsetSyncTopicPrefix starts the names of regionsync's offset-sync topics,
// which are never mirrored.
const OffsetSyncTopicPrefix = "regionsync.offset-syncs."

// Options configure one flow.
type Options struct {
	Name        string // flow name, in metrics and logs
	SourceAlias string // source region/cluster alias, e.g. "east"
	TargetAlias string
	// Source and Target are complete sarama configs (TLS, SASL) for each
	// cluster; the flow copies them and sets what it needs.
	Source, Target               *sarama.Config
	SourceBrokers, TargetBrokers []string
	Selector                     *Selector
	Naming                       Naming
	// DeadLetterTopic on the target gets records the target rejects
	// permanently; empty stops the partition instead.
	DeadLetterTopic string
	// ExactlyOnce writes each batch, its offset syncs and the partition's
	// source position in one target transaction per source partition, and
	// resumes from the positions stored on the target.
	ExactlyOnce bool
	// GroupID of the source consumer group. Default "regionsync-mirror-<Name>".
	GroupID string
	// RefreshInterval between looks for new or grown topics. Default 5s.
	RefreshInterval time.Duration
	// HeartbeatInterval between heartbeat records. Default 1s.
	HeartbeatInterval time.Duration
	// CheckpointInterval between consumer-group offset translations. Default 1s.
	CheckpointInterval time.Duration
}

// Flow copies selected topics from a source cluster to a target cluster.
// New does no I/O; Run connects and copies until its context ends.
type Flow struct {
	opts     Options
	log      *slog.Logger
	m        *Metrics
	producer sarama.SyncProducer // offset syncs and dead letters
	batches  *batchProducer      // writes the copies (at-least-once mode)
	// onlyProvenance is the header list of every copy of a record without headers.
	onlyProvenance []*sarama.RecordHeader
	tgtClient      sarama.Client
	mu             sync.Mutex
	stopped        map[string]PartitionError
	lag            map[string]int64 // "topic/partition" → records behind
	maxBytes       map[string]int   // remote topic → effective max.message.bytes
	copied         atomic.Int64

	lastHeartbeat  atomic.Int64 // Unix ms of the newest acknowledged heartbeat
	lastCheckpoint atomic.Int64 // Unix ms of the last successful checkpoint pass
	translator     *Translator
	oldest         map[string]time.Time // "topic/partition" → timestamp of the oldest unacknowledged record
}

// Stats is a summary of a flow for status displays.
type Stats struct {
	Copied     int64 // records acknowledged by the target since Run started
	LagRecords int64 // sum over owned partitions of records not yet acknowledged
	Stopped    int   // partitions stopped on permanently rejected records
}

// Stats returns the flow's current summary (partitions owned by this worker).
func (f *Flow) Stats() Stats {
	f.mu.Lock()
	defer f.mu.Unlock()
	var lag int64
	for _, l := range f.lag {
		lag += l
	}
	return Stats{Copied: f.copied.Load(), LagRecords: lag, Stopped: len(f.stopped)}
}

func (f *Flow) setLag(topic string, partition int32, lag int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lag[topic+"/"+strconv.Itoa(int(partition))] = lag
}

// setOldest records the timestamp of the oldest record of a partition that
// the target has not acknowledged; zero means none is pending.
func (f *Flow) setOldest(topic string, partition int32, ts time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	k := topic + "/" + strconv.Itoa(int(partition))
	if ts.IsZero() {
		delete(f.oldest, k)
	} else {
		f.oldest[k] = ts
	}
}

// LagSeconds is now minus the timestamp of the oldest record this worker
// read but the target has not acknowledged, over all owned partitions.
func (f *Flow) LagSeconds() float64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	var worst time.Duration
	for _, ts := range f.oldest {
		worst = max(worst, time.Since(ts))
	}
	return worst.Seconds()
}

// New checks opts and returns a flow reporting into m (one Metrics per
// registry, shared by all flows of a process).
func New(opts Options, m *Metrics, log *slog.Logger) (*Flow, error) { return newFlow(opts, m, log) }

func newFlow(opts Options, m *Metrics, log *slog.Logger) (*Flow, error) {
	switch {
	case opts.Name == "":
		return nil, errors.New("mirror: flow needs a name")
	case opts.SourceAlias == "" || opts.TargetAlias == "":
		return nil, fmt.Errorf("mirror: flow %q: source and target aliases are required", opts.Name)
	case opts.SourceAlias == opts.TargetAlias:
		return nil, fmt.Errorf("mirror: flow %q: self-mirroring (%q to itself)", opts.Name, opts.SourceAlias)
	case len(opts.SourceBrokers) == 0 || len(opts.TargetBrokers) == 0:
		return nil, fmt.Errorf("mirror: flow %q: source and target brokers are required", opts.Name)
	case opts.Selector == nil || opts.Naming == nil:
		return nil, fmt.Errorf("mirror: flow %q: selector and naming are required", opts.Name)
	}
	if opts.Source == nil {
		opts.Source = sarama.NewConfig()
	}
	if opts.Target == nil {
		opts.Target = sarama.NewConfig()
	}
	if opts.GroupID == "" {
		opts.GroupID = "regionsync-mirror-" + opts.Name
	}
	if opts.RefreshInterval <= 0 {
		opts.RefreshInterval = 5 * time.Second
	}
	if opts.HeartbeatInterval <= 0 {
		opts.HeartbeatInterval = time.Second
	}
	if opts.CheckpointInterval <= 0 {
		opts.CheckpointInterval = time.Second
	}
	f := &Flow{onlyProvenance: targetHeaders(nil, opts.SourceAlias), opts: opts, log: log, m: m, translator: NewTranslator(), stopped: map[string]PartitionError{}, lag: map[string]int64{}, maxBytes: map[string]int{}, oldest: map[string]time.Time{}}
	m.add(f)
	return f, nil
}

// sourceConfig is the consumer side: cooperative-sticky group, manual
// marking, read_committed, oldest offset for partitions never committed.
func (f *Flow) sourceConfig() *sarama.Config {
	c := *f.opts.Source
	c.Consumer.Group.Rebalance.GroupStrategies = []sarama.BalanceStrategy{sarama.NewBalanceStrategyCooperativeSticky()}
	if f.opts.ExactlyOnce {
		// Eager: Setup runs at every rebalance, so every new claim resumes
		// from its position stored on the target.
		c.Consumer.Group.Rebalance.GroupStrategies = []sarama.BalanceStrategy{sarama.NewBalanceStrategySticky()}
	}
	c.Consumer.Offsets.Initial = sarama.OffsetOldest
	c.Consumer.Offsets.AutoCommit.Enable = true
	c.Consumer.Offsets.AutoCommit.Interval = 100 * time.Millisecond
	c.Consumer.IsolationLevel = sarama.ReadCommitted
	c.Consumer.Return.Errors = true
	// The same client writes heartbeats with a SyncProducer.
	c.Producer.Return.Successes = true
	c.Producer.Return.Errors = true
	c.Producer.RequiredAcks = sarama.WaitForAll
	// Memory: a fetch carries up to Fetch.Default per partition and each
	// partition buffers ChannelBufferSize records (which pin the buffers
	// they were decompressed from). 256 KiB and 512 keep a 12-partition
	// flow of 1 KiB records under 150 MiB RSS; 4 MiB and 4096 drained no
	// faster and peaked at 553 MiB (loadtests/mirrorbench).
	c.Consumer.Fetch.Default = 256 << 10
	c.ChannelBufferSize = 512
	// sarama's default 500 ms fetch wait cost 9.5 ms at the median from
	// source append to delivery at 5,000 records/s over 12 partitions;
	// 25 ms brought it to 3 ms, at the price of up to 40 idle fetches/s.
	c.Consumer.MaxWaitTime = 25 * time.Millisecond
	return &c
}

// targetConfig is the producer side: idempotent, acks=all, one request in
// flight per broker (keeps order across retries), records go to the
// partition the flow chooses.
func (f *Flow) targetConfig() *sarama.Config {
	c := *f.opts.Target
	c.Producer.Idempotent = true
	c.Producer.RequiredAcks = sarama.WaitForAll
	c.Net.MaxOpenRequests = 1
	c.Producer.Retry.Max = 10
	c.Producer.Return.Successes = true
	c.Producer.Return.Errors = true
	c.Producer.Partitioner = sarama.NewManualPartitioner
	c.Producer.Flush.Bytes = 1 << 20
	c.Producer.Flush.Frequency = 2 * time.Millisecond
	// MaxMessageBytes keeps sarama's default (1,000,000): it also bounds the
	// request batches, which the broker's max.message.bytes judges.
	c.Producer.Compression = sarama.CompressionLZ4
	// The flow reads its own offset syncs and positions back: only what
	// committed (exactly-once transactions can abort).
	c.Consumer.IsolationLevel = sarama.ReadCommitted
	return &c
}

// toTarget converts a source record into its copy; i indexes it in its batch.
func (f *Flow) toTarget(m *sarama.ConsumerMessage, i int) *sarama.ProducerMessage {
	pm := &sarama.ProducerMessage{
		Topic:     f.opts.Naming.Remote(f.opts.SourceAlias, m.Topic),
		Partition: m.Partition,
		Timestamp: m.Timestamp,
		Metadata:  i,
	}
	for _, h := range targetHeaders(m.Headers, f.opts.SourceAlias) {
		pm.Headers = append(pm.Headers, *h)
	}
	if m.Key != nil { // a nil Encoder keeps a null key null
		pm.Key = sarama.ByteEncoder(m.Key)
	}
	if m.Value != nil { // and a tombstone a tombstone
		pm.Value = sarama.ByteEncoder(m.Value)
	}
	return pm
}

// toRecord fills rec with the copy of a source record for a batch whose
// first timestamp is first (see recordTime); offset is its place in the
// batch. Key, value and unchanged headers are shared with m, not copied,
// and records without headers share one provenance header list (the
// encoder only reads them).
func (f *Flow) toRecord(rec *sarama.Record, m *sarama.ConsumerMessage, offset int, first time.Time) {
	*rec = sarama.Record{
		Headers:        f.onlyProvenance,
		TimestampDelta: recordTime(m).Sub(first),
		OffsetDelta:    int64(offset),
		Key:            m.Key, // nil stays a null key, and a nil value a tombstone
		Value:          m.Value,
	}
	if len(m.Headers) > 0 {
		rec.Headers = targetHeaders(m.Headers, f.opts.SourceAlias)
	}
}

// recordTime is the timestamp a copy carries: the source's, at the
// millisecond the protocol keeps, or now when the source had none (as
// sarama's producer does).
func recordTime(m *sarama.ConsumerMessage) time.Time {
	if m.Timestamp.IsZero() {
		return time.Now().Truncate(time.Millisecond)
	}
	return m.Timestamp.Truncate(time.Millisecond)
}

// deadLetter writes a rejected record to the dead-letter topic with its
// origin and the error in headers. A record too large for the target goes
// without its value (header regionsync-dlq-value-dropped), so the loss is
// recorded rather than blocking the partition.
func (f *Flow) deadLetter(m *sarama.ConsumerMessage, cause error) error {
	pm := f.toTarget(m, 0)
	pm.Topic, pm.Partition = f.opts.DeadLetterTopic, 0
	pm.Headers = append(pm.Headers,
		sarama.RecordHeader{Key: []byte("regionsync-dlq-topic"), Value: []byte(m.Topic)},
		sarama.RecordHeader{Key: []byte("regionsync-dlq-partition"), Value: []byte(strconv.Itoa(int(m.Partition)))},
		sarama.RecordHeader{Key: []byte("regionsync-dlq-offset"), Value: []byte(strconv.FormatInt(m.Offset, 10))},
		sarama.RecordHeader{Key: []byte("regionsync-dlq-error"), Value: []byte(cause.Error())},
	)
	_, _, err := f.producer.SendMessage(pm)
	if errors.Is(err, sarama.ErrMessageSizeTooLarge) {
		pm.Value = nil
		pm.Headers = append(pm.Headers, sarama.RecordHeader{Key: []byte("regionsync-dlq-value-dropped"), Value: []byte(strconv.Itoa(len(m.Value)))})
		_, _, err = f.producer.SendMessage(pm)
	}
	if err == nil {
		f.m.dead.WithLabelValues(f.opts.Name, m.Topic, strconv.Itoa(int(m.Partition))).Inc()
		f.log.Warn("mirror: record dead-lettered", "flow", f.opts.Name, "topic", m.Topic, "partition", m.Partition, "offset", m.Offset, "dlq", f.opts.DeadLetterTopic, "cause", cause)
	}
	return err
}

func (f *Flow) setStopped(e PartitionError) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.stopped[e.Topic+"/"+strconv.Itoa(int(e.Partition))] = e
}

func (f *Flow) clearStopped(topic string, partition int32) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.stopped, topic+"/"+strconv.Itoa(int(partition)))
}

// Stopped lists the partitions this worker has stopped on a permanently
// rejected record, sorted by topic and partition.
func (f *Flow) Stopped() []PartitionError {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]PartitionError, 0, len(f.stopped))
	for _, e := range f.stopped {
		out = append(out, e)
	}
	slices.SortFunc(out, func(a, b PartitionError) int {
		if a.Topic != b.Topic {
			if a.Topic < b.Topic {
				return -1
			}
			return 1
		}
		return int(a.Partition - b.Partition)
	})
	return out
}

// Name returns the flow's name.
func (f *Flow) Name() string { return f.opts.Name }

// Target returns the alias of the flow's target cluster.
func (f *Flow) Target() string { return f.opts.TargetAlias }
