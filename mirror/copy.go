package mirror

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/IBM/sarama"
)

// maxBatch bounds how many records one produce call carries per partition.
const maxBatch = 1000

// PartitionError describes a partition the flow stopped because the target
// rejects one of its records permanently. Readiness treats it as failing.
type PartitionError struct {
	Topic     string
	Partition int32
	Offset    int64
	Err       error
	Since     time.Time
}

func (e PartitionError) Error() string {
	return fmt.Sprintf("topic %q partition %d offset %d: %v", e.Topic, e.Partition, e.Offset, e.Err)
}

// permanent reports whether the target will reject the record however often
// it is retried.
func permanent(err error) bool {
	for _, p := range []error{
		sarama.ErrMessageSizeTooLarge, sarama.ErrInvalidMessage, sarama.ErrInvalidMessageSize,
		sarama.ErrPolicyViolation, sarama.ErrInvalidRecord,
		sarama.ErrInvalidTimestamp, sarama.ErrTopicAuthorizationFailed, sarama.ErrClusterAuthorizationFailed,
	} {
		if errors.Is(err, p) {
			return true
		}
	}
	var enc sarama.PacketEncodingError // the request could not be built
	return errors.As(err, &enc)
}

// handler copies the claims of one consumer-group session. Offsets are
// marked only after the target acknowledged every record up to them, so a
// crash at any point re-copies (at-least-once) and never skips.
type handler struct {
	f *Flow
	// txns holds, in exactly-once mode, the transactional producer of every
	// claimed partition; Setup opens them and Cleanup closes them.
	txns map[string]sarama.SyncProducer
}

// Setup starts a session. In exactly-once mode it first opens the
// transactional producer of every claimed partition, which fences any
// zombie owner and aborts its open transaction, and only then reads the
// positions those transactions could have hidden.
func (h *handler) Setup(sess sarama.ConsumerGroupSession) error {
	h.f.m.rebalnce.WithLabelValues(h.f.opts.Name).Inc()
	if !h.f.opts.ExactlyOnce {
		return nil
	}
	h.txns = map[string]sarama.SyncProducer{}
	for topic, parts := range sess.Claims() {
		for _, p := range parts {
			prod, err := h.f.txnProducer(topic, p)
			if err != nil {
				return fmt.Errorf("mirror: flow %q: transactional producer for %s/%d: %w", h.f.opts.Name, topic, p, err)
			}
			h.txns[positionKey(topic, p)] = prod
		}
	}
	return h.f.resumePositions(sess)
}

// Cleanup closes the session's transactional producers.
func (h *handler) Cleanup(sarama.ConsumerGroupSession) error {
	for k, p := range h.txns {
		_ = p.Close()
		delete(h.txns, k)
	}
	return nil
}

// ConsumeClaim copies one partition in batches until the claim ends.
func (h *handler) ConsumeClaim(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	ctx := sess.Context()
	msgs := claim.Messages()
	batch := make([]*sarama.ConsumerMessage, 0, maxBatch)
	// Setup filled txns before any ConsumeClaim starts; read-only here.
	txn := h.txns[positionKey(claim.Topic(), claim.Partition())]
	if h.f.opts.ExactlyOnce && txn == nil {
		return fmt.Errorf("mirror: flow %q: no transactional producer for %s/%d", h.f.opts.Name, claim.Topic(), claim.Partition())
	}
	var acks *ackQueue
	runs := newRunLog(h.f.translator, claim.Topic(), claim.Partition())
	if txn == nil {
		acks = h.startAcks(sess, runs)
		defer acks.close()
	}
	for {
		batch = batch[:0]
		select {
		case <-ctx.Done():
			return nil
		case m, ok := <-msgs:
			if !ok {
				return nil
			}
			batch = append(batch, m)
		}
	fill:
		for len(batch) < maxBatch {
			select {
			case m, ok := <-msgs:
				if !ok {
					break fill
				}
				batch = append(batch, m)
			default:
				break fill
			}
		}
		h.f.setOldest(claim.Topic(), claim.Partition(), batch[0].Timestamp)
		read := h.f.m.readLatency.WithLabelValues(h.f.opts.Name)
		now := time.Now()
		for _, m := range batch {
			read.Observe(now.Sub(m.Timestamp).Seconds())
		}
		if txn != nil {
			if err := h.copyBatchTxn(ctx, sess, txn, runs, batch); err != nil {
				return err
			}
		} else if perr := h.copyBatch(ctx, acks, batch); perr != nil {
			h.stop(claim, *perr)
			return nil
		}
		lag := max(claim.HighWaterMarkOffset()-batch[len(batch)-1].Offset-1, 0)
		h.f.m.lag.WithLabelValues(h.f.opts.Name, claim.Topic(), strconv.Itoa(int(claim.Partition()))).Set(float64(lag))
		h.f.setLag(claim.Topic(), claim.Partition(), lag)
		h.f.setOldest(claim.Topic(), claim.Partition(), time.Time{})
	}
}

