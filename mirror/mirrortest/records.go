// Package mirrortest is the mirror behaviour suite: it produces varied
// records, reads both clusters back and compares them per partition. The
// same suite runs against in-process Kafka (kfake) in unit tests and against
// real Apache Kafka in the lab tests.
package mirrortest

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/regionsync/regionsync/mirror"
)

// Record is what the suite compares: everything a mirror must keep.
type Record struct {
	Partition int32
	Offset    int64
	Key       []byte // nil = null key
	Value     []byte // nil = tombstone
	Headers   []sarama.RecordHeader
	Timestamp time.Time
}

// Config returns a sarama config suitable for the suite's clients.
func Config() *sarama.Config {
	c := sarama.NewConfig()
	c.Version = sarama.V3_6_0_0
	c.Producer.Return.Successes = true
	c.Producer.RequiredAcks = sarama.WaitForAll
	c.Producer.Idempotent = true
	c.Net.MaxOpenRequests = 1
	c.Producer.Partitioner = sarama.NewManualPartitioner
	c.Producer.Flush.Frequency = 5 * time.Millisecond
	c.Producer.Flush.MaxMessages = 1000
	return c
}

// CreateTopic creates topic with parts partitions.
func CreateTopic(t testing.TB, brokers []string, topic string, parts int32) {
	t.Helper()
	admin, err := sarama.NewClusterAdmin(brokers, Config())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if err := admin.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: parts, ReplicationFactor: 1}, false); err != nil {
		t.Fatalf("create topic %q: %v", topic, err)
	}
}

// Produce writes n varied records round-robin over parts partitions: every
// 7th key null, every 11th value a tombstone, every 13th value empty (not
// null), one to three headers, distinct timestamps. It returns them as
// written, by partition, in order.
func Produce(t testing.TB, brokers []string, topic string, parts int32, n int) map[int32][]Record {
	t.Helper()
	p, err := sarama.NewAsyncProducer(brokers, Config())
	if err != nil {
		t.Fatal(err)
	}
	base := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	go func() {
		for i := range n {
			m := &sarama.ProducerMessage{Topic: topic, Partition: int32(i) % parts, Timestamp: base.Add(time.Duration(i) * time.Millisecond)}
			if i%7 != 0 {
				m.Key = sarama.StringEncoder("k" + strconv.Itoa(i%101))
			}
			switch {
			case i%11 == 0:
			case i%13 == 0:
				m.Value = sarama.ByteEncoder([]byte{})
			default:
				m.Value = sarama.StringEncoder(fmt.Sprintf("value-%d-%s", i, bytes.Repeat([]byte{'x'}, i%64)))
			}
			for h := range 1 + i%3 {
				m.Headers = append(m.Headers, sarama.RecordHeader{Key: []byte("h" + strconv.Itoa(h)), Value: []byte(strconv.Itoa(i))})
			}
			p.Input() <- m
		}
	}()
	for range n {
		select {
		case m := <-p.Successes():
			_ = m
		case e := <-p.Errors():
			t.Fatalf("produce: %v", e)
		}
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	// What the source holds is the reference.
	return ReadAll(t, brokers, topic)
}

// ReadAll reads every partition of topic from oldest to the high-water mark.
func ReadAll(t testing.TB, brokers []string, topic string) map[int32][]Record {
	t.Helper()
	c := Config()
	c.Consumer.IsolationLevel = sarama.ReadCommitted
	client, err := sarama.NewClient(brokers, c)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	cons, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	parts, err := client.Partitions(topic)
	if err != nil {
		t.Fatalf("partitions of %q: %v", topic, err)
	}
	out := map[int32][]Record{}
	for _, part := range parts {
		hw, err := client.GetOffset(topic, part, sarama.OffsetNewest)
		if err != nil {
			t.Fatal(err)
		}
		if hw == 0 {
			continue
		}
		err = mirror.ReadPartition(t.Context(), cons, topic, part, hw, mirror.MarkerSlack, func(m *sarama.ConsumerMessage) error {
			out[part] = append(out[part], fromConsumer(m))
			return nil
		})
		if err != nil {
			t.Fatalf("read %s: %v", topic, err)
		}
	}
	return out
}

func fromConsumer(m *sarama.ConsumerMessage) Record {
	r := Record{Partition: m.Partition, Offset: m.Offset, Key: m.Key, Value: m.Value, Timestamp: m.Timestamp}
	for _, h := range m.Headers {
		r.Headers = append(r.Headers, sarama.RecordHeader{Key: h.Key, Value: h.Value})
	}
	return r
}

// Total counts records over partitions.
func Total(recs map[int32][]Record) int {
	n := 0
	for _, r := range recs {
		n += len(r)
	}
	return n
}

// WaitHighWater waits until the high-water marks of topic sum to at least n.
func WaitHighWater(ctx context.Context, t testing.TB, brokers []string, topic string, n int64) {
	t.Helper()
	client, err := sarama.NewClient(brokers, Config())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	var sum int64
	for ctx.Err() == nil {
		sum = 0
		_ = client.RefreshMetadata(topic)
		parts, _ := client.Partitions(topic)
		for _, p := range parts {
			if hw, err := client.GetOffset(topic, p, sarama.OffsetNewest); err == nil {
				sum += hw
			}
		}
		if sum >= n {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s: %d records after waiting, want %d", topic, sum, n)
}

// Compare checks that dst holds exactly src, per partition, in order: same
// keys (null stays null), values (tombstones stay tombstones), headers (plus
// a provenance header naming sourceAlias) and timestamps. It reports
// missing, extra (duplicated) and differing records.
func Compare(t testing.TB, src, dst map[int32][]Record, sourceAlias string) {
	t.Helper()
	for part, want := range src {
		got := dst[part]
		if len(got) != len(want) {
			t.Errorf("partition %d: %d records on target, %d on source", part, len(got), len(want))
		}
		for i := range min(len(got), len(want)) {
			if msg := diff(want[i], got[i], sourceAlias); msg != "" {
				t.Errorf("partition %d source offset %d: %s", part, want[i].Offset, msg)
				return
			}
		}
	}
	for part := range dst {
		if _, ok := src[part]; !ok {
			t.Errorf("partition %d has %d records on target, none on source", part, len(dst[part]))
		}
	}
}

func diff(w, g Record, alias string) string {
	switch {
	case (w.Key == nil) != (g.Key == nil) || !bytes.Equal(w.Key, g.Key):
		return fmt.Sprintf("key %q (null %v), target %q (null %v)", w.Key, w.Key == nil, g.Key, g.Key == nil)
	case (w.Value == nil) != (g.Value == nil) || !bytes.Equal(w.Value, g.Value):
		return fmt.Sprintf("value %q (null %v), target %q (null %v)", w.Value, w.Value == nil, g.Value, g.Value == nil)
	case !w.Timestamp.Equal(g.Timestamp):
		return fmt.Sprintf("timestamp %v, target %v", w.Timestamp, g.Timestamp)
	}
	wantH := append(append([]sarama.RecordHeader{}, w.Headers...), sarama.RecordHeader{Key: []byte(mirror.ProvenanceHeader), Value: []byte(alias)})
	if len(wantH) != len(g.Headers) {
		return fmt.Sprintf("headers %q, target %q", wantH, g.Headers)
	}
	for i := range wantH {
		if !bytes.Equal(wantH[i].Key, g.Headers[i].Key) || !bytes.Equal(wantH[i].Value, g.Headers[i].Value) {
			return fmt.Sprintf("headers %q, target %q", wantH, g.Headers)
		}
	}
	return ""
}
