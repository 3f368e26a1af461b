package mirrortest

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/IBM/sarama"

	"github.com/regionsync/regionsync/consistency"
	"github.com/regionsync/regionsync/mirror"
)

// BulkRecord builds record i of a bulk run: round-robin over parts
// partitions, every 7th key null, every 11th value a tombstone, every 13th
// value empty (not null), one to three headers of which the first ("seq")
// makes every record unique, and a millisecond timestamp after base.
func BulkRecord(topic string, parts int32, base time.Time, i int, valueSize int) *sarama.ProducerMessage {
	m := &sarama.ProducerMessage{Topic: topic, Partition: int32(i) % parts, Timestamp: base.Add(time.Duration(i) * time.Millisecond)}
	if i%7 != 0 {
		m.Key = sarama.StringEncoder("k" + strconv.Itoa(i%1009))
	}
	switch {
	case i%11 == 0:
	case i%13 == 0:
		m.Value = sarama.ByteEncoder([]byte{})
	default:
		v := make([]byte, 0, valueSize)
		v = append(v, "value-"...)
		v = strconv.AppendInt(v, int64(i), 10)
		for len(v) < valueSize-i%32 {
			v = append(v, byte('a'+i%26))
		}
		m.Value = sarama.ByteEncoder(v)
	}
	m.Headers = append(m.Headers, sarama.RecordHeader{Key: []byte("seq"), Value: []byte(strconv.Itoa(i))})
	for h := 1; h < 1+i%3; h++ {
		m.Headers = append(m.Headers, sarama.RecordHeader{Key: []byte("h" + strconv.Itoa(h)), Value: []byte(topic)})
	}
	return m
}

// ProduceBulk writes records from..to-1 of BulkRecord to topic with an
// idempotent producer and returns once every one is acknowledged. progress,
// when not nil, is called with the number acknowledged so far every 10,000
// records.
func ProduceBulk(ctx context.Context, brokers []string, topic string, parts int32, base time.Time, from, to, valueSize int, progress func(int)) error {
	c := Config()
	c.Producer.Flush.Frequency = 10 * time.Millisecond
	c.Producer.Flush.MaxMessages = 0
	c.Producer.Flush.Messages = 2000
	c.Producer.Compression = sarama.CompressionLZ4
	p, err := sarama.NewAsyncProducer(brokers, c)
	if err != nil {
		return err
	}
	go func() {
		for i := from; i < to && ctx.Err() == nil; i++ {
			p.Input() <- BulkRecord(topic, parts, base, i, valueSize)
		}
	}()
	var firstErr error
	for n := from; n < to; n++ {
		select {
		case <-p.Successes():
		case e := <-p.Errors():
			if firstErr == nil {
				firstErr = fmt.Errorf("produce to %s: %w", topic, e)
			}
		case <-ctx.Done():
			_ = p.Close()
			return ctx.Err()
		}
		if progress != nil && (n-from+1)%10000 == 0 {
			progress(n - from + 1)
		}
	}
	if err := p.Close(); err != nil && firstErr == nil {
		firstErr = err
	}
	return firstErr
}

// PartitionCheck is the checker's verdict on one partition.
type PartitionCheck struct {
	Partition  int32
	Source     int // records on the source
	Target     int // records on the target (read_committed)
	Missing    int // source records never seen on the target
	Duplicates int // target records that repeat one seen before
	Reordered  int // target records that arrived after a record that follows them on the source
	Foreign    int // target records that match no source record
	// SourceSum and TargetSum chain the record digests in log order; on
	// the target only first occurrences count, so they are equal exactly
	// when the target holds the source's records in the source's order.
	SourceSum, TargetSum uint64
	Problems             []string // the first few problems, with offsets
}

// CheckReport is the checker's verdict on a topic pair.
type CheckReport struct {
	Partitions []PartitionCheck
	Source     int
	Target     int
	Missing    int
	Duplicates int
	Reordered  int
	Foreign    int
	Mismatched int // partitions whose ordered checksums differ
}

// OK reports no missing, reordered, foreign or checksum-mismatched record;
// duplicates are allowed (at-least-once) and are reported.
func (r CheckReport) OK() bool {
	return r.Missing == 0 && r.Reordered == 0 && r.Foreign == 0 && r.Mismatched == 0
}

func (r CheckReport) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "source=%d target=%d missing=%d duplicates=%d reordered=%d foreign=%d checksum-mismatched-partitions=%d",
		r.Source, r.Target, r.Missing, r.Duplicates, r.Reordered, r.Foreign, r.Mismatched)
	for _, p := range r.Partitions {
		for _, pr := range p.Problems {
			fmt.Fprintf(&b, "\n  partition %d: %s", p.Partition, pr)
		}
	}
	return b.String()
}

