package mirror

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
	"sync"
)

// An offset sync says: upstream offsets [Upstream, Upstream+Count) of a
// source partition were written, in order and without gaps, at downstream
// offsets [Downstream, Downstream+Count) of the same partition of the remote
// topic. The flow writes one per contiguous run of every acknowledged batch
// to its offset-sync topic on the target, so translation is exact (not
// MirrorMaker 2's "nearest sync + 1").
type OffsetSync struct {
	Topic      string // source topic
	Partition  int32
	Upstream   int64
	Downstream int64
	Count      int64
}

// continuedBy reports whether next starts where s ends, on both sides, in
// the same partition: the two form one run.
func (s OffsetSync) continuedBy(next OffsetSync) bool {
	return s.Count > 0 && s.Topic == next.Topic && s.Partition == next.Partition &&
		s.Upstream+s.Count == next.Upstream && s.Downstream+s.Count == next.Downstream
}

// OffsetSyncTopic is the offset-sync topic of flow on its target cluster.
func OffsetSyncTopic(flow string) string { return OffsetSyncTopicPrefix + flow }

// Key is the record key: the run's first upstream offset. A run is written
// again, under the same key, each time it grows (see runLog), so compaction
// keeps one record per run: the topic grows with the gaps in the copied
// partitions, not with the batches copied.
func (s OffsetSync) Key() []byte {
	return fmt.Appendf(nil, "%s/%d/%d", s.Topic, s.Partition, s.Upstream)
}

// MarshalBinary encodes the value: version byte, then varints.
func (s OffsetSync) MarshalBinary() ([]byte, error) {
	b := []byte{1}
	b = binary.AppendUvarint(b, uint64(len(s.Topic)))
	b = append(b, s.Topic...)
	b = binary.AppendVarint(b, int64(s.Partition))
	b = binary.AppendVarint(b, s.Upstream)
	b = binary.AppendVarint(b, s.Downstream)
	return binary.AppendVarint(b, s.Count), nil
}

// ErrBadOffsetSync is returned for offset-sync records that cannot be read.
var ErrBadOffsetSync = errors.New("mirror: malformed offset-sync record")

// UnmarshalBinary decodes a value written by MarshalBinary.
func (s *OffsetSync) UnmarshalBinary(b []byte) error {
	if len(b) == 0 || b[0] != 1 {
		return fmt.Errorf("%w: unknown version", ErrBadOffsetSync)
	}
	b = b[1:]
	n, k := binary.Uvarint(b)
	if k <= 0 || uint64(len(b)-k) < n {
		return fmt.Errorf("%w: topic", ErrBadOffsetSync)
	}
	s.Topic, b = string(b[k:k+int(n)]), b[k+int(n):]
	var vals [4]int64
	for i := range vals {
		v, k := binary.Varint(b)
		if k <= 0 {
			return fmt.Errorf("%w: field %d", ErrBadOffsetSync, i)
		}
		vals[i], b = v, b[k:]
	}
	s.Partition, s.Upstream, s.Downstream, s.Count = int32(vals[0]), vals[1], vals[2], vals[3]
	if s.Count <= 0 || s.Upstream < 0 || s.Downstream < 0 {
		return fmt.Errorf("%w: negative offset or empty run", ErrBadOffsetSync)
	}
	return nil
}

// runs splits acknowledged (upstream, downstream) pairs, in order, into
// maximal runs contiguous on both sides.
func runs(topic string, partition int32, up, down []int64) []OffsetSync {
	var out []OffsetSync
	for i := range up {
		s := OffsetSync{Topic: topic, Partition: partition, Upstream: up[i], Downstream: down[i], Count: 1}
		if n := len(out); n > 0 && out[n-1].continuedBy(s) {
			out[n-1].Count++
			continue
		}
		out = append(out, s)
	}
	return out
}

// Translator maps committed source offsets to target offsets from offset
// syncs. It is safe for concurrent use.
type Translator struct {
	mu   sync.RWMutex
	runs map[tp][]OffsetSync // runs sorted by Upstream
}

type tp struct {
	topic     string
	partition int32
}

// NewTranslator returns an empty translator.
func NewTranslator() *Translator { return &Translator{runs: map[tp][]OffsetSync{}} }

