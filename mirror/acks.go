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
// produces its next batches, so a batch costs one round trip to the target
// instead of two. Records are still marked only after the target holds
// them and their syncs (at-least-once is unchanged).
//
// Sync writes are grouped: batches acknowledged while a sync write was
// under way go in the next one, as one record per run (runLog).
type ackQueue struct {
	h    *handler
	sess sarama.ConsumerGroupSession
	ch   chan ackItem
	done chan struct{}
	runs *runLog
}

type ackItem struct {
	recs  []*sarama.ConsumerMessage // acknowledged, in offset order
	syncs []OffsetSync              // their offset syncs (none for dead-lettered records)
	at    time.Time                 // when the target acknowledged them
}

// queueDepth bounds the batches acknowledged but not yet marked per claim.
// They pin their records' fetch buffers: waiting to gather more (tried: up
// to 16 batches, 20 ms) raised the garbage collector's work more than it
// saved in sync writes (loadtests/mirrorbench: 9.1-9.9 CPU-s per million
// records instead of 7.1-7.5).
const queueDepth = 4

func (h *handler) startAcks(sess sarama.ConsumerGroupSession, runs *runLog) *ackQueue {
	q := &ackQueue{h: h, sess: sess, ch: make(chan ackItem, queueDepth), done: make(chan struct{}), runs: runs}
	go q.run(sess.Context())
	return q
}

// push hands over an acknowledged prefix; recs is copied, so the caller may
// reuse its slice. It blocks while queueDepth batches wait and returns
// false once ctx ends (the records stay unmarked and are re-copied by the
// next owner).
func (q *ackQueue) push(ctx context.Context, recs []*sarama.ConsumerMessage, syncs []OffsetSync) bool {
	select {
	case q.ch <- ackItem{recs: slices.Clone(recs), syncs: syncs, at: time.Now()}:
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
	items := make([]ackItem, 0, queueDepth+1)
	for it := range q.ch {
		items = q.gather(append(items[:0], it))
		if ctx.Err() != nil {
			continue // drain: nothing more is marked in this session
		}
		var syncs []OffsetSync
		for _, it := range items {
			syncs = append(syncs, it.syncs...)
		}
		if len(syncs) > 0 {
			recs, run := q.runs.records(syncs)
			if !q.h.f.writeSyncsRetrying(ctx, recs) {
				continue
			}
			q.runs.commit(run)
		}
		for _, it := range items {
			q.h.acked(q.sess, it.recs, it.at)
		}
	}
}

// gather adds to items the batches already queued behind them.
func (q *ackQueue) gather(items []ackItem) []ackItem {
	for len(items) < cap(items) {
		select {
		case it, ok := <-q.ch:
			if !ok {
				return items
			}
			items = append(items, it)
		default:
			return items
		}
	}
	return items
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
