package mirror

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"

	"github.com/IBM/sarama"
)

// notSynced are topic configs never copied to the target: broker-specific,
// replication-specific, or ones that would break fidelity (LogAppendTime
// would overwrite source timestamps).
var notSynced = map[string]bool{
	"follower.replication.throttled.replicas": true,
	"leader.replication.throttled.replicas":   true,
	"message.timestamp.difference.max.ms":     true,
	"message.timestamp.before.max.ms":         true,
	"message.timestamp.after.max.ms":          true,
	"message.timestamp.type":                  true,
	"unclean.leader.election.enable":          true,
	"min.insync.replicas":                     true,
	"confluent.placement.constraints":         true,
}

// sourceTopics returns the selected source topics and their partition
// counts, from fresh metadata.
func (f *Flow) sourceTopics(client sarama.Client) (map[string]int32, error) {
	if err := client.RefreshMetadata(); err != nil {
		return nil, fmt.Errorf("mirror: flow %q: source metadata: %w", f.opts.Name, err)
	}
	names, err := client.Topics()
	if err != nil {
		return nil, fmt.Errorf("mirror: flow %q: source topics: %w", f.opts.Name, err)
	}
	out := map[string]int32{}
	for _, t := range names {
		if !f.opts.Selector.Match(t) || f.opts.Naming.FromCluster(f.opts.TargetAlias, t) {
			continue
		}
		parts, err := client.Partitions(t)
		if err != nil {
			return nil, fmt.Errorf("mirror: flow %q: source topic %q partitions: %w", f.opts.Name, t, err)
		}
		out[t] = int32(len(parts))
	}
	return out, nil
}

