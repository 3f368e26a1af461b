package replicate

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/IBM/sarama"
)

// recordWait bounds the read of one record's timestamp.
const recordWait = 2 * time.Second

// lagFigures fills the partitions, LagRecords and RecordLagSeconds. Lag is
// the source high-water mark minus the next upstream offset the offset-sync
// log says was copied (the log start when nothing was copied yet). Record
// lag seconds come from the timestamp of that next record, read from the
// source; they are unknown until the offset-sync log was read to its end.
func (o *flowObserver) lagFigures(ctx context.Context, ff *FlowFigures, now time.Time) error {
	parts, err := o.sourcePartitions()
	if err != nil {
		return err
	}
	hws, hwErr := listOffsets(o.src, parts, sarama.OffsetNewest)
	olds, oldErr := listOffsets(o.src, parts, sarama.OffsetOldest)
	synced := o.syncTail != nil && o.syncTail.caughtUp.Load()
	o.mu.Lock()
	copied := make(map[tp]int64, len(parts))
	for _, p := range parts {
		if c, ok := o.copied[p]; ok {
			copied[p] = c
		}
	}
	o.mu.Unlock()
	worst, known := 0.0, synced && hwErr == nil && oldErr == nil
	var firstErr error
	for _, p := range parts {
		hw, ok1 := hws[p]
		old, ok2 := olds[p]
		if !ok1 || !ok2 {
			continue
		}
		next, ok := copied[p]
		if !ok {
			next = old
		}
		pf := PartitionFigures{Topic: p.topic, Partition: p.partition, HighWater: hw, Copied: next,
			LagRecords: max(0, hw-next), LagSeconds: UnknownFigure()}
		if synced {
			age, err := o.partitionAge(ctx, p, max(next, old), hw, now)
			if err != nil && firstErr == nil {
				firstErr = err
			}
			pf.LagSeconds = age
			if age.Known() {
				worst = max(worst, float64(age))
			} else {
				known = false
			}
		}
		ff.LagRecords += pf.LagRecords
		ff.Partitions = append(ff.Partitions, pf)
	}
	if known {
		ff.RecordLagSeconds = Figure(worst)
	}
	return errors.Join(hwErr, oldErr, firstErr, o.syncTailError())
}

func (o *flowObserver) syncTailError() error {
	if o.syncTail == nil {
		return nil
	}
	if e := o.syncTail.lastErr.Load(); e != nil {
		return fmt.Errorf("offset-sync tail: %w", *e)
	}
	return nil
}

// partitionAge is now minus the timestamp of the record at next (0 when
// next is the high-water mark). Timestamps are cached per partition for the
// last offset read.
func (o *flowObserver) partitionAge(ctx context.Context, p tp, next, hw int64, now time.Time) (Figure, error) {
	if next >= hw {
		delete(o.tsCache, p)
		return 0, nil
	}
	c, ok := o.tsCache[p]
	if !ok || c.offset != next {
		ts, _, got, err := recordTime(ctx, o.srcCons, p, next, recordWait)
		if err != nil {
			return UnknownFigure(), err
		}
		if !got {
			return UnknownFigure(), fmt.Errorf("no record of %s at offset %d within %s", p, next, recordWait)
		}
		c = cachedTime{offset: next, ts: ts}
		o.tsCache[p] = c
	}
	return Figure(max(0, now.Sub(c.ts).Seconds())), nil
}

// checkpointFigures compares, for every consumer group of the source that is
// not regionsync's own and not active on the target, its committed source
// offsets (translated exactly through the offset-sync log) with the same
// group's offsets on the target. An offset that is missing or behind there
// is stale; the age is how long the oldest stale one has been seen stale.
func (o *flowObserver) checkpointFigures(ctx context.Context, ff *FlowFigures, now time.Time) error {
	if o.syncTail == nil || !o.syncTail.caughtUp.Load() {
		return nil
	}
	o.mu.Lock()
	if !o.cp.running && ctx.Err() == nil {
		o.cp.running = true
		o.cpWG.Add(1)
		go func() {
			defer o.cpWG.Done()
			stale, oldest, err := o.checkpointPass(time.Now())
			o.mu.Lock()
			o.cp = checkpointResult{done: true, stale: stale, oldest: oldest, err: err}
			o.mu.Unlock()
		}()
	}
	cp := o.cp
	o.mu.Unlock()
	if !cp.done {
		return nil
	}
	if cp.err != nil {
		return cp.err
	}
	ff.StaleCheckpoints = cp.stale
	ff.CheckpointAgeSeconds = 0
	if cp.stale > 0 {
		ff.CheckpointAgeSeconds = Figure(max(0, now.Sub(cp.oldest).Seconds()))
	}
	return nil
}

// checkpointPass compares every consumer group's translated offsets with
// the target's and returns how many are stale and since when the oldest.
func (o *flowObserver) checkpointPass(now time.Time) (int, time.Time, error) {
	groups, err := o.srcAdmin.ListConsumerGroups()
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("source consumer groups: %w", err)
	}
	var names []string
	for g := range groups {
		if !strings.HasPrefix(g, "regionsync-") {
			names = append(names, g)
		}
	}
	active := map[string]bool{}
	if len(names) > 0 {
		desc, err := o.dstAdmin.DescribeConsumerGroups(names)
		if err != nil {
			return 0, time.Time{}, fmt.Errorf("target consumer groups: %w", err)
		}
		for _, d := range desc {
			active[d.GroupId] = d.State != "" && d.State != "Empty" && d.State != "Dead"
		}
	}
	seen := map[string]bool{}
	for _, g := range names {
		if active[g] {
			continue
		}
		if err := o.checkGroup(g, now, seen); err != nil {
			return 0, time.Time{}, err
		}
	}
	oldest := now
	for k, since := range o.staleSince {
		if !seen[k] {
			delete(o.staleSince, k)
		} else if since.Before(oldest) {
			oldest = since
		}
	}
	return len(o.staleSince), oldest, nil
}

// checkGroup marks in seen every stale offset of group g, noting when each
// was first seen stale.
func (o *flowObserver) checkGroup(g string, now time.Time, seen map[string]bool) error {
	srcOff, err := o.srcAdmin.ListConsumerGroupOffsets(g, nil)
	if err != nil {
		return fmt.Errorf("source offsets of group %q: %w", g, err)
	}
	dstOff, err := o.dstAdmin.ListConsumerGroupOffsets(g, nil)
	if err != nil && !errors.Is(err, sarama.ErrGroupIDNotFound) {
		return fmt.Errorf("target offsets of group %q: %w", g, err)
	}
	for topic, parts := range srcOff.Blocks {
		if !o.f.Selector.Match(topic) || o.f.Naming.FromCluster(o.f.Target, topic) {
			continue
		}
		remote := o.f.Naming.Remote(o.f.Source, topic)
		for p, b := range parts {
			if b == nil || b.Offset < 0 {
				continue
			}
			o.mu.Lock()
			want, ok := o.translator.Translate(topic, p, b.Offset)
			o.mu.Unlock()
			if !ok {
				continue // not copied yet: the lag figures show that
			}
			have := int64(-1)
			if dstOff != nil {
				if db := dstOff.GetBlock(remote, p); db != nil {
					have = db.Offset
				}
			}
			if have >= want {
				continue
			}
			k := fmt.Sprintf("%s %s/%d", g, topic, p)
			seen[k] = true
			if _, ok := o.staleSince[k]; !ok {
				o.staleSince[k] = now
			}
		}
	}
	return nil
}
