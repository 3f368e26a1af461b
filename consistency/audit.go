package consistency

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"sort"
	"sync"
	"time"

	"github.com/IBM/sarama"

	"github.com/regionsync/regionsync/mirror"
)

// Digest hashes what a mirror must carry over unchanged: key, value and
// headers in order, nulls distinct from empties, the mirror's provenance
// header left out.
func Digest(key, value []byte, headers []*sarama.RecordHeader) uint64 {
	h := fnv.New64a()
	field := func(b []byte, null bool) {
		var n [9]byte
		if null {
			n[0] = 1
		}
		binary.BigEndian.PutUint64(n[1:], uint64(len(b)))
		h.Write(n[:])
		h.Write(b)
	}
	field(key, key == nil)
	field(value, value == nil)
	for _, hd := range headers {
		if bytes.Equal(hd.Key, []byte(mirror.ProvenanceHeader)) {
			continue
		}
		field(hd.Key, false)
		field(hd.Value, false)
	}
	return h.Sum64()
}

// record is what the audit keeps of one record.
type record struct {
	offset int64
	ts     time.Time
	digest uint64
}

// WindowResult is the audit of one partition over one closed time window
// (by record timestamp): counts and both checksums per side, and every
// record that differs, by offset.
type WindowResult struct {
	Topic       string    `json:"topic"` // source topic
	RemoteTopic string    `json:"remoteTopic"`
	Partition   int32     `json:"partition"`
	Start       time.Time `json:"start"`
	End         time.Time `json:"end"`
	Source      Side      `json:"source"`
	Target      Side      `json:"target"`
	// Missing: source offsets with no copy on the target.
	Missing []int64 `json:"missing,omitempty"`
	// Duplicated: target offsets holding a second copy of a source record.
	Duplicated []int64 `json:"duplicated,omitempty"`
	// Reordered: target offsets holding a record that arrived after a
	// record that follows it on the source.
	Reordered []int64 `json:"reordered,omitempty"`
	// Unexpected: target offsets matching no source record of the window.
	Unexpected []int64 `json:"unexpected,omitempty"`
}

// Side is one side's figures for a window.
type Side struct {
	Records int `json:"records"`
	// Sum is order-independent (the sum of record digests), Chain
	// order-dependent (a hash chained over the digests in offset order).
	Sum   uint64 `json:"sum"`
	Chain uint64 `json:"chain"`
	// First and Last offsets of the window on this side (-1: none).
	First int64 `json:"first"`
	Last  int64 `json:"last"`
}

// Clean reports whether the window's copy is exact.
func (w WindowResult) Clean() bool {
	return len(w.Missing) == 0 && len(w.Duplicated) == 0 && len(w.Reordered) == 0 && len(w.Unexpected) == 0 &&
		w.Source.Records == w.Target.Records && w.Source.Sum == w.Target.Sum && w.Source.Chain == w.Target.Chain
}

func chain(acc, d uint64) uint64 { return acc*1099511628211 ^ d }

func side(rs []record) Side {
	s := Side{Records: len(rs), First: -1, Last: -1}
	for i, r := range rs {
		s.Sum += r.digest
		s.Chain = chain(s.Chain, r.digest)
		if i == 0 {
			s.First = r.offset
		}
		s.Last = r.offset
	}
	return s
}

// compareWindow matches the target's records of a window to the source's
// in order: each target record takes the earliest unmatched source record
// with its digest.
func compareWindow(src, dst []record) (missing, duplicated, reordered, unexpected []int64) {
	bySum := make(map[uint64][]int, len(src))
	for i, r := range src {
		bySum[r.digest] = append(bySum[r.digest], i)
	}
	next := make(map[uint64]int, len(bySum))
	matched := make([]bool, len(src))
	latest := -1
	for _, r := range dst {
		idxs, ok := bySum[r.digest]
		switch {
		case !ok:
			unexpected = append(unexpected, r.offset)
			continue
		case next[r.digest] >= len(idxs):
			duplicated = append(duplicated, r.offset)
			continue
		}
		i := idxs[next[r.digest]]
		next[r.digest]++
		matched[i] = true
		if i < latest {
			reordered = append(reordered, r.offset)
		}
		latest = max(latest, i)
	}
	for i, m := range matched {
		if !m {
			missing = append(missing, src[i].offset)
		}
	}
	return missing, duplicated, reordered, unexpected
}

// windowsOf groups records by window start (records in offset order).
func windowsOf(rs []record, window time.Duration) map[time.Time][]record {
	out := map[time.Time][]record{}
	for _, r := range rs {
		w := r.ts.Truncate(window)
		out[w] = append(out[w], r)
	}
	return out
}