// copyBatch produces batch to the target, retrying transient failures until
// the session ends, and hands each acknowledged prefix to acks, which writes
// its offset syncs and then marks its offsets. It
// returns a PartitionError when a record is rejected permanently and no
// dead-letter topic is configured.
func (h *handler) copyBatch(ctx context.Context, acks *ackQueue, batch []*sarama.ConsumerMessage) *PartitionError {
	f := h.f
	pending := batch
	remote := f.opts.Naming.Remote(f.opts.SourceAlias, batch[0].Topic)
	backoff := 100 * time.Millisecond
	// A permanent rejection of a multi-record batch does not say which
	// record is at fault (the broker judges the whole batch), so the rest
	// of the batch is then sent one record at a time.
	single := false
	for len(pending) > 0 {
		n := len(pending)
		if single {
			n = 1
		}
		// Never send past a record that cannot fit: the broker could accept
		// what follows it and the target would hold a hole.
		if k := f.oversized(pending[:n]); k == 0 {
			done, perr := h.rejected(pending[0], sizeError{})
			if done == 1 {
				if !acks.push(ctx, pending[:1], nil) {
					return nil
				}
				pending = pending[1:]
				continue
			}
			if perr != nil {
				return perr
			}
			if !sleep(ctx, backoff) {
				return nil
			}
			continue
		} else if k > 0 {
			n = k
		}
		if k := f.fitBytes(pending[:n]); k < n {
			n = k
		}
		recs, idx, first := h.copies(pending[:n])
		done := n // records of pending that are done (copied, skipped or dead-lettered), as a prefix
		var perr *PartitionError
		var syncs []OffsetSync
		if len(recs) > 0 {
			base, err := f.batches.produce(ctx, remote, pending[0].Partition, pending[0].Offset, recs, first)
			if err == nil {
				syncs = batchSyncs(pending, idx, base)
			} else {
				done, perr = h.failed(pending[:n], idx, err)
				if perr != nil && len(recs) > 1 {
					single = true // isolate the culprit
					continue
				}
			}
		}
		if done > 0 {
			if !acks.push(ctx, pending[:done], syncs) {
				return nil
			}
			pending = pending[done:]
			backoff = 100 * time.Millisecond
		}
		if perr != nil {
			return perr
		}
		if done < n && len(pending) > 0 {
			select {
			case <-ctx.Done():
				return nil // not marked: re-copied by the next owner
			case <-time.After(backoff):
			}
			backoff = min(backoff*2, 5*time.Second)
		}
	}
	return nil
}

// copies converts the records of pending that the target has not seen
// (provenance) into one batch's copies; idx holds the place in pending of
// each copy and first the batch's first timestamp.
func (h *handler) copies(pending []*sarama.ConsumerMessage) (recs []*sarama.Record, idx []int, first time.Time) {
	f := h.f
	recs, idx = make([]*sarama.Record, 0, len(pending)), make([]int, 0, len(pending))
	slab := make([]sarama.Record, len(pending)) // one allocation for the batch
	for i, m := range pending {
		if contains(provenance(m.Headers), f.opts.TargetAlias) {
			f.m.skipped.WithLabelValues(f.opts.Name, m.Topic, strconv.Itoa(int(m.Partition))).Inc()
			continue
		}
		if len(recs) == 0 {
			first = recordTime(m)
		}
		rec := &slab[len(recs)]
		f.toRecord(rec, m, len(recs), first)
		recs = append(recs, rec)
		idx = append(idx, i)
	}
	return recs, idx, first
}