// Check reads srcTopic on src and dstTopic on dst (read_committed, every
// partition to its high-water mark) and compares them partition by
// partition. It relies on nothing the mirror keeps: a record is identified
// by a digest of its key, value, headers (without the provenance header)
// and timestamp, so the source records must be distinct (BulkRecord's seq
// header makes them so).
func Check(ctx context.Context, src, dst []string, srcTopic, dstTopic string) (CheckReport, error) {
	var rep CheckReport
	srcDigests, err := readDigests(ctx, src, srcTopic)
	if err != nil {
		return rep, fmt.Errorf("read source %s: %w", srcTopic, err)
	}
	dstDigests, err := readDigests(ctx, dst, dstTopic)
	if err != nil {
		return rep, fmt.Errorf("read target %s: %w", dstTopic, err)
	}
	parts := make([]int32, 0, len(srcDigests))
	for p := range srcDigests {
		parts = append(parts, p)
	}
	for p := range dstDigests {
		if _, ok := srcDigests[p]; !ok {
			parts = append(parts, p)
		}
	}
	sort.Slice(parts, func(i, j int) bool { return parts[i] < parts[j] })
	for _, p := range parts {
		pc := comparePartition(p, srcDigests[p], dstDigests[p])
		rep.Partitions = append(rep.Partitions, pc)
		rep.Source += pc.Source
		rep.Target += pc.Target
		rep.Missing += pc.Missing
		rep.Duplicates += pc.Duplicates
		rep.Reordered += pc.Reordered
		rep.Foreign += pc.Foreign
		if pc.SourceSum != pc.TargetSum {
			rep.Mismatched++
		}
	}
	return rep, nil
}

type digest struct {
	offset int64
	sum    uint64
}

func comparePartition(p int32, src, dst []digest) PartitionCheck {
	pc := PartitionCheck{Partition: p, Source: len(src), Target: len(dst)}
	problem := func(format string, args ...any) {
		if len(pc.Problems) < 5 {
			pc.Problems = append(pc.Problems, fmt.Sprintf(format, args...))
		}
	}
	index := make(map[uint64]int, len(src))
	for i, d := range src {
		index[d.sum] = i
		pc.SourceSum = chain(pc.SourceSum, d.sum)
	}
	seen := make([]bool, len(src))
	latest := -1 // the highest source index seen so far
	for _, d := range dst {
		i, ok := index[d.sum]
		switch {
		case !ok:
			pc.Foreign++
			problem("target offset %d matches no source record", d.offset)
			continue
		case seen[i]:
			pc.Duplicates++
			continue
		case i < latest:
			// It arrived after a record that follows it on the source.
			pc.Reordered++
			problem("target offset %d holds source offset %d after source offset %d", d.offset, src[i].offset, src[latest].offset)
		}
		seen[i] = true
		latest = max(latest, i)
		pc.TargetSum = chain(pc.TargetSum, d.sum)
	}
	for i, s := range seen {
		if !s {
			pc.Missing++
			problem("source offset %d missing on the target", src[i].offset)
		}
	}
	return pc
}

func chain(acc, d uint64) uint64 { return acc*1099511628211 ^ d }

// readDigests reads every partition of topic to its high-water mark, all
// partitions at once.
func readDigests(ctx context.Context, brokers []string, topic string) (map[int32][]digest, error) {
	c := Config()
	c.Consumer.IsolationLevel = sarama.ReadCommitted
	c.Consumer.Fetch.Default = 4 << 20
	client, err := sarama.NewClient(brokers, c)
	if err != nil {
		return nil, err
	}
	defer client.Close()
	cons, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		return nil, err
	}
	defer cons.Close()
	parts, err := client.Partitions(topic)
	if err != nil {
		return nil, fmt.Errorf("partitions: %w", err)
	}
	out := make(map[int32][]digest, len(parts))
	var (
		mu    sync.Mutex
		first error
		wg    sync.WaitGroup
	)
	for _, part := range parts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ds, err := readPartition(ctx, client, cons, topic, part)
			mu.Lock()
			defer mu.Unlock()
			if err != nil && first == nil {
				first = fmt.Errorf("partition %d: %w", part, err)
			}
			out[part] = ds
		}()
	}
	wg.Wait()
	return out, first
}

// checkerSlack is how far below the high-water mark a target partition
// may end: a commit marker or two, never a batch of records.
const checkerSlack = 16

func readPartition(ctx context.Context, client sarama.Client, cons sarama.Consumer, topic string, part int32) ([]digest, error) {
	hw, err := client.GetOffset(topic, part, sarama.OffsetNewest)
	if err != nil {
		return nil, err
	}
	var ds []digest
	err = mirror.ReadPartition(ctx, cons, topic, part, hw, checkerSlack, func(m *sarama.ConsumerMessage) error {
		ds = append(ds, digest{m.Offset, recordDigest(m)})
		return nil
	})
	return ds, err
}

// recordDigest hashes what a mirror must keep: the audit's digest of key,
// value and headers (provenance left out), and the timestamp.
func recordDigest(m *sarama.ConsumerMessage) uint64 {
	return chain(consistency.Digest(m.Key, m.Value, m.Headers), uint64(m.Timestamp.UnixMilli()))
}