// readRecords reads topic/partition from the oldest offset to the
// high-water mark (read_committed when cons is).
func readRecords(ctx context.Context, client sarama.Client, cons sarama.Consumer, topic string, part int32) ([]record, error) {
	hw, err := client.GetOffset(topic, part, sarama.OffsetNewest)
	if err != nil {
		return nil, fmt.Errorf("%s/%d high-water mark: %w", topic, part, err)
	}
	var out []record
	err = mirror.ReadPartition(ctx, cons, topic, part, hw, mirror.MarkerSlack, func(m *sarama.ConsumerMessage) error {
		out = append(out, record{offset: m.Offset, ts: m.Timestamp, digest: Digest(m.Key, m.Value, m.Headers)})
		return nil
	})
	return out, err
}

// AuditOptions configure one audit pass over a topic.
type AuditOptions struct {
	// Topic on the source and RemoteTopic on the target.
	Topic, RemoteTopic string
	// Window length (default 1m).
	Window time.Duration
	// Settle: a window is judged once its end is this far in the past, or
	// as soon as the target holds a record stamped at or after its end
	// (the mirror is past it). Windows inside the mirror's lag wait.
	// Default 2m.
	Settle time.Duration
	Now    time.Time
}

// AuditTopic audits every closed window of every partition of a topic,
// partitions in parallel, and returns the windows judged (sorted) and how
// many windows still wait for the mirror.
func AuditTopic(ctx context.Context, src, dst sarama.Client, o AuditOptions) ([]WindowResult, int, error) {
	if o.Window <= 0 {
		o.Window = time.Minute
	}
	if o.Settle <= 0 {
		o.Settle = 2 * time.Minute
	}
	if o.Now.IsZero() {
		o.Now = time.Now()
	}
	parts, err := src.Partitions(o.Topic)
	if err != nil {
		return nil, 0, fmt.Errorf("source topic %s: %w", o.Topic, err)
	}
	srcCons, err := sarama.NewConsumerFromClient(src)
	if err != nil {
		return nil, 0, err
	}
	defer srcCons.Close()
	dstCons, err := sarama.NewConsumerFromClient(dst)
	if err != nil {
		return nil, 0, err
	}
	defer dstCons.Close()
	var (
		mu      sync.Mutex
		out     []WindowResult
		pending int
		first   error
		wg      sync.WaitGroup
	)
	for _, p := range parts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ws, wait, err := auditPartition(ctx, srcCons, dstCons, src, dst, o, p)
			mu.Lock()
			defer mu.Unlock()
			if err != nil && first == nil {
				first = err
			}
			out = append(out, ws...)
			pending += wait
		}()
	}
	wg.Wait()
	sort.Slice(out, func(i, j int) bool {
		if out[i].Partition != out[j].Partition {
			return out[i].Partition < out[j].Partition
		}
		return out[i].Start.Before(out[j].Start)
	})
	return out, pending, first
}

func auditPartition(ctx context.Context, srcCons, dstCons sarama.Consumer, src, dst sarama.Client, o AuditOptions, p int32) ([]WindowResult, int, error) {
	srs, err := readRecords(ctx, src, srcCons, o.Topic, p)
	if err != nil {
		return nil, 0, fmt.Errorf("source: %w", err)
	}
	drs, err := readRecords(ctx, dst, dstCons, o.RemoteTopic, p)
	if err != nil {
		return nil, 0, fmt.Errorf("target: %w", err)
	}
	var newest time.Time
	for _, r := range drs {
		if r.ts.After(newest) {
			newest = r.ts
		}
	}
	sw, dw := windowsOf(srs, o.Window), windowsOf(drs, o.Window)
	starts := map[time.Time]bool{}
	for w := range sw {
		starts[w] = true
	}
	for w := range dw {
		starts[w] = true
	}
	var out []WindowResult
	pending := 0
	for w := range starts {
		end := w.Add(o.Window)
		if end.After(o.Now.Add(-o.Settle)) && newest.Before(end) {
			pending++ // open, or inside the mirror's lag
			continue
		}
		res := WindowResult{Topic: o.Topic, RemoteTopic: o.RemoteTopic, Partition: p, Start: w.UTC(), End: end.UTC(),
			Source: side(sw[w]), Target: side(dw[w])}
		res.Missing, res.Duplicated, res.Reordered, res.Unexpected = compareWindow(sw[w], dw[w])
		out = append(out, res)
	}
	return out, pending, nil
}
