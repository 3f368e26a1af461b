package mirror

import (
	"context"
	"errors"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// attempt is what the broker saw of one produce request.
type attempt struct {
	partition int32
	pid       int64
	seq       int32
	count     int32
}

// produceLab is a kfake cluster with topic "t" (two partitions) that
// records every produce request, and a batchProducer connected to it.
type produceLab struct {
	c *kfake.Cluster
	p *batchProducer

	mu       sync.Mutex
	attempts []attempt
	next     map[int32]int64 // source offset of each partition's next batch
}

func newProduceLab(t *testing.T) *produceLab {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, "t"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	l := &produceLab{c: c, next: map[int32]int64{}}
	c.ControlKey(int16(kmsg.Produce), func(kreq kmsg.Request) (kmsg.Response, error, bool) {
		req := kreq.(*kmsg.ProduceRequest)
		var rb kmsg.RecordBatch
		if err := rb.ReadFrom(req.Topics[0].Partitions[0].Records); err != nil {
			t.Errorf("record batch: %v", err)
		}
		l.mu.Lock()
		l.attempts = append(l.attempts, attempt{req.Topics[0].Partitions[0].Partition, rb.ProducerID, rb.FirstSequence, rb.NumRecords})
		l.mu.Unlock()
		return nil, nil, false // observed only: the cluster handles it
	})
	conf := sarama.NewConfig()
	conf.Version = sarama.V3_6_0_0
	conf.Producer.Compression = sarama.CompressionLZ4
	conf.Producer.Retry.Backoff = 10 * time.Millisecond
	l.p, err = newBatchProducer(c.ListenAddrs(), conf, 2)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.p.Close() })
	return l
}

// failNext makes the broker answer the next produce request with code, or
// drop the connection when code is -1, without writing anything.
func (l *produceLab) failNext(code int16) { l.failNextN(code, 1) }

// failNextN does it to the next k produce requests.
func (l *produceLab) failNextN(code int16, k int) {
	for range k {
		l.c.ControlKey(int16(kmsg.Produce), func(kreq kmsg.Request) (kmsg.Response, error, bool) {
			if code == -1 {
				return nil, errors.New("connection dropped by the test"), true
			}
			req := kreq.(*kmsg.ProduceRequest)
			resp := req.ResponseKind().(*kmsg.ProduceResponse)
			rt := kmsg.NewProduceResponseTopic()
			rt.Topic = req.Topics[0].Topic
			rp := kmsg.NewProduceResponseTopicPartition()
			rp.Partition = req.Topics[0].Partitions[0].Partition
			rp.ErrorCode = code
			rt.Partitions = append(rt.Partitions, rp)
			resp.Topics = append(resp.Topics, rt)
			return resp, nil, true
		})
	}
}

// produce sends the next n records of partition 0.
func (l *produceLab) produce(t *testing.T, n int) (int64, error) {
	t.Helper()
	return l.produceAt(t, 0, l.next[0], n)
}

// produceAt sends a batch of n copies of the source records from offset
// from on to partition.
func (l *produceLab) produceAt(t *testing.T, partition int32, from int64, n int) (int64, error) {
	t.Helper()
	first := time.UnixMilli(1_700_000_000_000)
	recs := make([]*sarama.Record, n)
	for i := range recs {
		recs[i] = &sarama.Record{OffsetDelta: int64(i), TimestampDelta: time.Duration(i) * time.Millisecond, Key: []byte{byte(i)}, Value: []byte("v")}
	}
	base, err := l.p.produce(context.Background(), "t", partition, from, recs, first)
	if err == nil {
		l.next[partition] = from + int64(n)
	}
	return base, err
}

func (l *produceLab) seen() []attempt {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]attempt(nil), l.attempts...)
}

