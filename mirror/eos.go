package mirror

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/IBM/sarama"
)

// PositionTopicPrefix starts the names of the topics where exactly-once
// flows keep, on the target, the next source offset of every partition.
// The position is written in the same transaction as the copied records, so
// after a crash the flow resumes exactly where the target's committed data
// ends, whatever the source's group offsets say.
const PositionTopicPrefix = "regionsync.positions."

// PositionTopic is the position topic of flow.
func PositionTopic(flow string) string { return PositionTopicPrefix + flow }

func positionKey(topic string, partition int32) string {
	return topic + "/" + strconv.Itoa(int(partition))
}

// loadPositions reads the committed positions (read_committed, last value
// per key wins). A read_committed reader stops at the last stable offset,
// so a transaction still open would hide every position written after it:
// loadPositions first waits until the transactions open when it started
// have ended (the last stable offset reaches the high-water mark), for at
// most the transaction timeout plus 10 s.
func (f *Flow) loadPositions(ctx context.Context, dst sarama.Client) (map[string]int64, error) {
	topic := PositionTopic(f.opts.Name)
	out := map[string]int64{}
	hw, err := dst.GetOffset(topic, 0, sarama.OffsetNewest)
	if err != nil || hw == 0 {
		return out, err
	}
	if err := waitStable(dst, topic, 0, hw, txnTimeout+10*time.Second); err != nil {
		return nil, err
	}
	cons, err := sarama.NewConsumerFromClient(dst)
	if err != nil {
		return nil, err
	}
	defer cons.Close()
	err = ReadPartition(ctx, cons, topic, 0, hw, MarkerSlack, func(m *sarama.ConsumerMessage) error {
		if v, n := binary.Varint(m.Value); n > 0 {
			out[string(m.Key)] = v
		} else {
			f.log.Warn("mirror: skipping malformed position record", "flow", f.opts.Name, "topic", topic, "offset", m.Offset)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// resumePositions moves every claim of an exactly-once session to the
// position stored on the target.
func (f *Flow) resumePositions(sess sarama.ConsumerGroupSession) error {
	pos, err := f.loadPositions(sess.Context(), f.tgtClient)
	if err != nil {
		return fmt.Errorf("mirror: flow %q: read positions from %q: %w", f.opts.Name, PositionTopic(f.opts.Name), err)
	}
	for topic, parts := range sess.Claims() {
		for _, p := range parts {
			if off, ok := pos[positionKey(topic, p)]; ok {
				// sarama's MarkOffset only moves forward and ResetOffset
				// only backward: together they set the offset exactly.
				sess.MarkOffset(topic, p, off, "")
				sess.ResetOffset(topic, p, off, "")
			}
		}
	}
	return nil
}

// txnTimeout bounds how long a transaction may stay open before the
// broker aborts it (a crashed owner's transaction ends then at the latest).
const txnTimeout = 60 * time.Second

// waitStable waits until the last stable offset of topic/partition reaches
// hw, i.e. no transaction that was open at hw is still undecided.
func waitStable(c sarama.Client, topic string, partition int32, hw int64, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		lso, err := lastStableOffset(c, topic, partition)
		if err == nil && lso >= hw {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s/%d: last stable offset %d still below %d after %s (a transaction stays open; err %v)", topic, partition, lso, hw, timeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// lastStableOffset asks the partition leader for the read_committed end of
// the log (sarama's Client.GetOffset asks read_uncommitted).
func lastStableOffset(c sarama.Client, topic string, partition int32) (int64, error) {
	b, err := c.Leader(topic, partition)
	if err != nil {
		return -1, err
	}
	req := sarama.NewOffsetRequest(c.Config().Version)
	req.IsolationLevel = sarama.ReadCommitted
	req.AddBlock(topic, partition, sarama.OffsetNewest, 1)
	resp, err := b.GetAvailableOffsets(req)
	if err != nil {
		return -1, err
	}
	blk := resp.GetBlock(topic, partition)
	switch {
	case blk == nil:
		return -1, sarama.ErrIncompleteResponse
	case !errors.Is(blk.Err, sarama.ErrNoError):
		return -1, blk.Err
	case blk.Offset >= 0:
		return blk.Offset, nil
	case len(blk.Offsets) == 1:
		return blk.Offsets[0], nil
	}
	return -1, sarama.ErrIncompleteResponse
}

// txnProducer opens the transactional producer of one source partition. Its
// transactional id is stable per flow and partition, so a new owner of the
// partition fences any zombie of the old one.
func (f *Flow) txnProducer(topic string, partition int32) (sarama.SyncProducer, error) {
	c := f.targetConfig()
	c.Producer.Transaction.ID = fmt.Sprintf("regionsync-%s-%s-%d", f.opts.Name, topic, partition)
	c.Producer.Transaction.Timeout = txnTimeout
	return sarama.NewSyncProducer(f.opts.TargetBrokers, c)
}

// copyBatchTxn copies batch in one target transaction together with its
// offset syncs and the partition's new position. On failure the
// transaction is aborted and retried; nothing of it is visible to
// read_committed consumers. A fenced producer ends the claim.
func (h *handler) copyBatchTxn(ctx context.Context, sess sarama.ConsumerGroupSession, prod sarama.SyncProducer, runs *runLog, batch []*sarama.ConsumerMessage) error {
	f := h.f
	backoff := 100 * time.Millisecond
	for {
		syncs, run, err := f.txnOnce(prod, runs, batch)
		if err == nil {
			runs.commit(run)
			for _, s := range syncs {
				f.translator.Add(s)
			}
			h.acked(sess, batch, time.Now())
			return nil
		}
		f.m.errors.WithLabelValues(f.opts.Name, "transaction").Inc()
		if prod.TxnStatus()&sarama.ProducerTxnFlagInError != 0 && prod.TxnStatus()&sarama.ProducerTxnFlagAbortableError != 0 {
			_ = prod.AbortTxn()
		}
		if prod.TxnStatus()&sarama.ProducerTxnFlagFatalError != 0 || errors.Is(err, sarama.ErrProducerFenced) {
			return fmt.Errorf("mirror: flow %q: %s/%d: transactional producer unusable (fenced by a newer owner?): %w", f.opts.Name, batch[0].Topic, batch[0].Partition, err)
		}
		f.log.Warn("mirror: transaction failed, retrying", "flow", f.opts.Name, "topic", batch[0].Topic, "partition", batch[0].Partition, "err", err)
		if !sleep(ctx, backoff) {
			return nil
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}

// txnOnce runs one transaction; it returns the sync records written and the
// run to commit to runs once the transaction committed.
func (f *Flow) txnOnce(prod sarama.SyncProducer, runs *runLog, batch []*sarama.ConsumerMessage) ([]OffsetSync, OffsetSync, error) {
	if err := prod.BeginTxn(); err != nil {
		return nil, OffsetSync{}, err
	}
	out := make([]*sarama.ProducerMessage, 0, len(batch))
	for i, m := range batch {
		if !contains(provenance(m.Headers), f.opts.TargetAlias) {
			out = append(out, f.toTarget(m, i))
		}
	}
	if err := prod.SendMessages(out); err != nil {
		return nil, OffsetSync{}, err
	}
	syncs, run := runs.records(acknowledgedSyncs(batch, out, len(batch)))
	msgs := f.syncRecords(syncs)
	last := batch[len(batch)-1]
	msgs = append(msgs, &sarama.ProducerMessage{
		Topic: PositionTopic(f.opts.Name), Partition: 0,
		Key:   sarama.StringEncoder(positionKey(last.Topic, last.Partition)),
		Value: sarama.ByteEncoder(binary.AppendVarint(nil, last.Offset+1)),
	})
	if err := prod.SendMessages(msgs); err != nil {
		return nil, OffsetSync{}, err
	}
	return syncs, run, prod.CommitTxn()
}

// ensurePositionTopic creates the position topic (compacted, 1 partition).
func (f *Flow) ensurePositionTopic(dst sarama.ClusterAdmin) error {
	compact := "compact"
	err := dst.CreateTopic(PositionTopic(f.opts.Name), &sarama.TopicDetail{
		NumPartitions: 1, ReplicationFactor: -1, ConfigEntries: map[string]*string{"cleanup.policy": &compact},
	}, false)
	if err != nil && !errors.Is(err, sarama.ErrTopicAlreadyExists) {
		return fmt.Errorf("mirror: flow %q: create position topic %q: %w", f.opts.Name, PositionTopic(f.opts.Name), err)
	}
	return nil
}

// isRegionsyncTopic reports topics regionsync keeps for itself.
func isRegionsyncTopic(t string) bool {
	return strings.HasPrefix(t, OffsetSyncTopicPrefix) || strings.HasPrefix(t, PositionTopicPrefix)
}