// syncTopics makes every remote topic exist on the target with at least the
// source's partition count and the source's topic configs. Errors for one
// topic are collected; the others are still synced.
func (f *Flow) syncTopics(src, dst sarama.ClusterAdmin, topics map[string]int32) error {
	existing, err := dst.ListTopics()
	if err != nil {
		return fmt.Errorf("mirror: flow %q: list target topics: %w", f.opts.Name, err)
	}
	var errs []error
	for _, t := range slices.Sorted(maps.Keys(topics)) {
		if err := f.syncTopic(src, dst, t, topics[t], existing); err != nil {
			f.m.errors.WithLabelValues(f.opts.Name, "topic_sync").Inc()
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (f *Flow) syncTopic(src, dst sarama.ClusterAdmin, topic string, parts int32, existing map[string]sarama.TopicDetail) error {
	remote := f.opts.Naming.Remote(f.opts.SourceAlias, topic)
	where := fmt.Sprintf("mirror: flow %q: topic %q -> %q", f.opts.Name, topic, remote)
	configs, err := topicConfigs(src, topic)
	if err != nil {
		return fmt.Errorf("%s: describe source configs: %w", where, err)
	}
	d, ok := existing[remote]
	if !ok {
		err := dst.CreateTopic(remote, &sarama.TopicDetail{NumPartitions: parts, ReplicationFactor: -1, ConfigEntries: configs}, false)
		if err != nil && !errors.Is(err, sarama.ErrTopicAlreadyExists) {
			return fmt.Errorf("%s: create on target with %d partitions: %w", where, parts, err)
		}
		f.log.Info("mirror: created remote topic", "flow", f.opts.Name, "topic", remote, "partitions", parts)
		f.learnMaxBytes(dst, remote)
		return nil
	}
	if d.NumPartitions < parts {
		if err := dst.CreatePartitions(remote, parts, nil, false); err != nil {
			return fmt.Errorf("%s: grow target from %d to %d partitions: %w", where, d.NumPartitions, parts, err)
		}
		f.log.Info("mirror: grew remote topic", "flow", f.opts.Name, "topic", remote, "from", d.NumPartitions, "to", parts)
	}
	f.learnMaxBytes(dst, remote)
	have, err := topicConfigs(dst, remote)
	if err != nil {
		return fmt.Errorf("%s: describe target configs: %w", where, err)
	}
	// Set the source's overrides that differ; overrides set only on the
	// target (an operator's choice there) are left alone.
	set := map[string]sarama.IncrementalAlterConfigsEntry{}
	for k, v := range configs {
		if w, ok := have[k]; !ok || *w != *v {
			set[k] = sarama.IncrementalAlterConfigsEntry{Operation: sarama.IncrementalAlterConfigsOperationSet, Value: v}
		}
	}
	if len(set) > 0 {
		if err := dst.IncrementalAlterConfig(sarama.TopicResource, remote, set, false); err != nil {
			return fmt.Errorf("%s: sync configs: %w", where, err)
		}
		f.log.Info("mirror: synced remote topic configs", "flow", f.opts.Name, "topic", remote, "configs", len(set))
		f.learnMaxBytes(dst, remote)
	}
	return nil
}

// topicConfigs returns the topic-level overrides of topic that are synced.
func topicConfigs(admin sarama.ClusterAdmin, topic string) (map[string]*string, error) {
	res, err := admin.DescribeConfigs([]*sarama.ConfigResource{{Type: sarama.TopicResource, Name: topic}}, sarama.DescribeConfigsOptions{})
	if err != nil {
		return nil, err
	}
	out := map[string]*string{}
	for _, r := range res {
		if r.Name != topic {
			continue
		}
		if r.ErrorCode != sarama.ErrNoError {
			return nil, fmt.Errorf("%w: %s", r.ErrorCode, r.ErrorMsg)
		}
		addSynced(out, r.Configs)
	}
	return out, nil
}

func addSynced(out map[string]*string, entries []sarama.ConfigEntry) {
	for _, e := range entries {
		if e.Source == sarama.SourceTopic && !notSynced[e.Name] && !e.Sensitive {
			v := e.Value
			out[e.Name] = &v
		}
	}
}

// learnMaxBytes records the effective max.message.bytes of a remote topic
// (override or broker default), so records that cannot fit are rejected
// before anything after them is sent (see copyBatch).
func (f *Flow) learnMaxBytes(dst sarama.ClusterAdmin, remote string) {
	res, err := dst.DescribeConfigs([]*sarama.ConfigResource{{Type: sarama.TopicResource, Name: remote}}, sarama.DescribeConfigsOptions{})
	if err != nil {
		return
	}
	for _, r := range res {
		for _, e := range r.Configs {
			if e.Name == "max.message.bytes" {
				if v, err := strconv.Atoi(e.Value); err == nil {
					f.mu.Lock()
					f.maxBytes[remote] = v
					f.mu.Unlock()
				}
			}
		}
	}
}

// recordOverhead over-estimates a record's framing in a batch of one.
const recordOverhead = 128

// oversized returns the index of the first record of batch that cannot fit
// in its remote topic, or -1.
func (f *Flow) oversized(batch []*sarama.ConsumerMessage) int {
	if len(batch) == 0 {
		return -1
	}
	limit := f.topicLimit(batch[0].Topic)
	if limit <= 0 {
		return -1
	}
	for i, m := range batch {
		if recordSize(m) > limit {
			return i
		}
	}
	return -1
}

// fitBytes returns how many records of batch, at least one, one record
// batch of their remote topic can hold: the broker judges the compressed
// batch against the topic's max.message.bytes (sarama's default
// MaxMessageBytes, 1,000,000, when not known), and LZ4 or snappy can
// grow incompressible data by up to 0.4 %.
func (f *Flow) fitBytes(batch []*sarama.ConsumerMessage) int {
	limit := f.topicLimit(batch[0].Topic)
	if limit <= 0 {
		limit = 1_000_000
	}
	budget := limit - limit/100 - recordBatchOverhead
	size := 0
	for i, m := range batch {
		size += recordSize(m)
		if size > budget && i > 0 {
			return i
		}
	}
	return len(batch)
}

// recordBatchOverhead over-estimates a record batch's framing (61 bytes)
// and its compression frame.
const recordBatchOverhead = 1024

// topicLimit is the max.message.bytes of topic's remote topic (0 if not
// known).
func (f *Flow) topicLimit(topic string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.maxBytes[f.opts.Naming.Remote(f.opts.SourceAlias, topic)]
}

// recordSize over-estimates m's copy in a record batch.
func recordSize(m *sarama.ConsumerMessage) int {
	n := len(m.Key) + len(m.Value) + recordOverhead + len(ProvenanceHeader) + 64
	for _, h := range m.Headers {
		n += len(h.Key) + len(h.Value) + 8
	}
	return n
}
