package mirror

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/IBM/sarama"
)

// acknowledgedSyncs returns the offset syncs of the records of out (copies
// of pending, indexed by Metadata, with the offsets sarama filled in) that
// lie in the acknowledged prefix pending[:done].
func acknowledgedSyncs(pending []*sarama.ConsumerMessage, out []*sarama.ProducerMessage, done int) []OffsetSync {
	var up, down []int64
	for _, pm := range out {
		i := pm.Metadata.(int)
		if i >= done {
			break
		}
		up = append(up, pending[i].Offset)
		down = append(down, pm.Offset)
	}
	if len(up) == 0 {
		return nil
	}
	return runs(pending[0].Topic, pending[0].Partition, up, down)
}

// batchSyncs returns the offset syncs of a batch written at base whose
// j-th copy is of pending[idx[j]].
func batchSyncs(pending []*sarama.ConsumerMessage, idx []int, base int64) []OffsetSync {
	up, down := make([]int64, len(idx)), make([]int64, len(idx))
	for j, i := range idx {
		up[j], down[j] = pending[i].Offset, base+int64(j)
	}
	return runs(pending[0].Topic, pending[0].Partition, up, down)
}

// syncRecords builds the offset-sync topic's records for syncs.
func (f *Flow) syncRecords(syncs []OffsetSync) []*sarama.ProducerMessage {
	msgs := make([]*sarama.ProducerMessage, len(syncs))
	for i, s := range syncs {
		v, _ := s.MarshalBinary()
		msgs[i] = &sarama.ProducerMessage{Topic: OffsetSyncTopic(f.opts.Name), Partition: 0, Key: sarama.ByteEncoder(s.Key()), Value: sarama.ByteEncoder(v)}
	}
	return msgs
}

// syncTopicConfig: compacted (one record per run survives, see runLog),
// with segments rolled every 10 minutes so compaction can reach them; one
// partition keeps the log in write order.
var syncTopicConfig = map[string]string{"cleanup.policy": "compact", "segment.ms": "600000"}

// ensureSyncTopic creates the flow's offset-sync topic on the target (or
// brings an existing one to syncTopicConfig) and its dead-letter topic, if
// any.
func (f *Flow) ensureSyncTopic(dst sarama.ClusterAdmin) error {
	entries := map[string]*string{}
	set := map[string]sarama.IncrementalAlterConfigsEntry{}
	for k, v := range syncTopicConfig {
		entries[k] = &v
		set[k] = sarama.IncrementalAlterConfigsEntry{Operation: sarama.IncrementalAlterConfigsOperationSet, Value: &v}
	}
	topic := OffsetSyncTopic(f.opts.Name)
	err := dst.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: 1, ReplicationFactor: -1, ConfigEntries: entries}, false)
	if errors.Is(err, sarama.ErrTopicAlreadyExists) {
		// Topics of older versions lack segment.ms: compaction never ran.
		if aerr := dst.IncrementalAlterConfig(sarama.TopicResource, topic, set, false); aerr != nil {
			f.log.Warn("mirror: cannot set the offset-sync topic's config; it will not be compacted", "flow", f.opts.Name, "topic", topic, "err", aerr)
		}
		err = nil
	}
	if err != nil {
		return fmt.Errorf("mirror: flow %q: create offset-sync topic %q on target: %w", f.opts.Name, topic, err)
	}
	if f.opts.DeadLetterTopic != "" {
		err := dst.CreateTopic(f.opts.DeadLetterTopic, &sarama.TopicDetail{NumPartitions: 1, ReplicationFactor: -1}, false)
		if err != nil && !errors.Is(err, sarama.ErrTopicAlreadyExists) {
			return fmt.Errorf("mirror: flow %q: create dead-letter topic %q on target: %w", f.opts.Name, f.opts.DeadLetterTopic, err)
		}
	}
	return nil
}

// loadSyncs reads the whole offset-sync topic into the translator, so
// offsets copied by earlier runs or other workers translate too. Malformed
// records are logged with their offset and skipped.
func (f *Flow) loadSyncs(ctx context.Context, dst sarama.Client) error {
	topic := OffsetSyncTopic(f.opts.Name)
	hw, err := dst.GetOffset(topic, 0, sarama.OffsetNewest)
	if err != nil || hw == 0 {
		return err
	}
	cons, err := sarama.NewConsumerFromClient(dst)
	if err != nil {
		return err
	}
	defer cons.Close()
	return ReadPartition(ctx, cons, topic, 0, hw, MarkerSlack, func(m *sarama.ConsumerMessage) error {
		var s OffsetSync
		if err := s.UnmarshalBinary(m.Value); err != nil {
			f.log.Warn("mirror: skipping malformed offset-sync record", "flow", f.opts.Name, "topic", topic, "offset", m.Offset, "err", err)
		} else {
			f.translator.Add(s)
		}
		return nil
	})
}