// end is the partition's end offset: how many records the broker holds.
func (l *produceLab) end(t *testing.T) int64 {
	t.Helper()
	cl, err := sarama.NewClient(l.c.ListenAddrs(), sarama.NewConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	off, err := cl.GetOffset("t", 0, sarama.OffsetNewest)
	if err != nil {
		t.Fatal(err)
	}
	return off
}

// Batches carry the producer id and consecutive sequence numbers, and
// each returns the offset of its first record.
func TestBatchProducerSequences(t *testing.T) {
	l := newProduceLab(t)
	for i, want := range []int64{0, 3, 5} {
		n := []int{3, 2, 4}[i]
		base, err := l.produce(t, n)
		if err != nil || base != want {
			t.Fatalf("batch %d: base %d, %v; want %d", i, base, err, want)
		}
	}
	a := l.seen()
	if len(a) != 3 || a[0].seq != 0 || a[1].seq != 3 || a[2].seq != 5 || a[0].pid != a[2].pid || a[0].pid < 0 || a[1].count != 2 {
		t.Fatalf("attempts %+v, want sequences 0, 3, 5 under one producer id", a)
	}
}

// A batch whose answer was an error worth retrying (a leader move, a lost
// connection) is sent again with the same sequence, so the broker writes
// it once however many attempts reached it.
func TestBatchProducerRetriesWithSameSequence(t *testing.T) {
	for _, tc := range []struct {
		name string
		code int16
	}{{"not leader", int16(sarama.ErrNotLeaderForPartition)}, {"connection lost", -1}} {
		t.Run(tc.name, func(t *testing.T) {
			l := newProduceLab(t)
			if _, err := l.produce(t, 3); err != nil {
				t.Fatal(err)
			}
			l.failNext(tc.code)
			base, err := l.produce(t, 4)
			if err != nil || base != 3 {
				t.Fatalf("base %d, %v; want 3", base, err)
			}
			a := l.seen()
			if len(a) != 3 || a[1] != a[2] || a[2].seq != 3 {
				t.Fatalf("attempts %+v, want the failed batch sent again unchanged (sequence 3)", a)
			}
			if end := l.end(t); end != 7 {
				t.Fatalf("partition holds %d records, want 7", end)
			}
		})
	}
}

// When the broker no longer accepts the producer's sequence, a new
// producer id is taken and the batch sent again from sequence 0.
func TestBatchProducerRenewsProducerID(t *testing.T) {
	l := newProduceLab(t)
	if _, err := l.produce(t, 3); err != nil {
		t.Fatal(err)
	}
	l.failNext(int16(sarama.ErrOutOfOrderSequenceNumber))
	if base, err := l.produce(t, 2); err != nil || base != 3 {
		t.Fatalf("base %d, %v; want 3", base, err)
	}
	a := l.seen()
	if len(a) != 3 || a[2].pid == a[1].pid || a[2].seq != 0 {
		t.Fatalf("attempts %+v, want the batch resent under a new producer id from sequence 0", a)
	}
}

// A batch whose every attempt lost its answer may be on the broker under
// its sequence. Sent again, it keeps that sequence; a different batch (a
// re-copy from an earlier offset after a rebalance, the same size) takes a
// new producer id instead, or the broker could answer it as the first
// one's duplicate, with the first one's offset.
func TestBatchProducerBatchInDoubt(t *testing.T) {
	for _, tc := range []struct {
		name  string
		from  int64
		renew bool
	}{{"same batch again", 3, false}, {"another batch", 0, true}} {
		t.Run(tc.name, func(t *testing.T) {
			l := newProduceLab(t)
			if _, err := l.produce(t, 3); err != nil {
				t.Fatal(err)
			}
			l.failNextN(-1, l.p.conf.Producer.Retry.Max+1)
			if _, err := l.produceAt(t, 0, 3, 4); !errors.Is(err, errConn) {
				t.Fatalf("err %v, want the lost connection after every attempt", err)
			}
			if _, err := l.produceAt(t, 0, tc.from, 4); err != nil {
				t.Fatal(err)
			}
			a := l.seen()
			first, last := a[0], a[len(a)-1]
			if tc.renew && (last.pid == first.pid || last.seq != 0) {
				t.Fatalf("attempts %+v, want the other batch under a new producer id from sequence 0", a)
			}
			if !tc.renew && (last.pid != first.pid || last.seq != 3) {
				t.Fatalf("attempts %+v, want the same batch under the same producer id at sequence 3", a)
			}
		})
	}
}

// A new producer id for one partition leaves the others' ids and
// sequences alone (a retry there keeps its meaning).
func TestBatchProducerRenewalKeepsOtherPartitions(t *testing.T) {
	l := newProduceLab(t)
	for _, b := range []struct {
		partition int32
		n         int
	}{{0, 3}, {1, 2}} {
		if _, err := l.produceAt(t, b.partition, 0, b.n); err != nil {
			t.Fatal(err)
		}
	}
	l.failNext(int16(sarama.ErrOutOfOrderSequenceNumber))
	if _, err := l.produceAt(t, 0, 3, 2); err != nil {
		t.Fatal(err)
	}
	if _, err := l.produceAt(t, 1, 2, 2); err != nil {
		t.Fatal(err)
	}
	a := l.seen()
	if len(a) != 5 || a[0].pid == a[1].pid || a[3].pid == a[0].pid || a[3].seq != 0 || a[4].pid != a[1].pid || a[4].seq != 2 {
		t.Fatalf("attempts %+v, want partition 0 renewed (new id, sequence 0) and partition 1 still on its id at sequence 2", a)
	}
}

// A permanent rejection is returned at once, and the rejected batch's
// sequence is not used up: the next batch takes it.
func TestBatchProducerPermanentError(t *testing.T) {
	l := newProduceLab(t)
	if _, err := l.produce(t, 3); err != nil {
		t.Fatal(err)
	}
	l.failNext(int16(sarama.ErrMessageSizeTooLarge))
	if _, err := l.produce(t, 2); !errors.Is(err, sarama.ErrMessageSizeTooLarge) || !permanent(err) {
		t.Fatalf("err %v, want MESSAGE_TOO_LARGE", err)
	}
	if base, err := l.produce(t, 1); err != nil || base != 3 {
		t.Fatalf("next batch: base %d, %v; want 3", base, err)
	}
	a := l.seen()
	if len(a) != 3 || a[1].seq != 3 || a[2].seq != 3 {
		t.Fatalf("attempts %+v, want one attempt of the rejected batch and the next at the same sequence", a)
	}
}

// Sequences wrap as the broker counts them: a batch that crosses MaxInt32
// is followed by the sequence past 0, not by 0.
func TestNextSequenceWraps(t *testing.T) {
	for _, c := range []struct {
		seq  int32
		n    int
		want int32
	}{
		{0, 3, 3},
		{math.MaxInt32 - 10, 10, math.MaxInt32},
		{math.MaxInt32 - 10, 11, 0},
		{math.MaxInt32 - 5, 10, 4}, // Kafka: 10 - (MaxInt32 - seq) - 1
		{math.MaxInt32, 1, 0},
	} {
		if got := nextSequence(c.seq, c.n); got != c.want {
			t.Errorf("nextSequence(%d, %d) = %d, want %d", c.seq, c.n, got, c.want)
		}
	}
}
