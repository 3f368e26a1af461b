package mirror

import (
	"context"
	"slices"
	"time"

	"github.com/IBM/sarama"
)

// ackQueue finishes acknowledged batches of one claim in order on its own
// goroutine: it writes their offset syncs to the target, adds them to the
// translator and only then marks the source offsets. The claim meanwhile
// produces its next batch, so a batch costs one round trip to the target
// instead of two. Records are still marked only after the target holds
// them and their syncs (at-least-once is unchanged).
type ackQueue struct {
	h    *handler
	sess sarama.ConsumerGroupSession
	ch   chan ackItem
	done chan struct{}
}

type ackItem struct {
	recs  []*sarama.ConsumerMessage // acknowledged, in offset order
	syncs []OffsetSync              // their offset syncs (none for dead-lettered records)
}

// queueDepth bounds the batches acknowledged but not yet marked per claim.
const queueDepth = 4

func (h *handler) startAcks(sess sarama.ConsumerGroupSession) *ackQueue {
	q := &ackQueue{h: h, sess: sess, ch: make(chan ackItem, queueDepth), done: make(chan struct{})}
	go q.run(sess.Context())
	return q
}

// push hands over an acknowledged prefix; recs is copied, so the caller may
// reuse its slice. It blocks while queueDepth batches wait and returns
// false once ctx ends (the records stay unmarked and are re-copied by the
// next owner).
func (q *ackQueue) push(ctx context.Context, recs []*sarama.ConsumerMessage, syncs []OffsetSync) bool {
	select {
	case q.ch <- ackItem{recs: slices.Clone(recs), syncs: syncs}:
		return true
	case <-ctx.Done():
		return false
	}
}

// close waits until every pushed batch is marked or abandoned.
func (q *ackQueue) close() {
	close(q.ch)
	<-q.done
}

func (q *ackQueue) run(ctx context.Context) {
	defer close(q.done)
	f := q.h.f
	for it := range q.ch {
		if ctx.Err() != nil {
			continue // drain: nothing more is marked in this session
		}
		if !f.writeSyncsRetrying(ctx, it.syncs) {
			continue
		}
		q.h.acked(q.sess, it.recs)
	}
}

// writeSyncsRetrying writes syncs until the target acknowledges them (the
// records they describe are already there, so retrying the sync, not
// re-copying the records, is what is needed) and adds them to the
// translator. It returns false if ctx ended first.
func (f *Flow) writeSyncsRetrying(ctx context.Context, syncs []OffsetSync) bool {
	if len(syncs) == 0 {
		return true
	}
	backoff := 100 * time.Millisecond
	for {
		err := f.producer.SendMessages(f.syncRecords(syncs))
		if err == nil {
			break
		}
		f.m.errors.WithLabelValues(f.opts.Name, "offset_sync").Inc()
		f.log.Warn("mirror: offset-sync write failed, retrying", "flow", f.opts.Name, "topic", syncs[0].Topic, "partition", syncs[0].Partition, "err", err)
		if !sleep(ctx, backoff) {
			return false
		}
		backoff = min(backoff*2, 5*time.Second)
	}
	for _, s := range syncs {
		f.translator.Add(s)
	}
	return true
}