// checkpoints translates consumer-group offsets every CheckpointInterval
// until ctx ends; see checkpointOnce.
func (f *Flow) checkpoints(ctx context.Context, src, dst sarama.ClusterAdmin, dstClient sarama.Client) {
	t := time.NewTicker(f.opts.CheckpointInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := f.checkpointOnce(src, dst, dstClient); err != nil {
			f.m.errors.WithLabelValues(f.opts.Name, "checkpoint").Inc()
			f.log.Warn("mirror: checkpoint failed", "flow", f.opts.Name, "err", err)
		} else {
			f.lastCheckpoint.Store(time.Now().UnixMilli())
		}
	}
}

// checkpointOnce translates the committed source offsets of every consumer
// group (other than regionsync's own) on mirrored topics and commits them
// as the same group's offsets of the remote topics on the target, when the
// group has no active members there and the translated offset is ahead of
// what the group already committed on the target (never rewinds).
func (f *Flow) checkpointOnce(src, dst sarama.ClusterAdmin, dstClient sarama.Client) error {
	groups, err := src.ListConsumerGroups()
	if err != nil {
		return fmt.Errorf("list source groups: %w", err)
	}
	var errs []error
	for g := range groups {
		if strings.HasPrefix(g, "regionsync-") {
			continue
		}
		if err := f.checkpointGroup(g, src, dst, dstClient); err != nil {
			errs = append(errs, fmt.Errorf("group %q: %w", g, err))
		}
	}
	return errors.Join(errs...)
}

func groupBlocks(r *sarama.OffsetFetchResponse, group string) map[string]map[int32]*sarama.OffsetFetchResponseBlock {
	if g := r.GetGroup(group); g != nil && g.Blocks != nil {
		return g.Blocks
	}
	return r.Blocks
}

func (f *Flow) checkpointGroup(g string, src, dst sarama.ClusterAdmin, dstClient sarama.Client) error {
	resp, err := src.ListConsumerGroupOffsets(g, nil)
	if err != nil {
		return fmt.Errorf("source offsets: %w", err)
	}
	want := map[string]map[int32]int64{} // remote topic → partition → offset
	for topic, parts := range groupBlocks(resp, g) {
		if !f.opts.Selector.Match(topic) || f.opts.Naming.FromCluster(f.opts.TargetAlias, topic) || topic == HeartbeatTopic {
			continue
		}
		for p, b := range parts {
			if b == nil || b.Offset < 0 {
				continue
			}
			if off, ok := f.translator.Translate(topic, p, b.Offset); ok {
				remote := f.opts.Naming.Remote(f.opts.SourceAlias, topic)
				if want[remote] == nil {
					want[remote] = map[int32]int64{}
				}
				want[remote][p] = off
			}
		}
	}
	if len(want) == 0 {
		return nil
	}
	desc, err := dst.DescribeConsumerGroups([]string{g})
	if err != nil {
		return fmt.Errorf("describe on target: %w", err)
	}
	for _, d := range desc {
		if d.GroupId == g && d.State != "" && d.State != "Empty" && d.State != "Dead" {
			return nil // active on the target: its own commits win
		}
	}
	var cur map[string]map[int32]*sarama.OffsetFetchResponseBlock
	have, err := dst.ListConsumerGroupOffsets(g, nil)
	switch {
	case errors.Is(err, sarama.ErrGroupIDNotFound):
		// Never seen on the target: nothing to compare with.
	case err != nil:
		return fmt.Errorf("target offsets: %w", err)
	default:
		cur = groupBlocks(have, g)
	}
	req := sarama.NewOffsetCommitRequest(dstClient.Config(), g)
	n := 0
	for topic, parts := range want {
		for p, off := range parts {
			if b := cur[topic][p]; b != nil && b.Offset >= off {
				continue
			}
			req.AddBlock(topic, p, off, -1, "regionsync checkpoint from "+f.opts.SourceAlias)
			n++
		}
	}
	if n == 0 {
		return nil
	}
	coord, err := dstClient.Coordinator(g)
	if err != nil {
		return fmt.Errorf("target coordinator: %w", err)
	}
	cr, err := coord.CommitOffset(req)
	if err != nil {
		return fmt.Errorf("commit on target: %w", err)
	}
	for topic, parts := range cr.Errors {
		for p, kerr := range parts {
			if kerr != sarama.ErrNoError {
				return fmt.Errorf("commit %s/%d on target: %w", topic, p, kerr)
			}
		}
	}
	f.m.checkpoints.WithLabelValues(f.opts.Name).Add(float64(n))
	return nil
}

// CheckpointAge is the time since the last successful checkpoint pass;
// zero before the first.
func (f *Flow) CheckpointAge() time.Duration {
	ms := f.lastCheckpoint.Load()
	if ms == 0 {
		return 0
	}
	return time.Since(time.UnixMilli(ms))
}

// Translate maps a committed source offset of topic/partition to the
// target offset to resume from, using the syncs this flow knows.
func (f *Flow) Translate(topic string, partition int32, committed int64) (int64, bool) {
	return f.translator.Translate(topic, partition, committed)
}