// Add records a sync. Where it overlaps runs already known (a re-copy
// after a crash writes the same upstream offsets again, at new downstream
// offsets) the newer sync wins for the offsets it covers. Runs contiguous on
// both sides are merged, so memory grows with the gaps in a partition, not
// with the number of batches copied.
func (t *Translator) Add(s OffsetSync) {
	t.mu.Lock()
	defer t.mu.Unlock()
	k := tp{s.Topic, s.Partition}
	old := t.runs[k]
	end := s.Upstream + s.Count
	// Fast paths: s extends the last run, or rewrites it longer (the same
	// mapping from a point inside it on: runLog's records).
	if n := len(old); n > 0 {
		last := &old[n-1]
		lastEnd := last.Upstream + last.Count
		if s.Upstream >= last.Upstream && s.Upstream <= lastEnd && end >= lastEnd &&
			s.Downstream-s.Upstream == last.Downstream-last.Upstream {
			last.Count = end - last.Upstream
			return
		}
		if lastEnd <= s.Upstream {
			t.runs[k] = append(old, s)
			return
		}
	}
	rs := make([]OffsetSync, 0, len(old)+2)
	for _, r := range old {
		rEnd := r.Upstream + r.Count
		if rEnd <= s.Upstream || r.Upstream >= end {
			rs = append(rs, r)
			continue
		}
		if r.Upstream < s.Upstream { // the part before s
			head := r
			head.Count = s.Upstream - r.Upstream
			rs = append(rs, head)
		}
		if rEnd > end { // the part after s
			tail := r
			tail.Upstream, tail.Downstream, tail.Count = end, r.Downstream+(end-r.Upstream), rEnd-end
			rs = append(rs, tail)
		}
	}
	i := sort.Search(len(rs), func(i int) bool { return rs[i].Upstream >= s.Upstream })
	rs = append(rs, OffsetSync{})
	copy(rs[i+1:], rs[i:])
	rs[i] = s
	// Merge s with its neighbours where contiguous on both sides.
	merged := rs[:0]
	for _, r := range rs {
		if n := len(merged); n > 0 && merged[n-1].continuedBy(r) {
			merged[n-1].Count += r.Count
			continue
		}
		merged = append(merged, r)
	}
	t.runs[k] = merged
}

// Runs returns how many runs the translator holds for a partition.
func (t *Translator) Runs(topic string, partition int32) int {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return len(t.runs[tp{topic, partition}])
}

// Last returns the partition's last run (by upstream offset), if any.
func (t *Translator) Last(topic string, partition int32) (OffsetSync, bool) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	rs := t.runs[tp{topic, partition}]
	if len(rs) == 0 {
		return OffsetSync{}, false
	}
	return rs[len(rs)-1], true
}

// Translate returns the target offset a consumer should resume from when
// it committed upstream offset committed (the next record to read) on the
// source: the downstream offset of the first mirrored record at or after
// committed. ok is false when no mirrored record at or after committed is
// known yet (the consumer is ahead of the mirror); the caller must not
// commit anything then.
func (t *Translator) Translate(topic string, partition int32, committed int64) (offset int64, ok bool) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	rs := t.runs[tp{topic, partition}]
	// The first run that ends after committed.
	i := sort.Search(len(rs), func(i int) bool { return rs[i].Upstream+rs[i].Count > committed })
	if i == len(rs) {
		return 0, false
	}
	r := rs[i]
	if committed <= r.Upstream {
		return r.Downstream, true
	}
	return r.Downstream + (committed - r.Upstream), true
}

// runLog turns one partition's offset syncs into the records written to the
// offset-sync topic: a sync that continues the partition's last written run
// (contiguous on both sides) is written as that run, grown, under the run's
// key, so compaction drops the run's earlier, shorter records. One runLog
// serves one claim; it starts from the translator's last run, so a run
// continues across restarts and rebalances.
type runLog struct {
	last OffsetSync // the last run written; Count 0 when none
}

func newRunLog(t *Translator, topic string, partition int32) *runLog {
	last, _ := t.Last(topic, partition)
	return &runLog{last: last}
}

// records returns what to write for syncs (in offset order), and the run
// to remember once they are written (commit).
func (l *runLog) records(syncs []OffsetSync) ([]OffsetSync, OffsetSync) {
	out := make([]OffsetSync, 0, len(syncs))
	last := l.last
	for _, s := range syncs {
		switch {
		case !last.continuedBy(s):
			last = s
			out = append(out, last)
		case len(out) == 0: // grows the run written before
			last.Count += s.Count
			out = append(out, last)
		default: // grows the run just appended
			last.Count += s.Count
			out[len(out)-1] = last
		}
	}
	return out, last
}

// commit remembers run as the last one written.
func (l *runLog) commit(run OffsetSync) { l.last = run }