// failed sorts out a failed produce of the copies of pending (idx: their
// places): it returns how many records of pending are done, as a prefix,
// and a PartitionError if the failure is permanent and cannot be
// dead-lettered. A batch is written whole or not at all, so only records
// skipped before the first copy, or a single copy that was dead-lettered,
// are done. With more than one copy a permanent error does not say which
// record is at fault; the caller then retries record by record.
func (h *handler) failed(pending []*sarama.ConsumerMessage, idx []int, err error) (int, *PartitionError) {
	f := h.f
	m := pending[idx[0]]
	if !permanent(err) {
		f.m.errors.WithLabelValues(f.opts.Name, "produce_retriable").Inc()
		f.log.Warn("mirror: produce failed, retrying", "flow", f.opts.Name, "topic", m.Topic, "partition", m.Partition, "offset", m.Offset, "err", err)
		return idx[0], nil
	}
	if len(idx) > 1 {
		return idx[0], &PartitionError{Topic: m.Topic, Partition: m.Partition, Offset: m.Offset, Err: err, Since: time.Now()}
	}
	done, perr := h.rejected(m, err)
	return idx[0] + done, perr
}

// rejected handles one record the target will never accept: it goes to the
// dead-letter topic (done = 1) or its partition stops (a PartitionError). A
// failed dead-letter write returns done = 0 and no error: retry later.
func (h *handler) rejected(m *sarama.ConsumerMessage, cause error) (int, *PartitionError) {
	f := h.f
	f.m.errors.WithLabelValues(f.opts.Name, "produce_permanent").Inc()
	if f.opts.DeadLetterTopic != "" {
		derr := f.deadLetter(m, cause)
		if derr == nil {
			return 1, nil
		}
		f.log.Error("mirror: dead-letter write failed, retrying", "flow", f.opts.Name, "topic", m.Topic, "offset", m.Offset, "err", derr)
		return 0, nil
	}
	return 0, &PartitionError{Topic: m.Topic, Partition: m.Partition, Offset: m.Offset, Err: cause, Since: time.Now()}
}

// acked marks the offset after the last record of done and counts them;
// at is when the target acknowledged them (replication latency ends there,
// not at the later mark).
func (h *handler) acked(sess sarama.ConsumerGroupSession, done []*sarama.ConsumerMessage, at time.Time) {
	f := h.f
	last := done[len(done)-1]
	part := strconv.Itoa(int(last.Partition))
	var n int
	latency := f.m.latency.WithLabelValues(f.opts.Name)
	for _, m := range done {
		n += len(m.Key) + len(m.Value)
		for _, hd := range m.Headers {
			n += len(hd.Key) + len(hd.Value)
		}
		latency.Observe(at.Sub(m.Timestamp).Seconds())
		f.observeHeartbeat(m)
	}
	f.m.records.WithLabelValues(f.opts.Name, last.Topic, part).Add(float64(len(done)))
	f.copied.Add(int64(len(done)))
	f.m.bytes.WithLabelValues(f.opts.Name, last.Topic, part).Add(float64(n))
	sess.MarkOffset(last.Topic, last.Partition, last.Offset+1, "")
}

// stop parks a partition on a permanently rejected record: it is reported
// (log, metric, Flow.Stopped) and nothing after it is copied or committed
// until the flow restarts. The claim is drained without marking so the
// consumer group can still rebalance.
func (h *handler) stop(claim sarama.ConsumerGroupClaim, perr PartitionError) {
	f := h.f
	part := strconv.Itoa(int(perr.Partition))
	f.m.stopped.WithLabelValues(f.opts.Name, perr.Topic, part).Set(1)
	f.log.Error("mirror: partition stopped: the target rejects a record permanently; fix the target (e.g. max.message.bytes, ACLs) or set dead_letter_topic, then restart the flow",
		"flow", f.opts.Name, "topic", perr.Topic, "partition", perr.Partition, "offset", perr.Offset, "err", perr.Err)
	f.setStopped(perr)
	for range claim.Messages() {
	}
	f.clearStopped(perr.Topic, perr.Partition)
	f.m.stopped.WithLabelValues(f.opts.Name, perr.Topic, part).Set(0)
}

// sizeError stands for a record found too large for its remote topic
// before it was sent.
type sizeError struct{}

func (sizeError) Error() string {
	return "record too large for the target topic's max.message.bytes (checked before sending)"
}

func (sizeError) Unwrap() error { return sarama.ErrMessageSizeTooLarge }
