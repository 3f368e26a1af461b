package consistency_test

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/regionsync/regionsync/consistency"
	"github.com/regionsync/regionsync/mirror"
	"github.com/regionsync/regionsync/mirror/mirrortest"
)

// faults a test copier puts into the target copy of one partition, by
// source index: records skipped, records written twice, and pairs written
// swapped.
type faults struct {
	skip, twice, swap []int
}

// auditScenario writes n records over 3 partitions to the source with
// timestamps spread over several minutes in the past, copies them to the
// target with a test producer (keys, values, headers and timestamps kept,
// a provenance header added as the mirror does) except for the faults on
// partition 1, and checks that the audit reports exactly those, by offset.
func auditScenario(t *testing.T, east, west []string, n int) {
	topic := fmt.Sprintf("audit-%d", rand.Uint32())
	remote := "east." + topic
	mirrortest.CreateTopic(t, east, topic, 3)
	mirrortest.CreateTopic(t, west, remote, 3)
	base := time.Now().Add(-10 * time.Minute).Truncate(time.Minute)
	span := 4 * time.Minute
	perPart := make([][]*sarama.ProducerMessage, 3)
	for i := range n {
		p := int32(i % 3)
		var key sarama.Encoder
		if i%7 != 0 {
			key = sarama.StringEncoder(fmt.Sprintf("k-%d", i%500))
		}
		m := &sarama.ProducerMessage{Topic: topic, Partition: p, Key: key, Value: sarama.StringEncoder(fmt.Sprintf("v-%d-%d", i, rand.IntN(1000))),
			Headers:   []sarama.RecordHeader{{Key: []byte("h"), Value: []byte{byte(i)}}},
			Timestamp: base.Add(time.Duration(i) * span / time.Duration(n))}
		perPart[p] = append(perPart[p], m)
	}
	produce(t, east, slices.Concat(perPart...))
	f := faults{skip: []int{10, 500, len(perPart[1]) - 3}, twice: []int{20, 700}, swap: []int{300}}
	var copies []*sarama.ProducerMessage
	var wantMissing, wantDup, wantReord []int64
	for p, ms := range perPart {
		var out []*sarama.ProducerMessage
		for i := 0; i < len(ms); i++ {
			c := copyOf(ms[i], remote)
			if p != 1 {
				out = append(out, c)
				continue
			}
			switch {
			case slices.Contains(f.skip, i):
				wantMissing = append(wantMissing, int64(i))
			case slices.Contains(f.swap, i):
				out = append(out, copyOf(ms[i+1], remote), c)
				wantReord = append(wantReord, int64(len(out)-1)) // i lands after i+1
				i++
			default:
				out = append(out, c)
				if slices.Contains(f.twice, i) {
					out = append(out, copyOf(ms[i], remote))
					wantDup = append(wantDup, int64(len(out)-1))
				}
			}
		}
		copies = append(copies, out...)
	}
	produce(t, west, copies)

	src, dst := client(t, east), client(t, west)
	start := time.Now()
	ws, pending, err := consistency.AuditTopic(context.Background(), src, dst, consistency.AuditOptions{Topic: topic, RemoteTopic: remote, Window: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	var r consistency.KafkaAuditReport
	r.Add(ws, pending)
	t.Logf("audited %d records in %d windows (%d clean, %d pending) in %s", r.RecordsCompared, r.WindowsJudged, r.WindowsClean, r.WindowsPending, time.Since(start).Round(time.Millisecond))
	if r.RecordsCompared != int64(n) || pending != 0 {
		t.Fatalf("compared %d records of %d, %d windows pending", r.RecordsCompared, n, pending)
	}
	var gotMissing, gotDup, gotReord []int64
	for _, w := range r.Divergent {
		if w.Partition != 1 || len(w.Unexpected) > 0 {
			t.Fatalf("divergence where there is none: %+v", w)
		}
		gotMissing = append(gotMissing, w.Missing...)
		gotDup = append(gotDup, w.Duplicated...)
		gotReord = append(gotReord, w.Reordered...)
		t.Logf("partition %d window %s: missing %v duplicated %v reordered %v", w.Partition, w.Start.Format("15:04"), w.Missing, w.Duplicated, w.Reordered)
	}
	for _, c := range []struct {
		what      string
		got, want []int64
	}{{"missing (source offsets)", gotMissing, wantMissing}, {"duplicated (target offsets)", gotDup, wantDup}, {"reordered (target offsets)", gotReord, wantReord}} {
		slices.Sort(c.got)
		if !slices.Equal(c.got, c.want) {
			t.Errorf("%s: got %v, want %v", c.what, c.got, c.want)
		}
	}
}

func copyOf(m *sarama.ProducerMessage, topic string) *sarama.ProducerMessage {
	c := *m
	c.Topic = topic
	c.Headers = append(slices.Clone(m.Headers), sarama.RecordHeader{Key: []byte(mirror.ProvenanceHeader), Value: []byte("east")})
	return &c
}

// produce writes ms in order, one partition at a time, waiting for each.
func produce(t *testing.T, brokers []string, ms []*sarama.ProducerMessage) {
	t.Helper()
	c := mirrortest.Config()
	c.Producer.Partitioner = sarama.NewManualPartitioner
	c.Producer.Idempotent, c.Net.MaxOpenRequests, c.Producer.RequiredAcks = true, 1, sarama.WaitForAll
	p, err := sarama.NewSyncProducer(brokers, c)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	for i := 0; i < len(ms); i += 1000 {
		if err := p.SendMessages(ms[i:min(i+1000, len(ms))]); err != nil {
			t.Fatal(err)
		}
	}
}

func client(t *testing.T, brokers []string) sarama.Client {
	t.Helper()
	c := mirrortest.Config()
	c.Consumer.IsolationLevel = sarama.ReadCommitted
	cl, err := sarama.NewClient(brokers, c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cl.Close() })
	return cl
}

// kfakePair starts two in-process clusters, closed at test end.
func kfakePair(t *testing.T) (east, west []string) {
	t.Helper()
	for _, addrs := range []*[]string{&east, &west} {
		c, err := kfake.NewCluster(kfake.NumBrokers(1))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Close)
		*addrs = c.ListenAddrs()
	}
	return east, west
}

func TestAuditKfake(t *testing.T) {
	east, west := kfakePair(t)
	auditScenario(t, east, west, 6000)
}

// The continuous auditor reads both sides as they are written and judges
// each window once the mirror is past it: one dropped record and one
// duplicate show in their windows, clean windows are reported clean.
func TestAuditorKfake(t *testing.T) {
	east, west := kfakePair(t)
	topic := fmt.Sprintf("live-%d", rand.Uint32())
	mirrortest.CreateTopic(t, east, topic, 1)
	mirrortest.CreateTopic(t, west, "east."+topic, 1)
	sel, _ := mirror.NewSelector([]string{topic}, nil)
	naming, _ := mirror.NewNaming("prefix")
	var (
		mu   sync.Mutex
		seen []consistency.WindowResult
	)
	a, err := consistency.NewAuditor(consistency.AuditorOptions{Flow: "f", Source: "east", Target: "west",
		SourceConfig: mirrortest.Config(), TargetConfig: mirrortest.Config(), SourceBrokers: east, TargetBrokers: west,
		Selector: sel, Naming: naming, Window: time.Second, Settle: 3 * time.Second, Tick: 100 * time.Millisecond,
		OnWindow: func(w consistency.WindowResult) { mu.Lock(); seen = append(seen, w); mu.Unlock() }}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	defer func() { cancel(); <-done }()
	time.Sleep(500 * time.Millisecond)
	// 4 s of traffic, 50 records/s, copied at once except two faults.
	var srcN int
	for i := range 200 {
		m := &sarama.ProducerMessage{Topic: topic, Partition: 0, Value: sarama.StringEncoder(fmt.Sprintf("v%d", i)), Timestamp: time.Now()}
		produce(t, east, []*sarama.ProducerMessage{m})
		srcN++
		switch i {
		case 50: // dropped
		case 120:
			produce(t, west, []*sarama.ProducerMessage{copyOf(m, "east."+topic), copyOf(m, "east."+topic)})
		default:
			produce(t, west, []*sarama.ProducerMessage{copyOf(m, "east."+topic)})
		}
		time.Sleep(20 * time.Millisecond)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		mu.Lock()
		n := 0
		for _, w := range seen {
			n += w.Source.Records
		}
		mu.Unlock()
		if n == srcN {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("judged %d of %d source records", n, srcN)
		}
		time.Sleep(100 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	var r consistency.KafkaAuditReport
	r.Add(seen, 0)
	t.Logf("%d windows judged, %d clean; missing %d duplicated %d reordered %d unexpected %d", r.WindowsJudged, r.WindowsClean, r.Missing, r.Duplicated, r.Reordered, r.Unexpected)
	if r.Missing != 1 || r.Duplicated != 1 || r.Reordered != 0 || r.Unexpected != 0 || r.WindowsClean < r.WindowsJudged-2 {
		t.Fatalf("report %+v", r)
	}
	for _, w := range r.Divergent {
		if len(w.Missing) == 1 && w.Missing[0] != 50 {
			t.Errorf("missing source offset %v, want 50", w.Missing)
		}
		if len(w.Duplicated) == 1 && w.Duplicated[0] != 120 {
			t.Errorf("duplicate at target offset %v, want 120 (one record dropped before it)", w.Duplicated)
		}
	}
}

func TestTokenRanges(t *testing.T) {
	rs := consistency.TokenRanges(7)
	if rs[0][0] != math.MinInt64 || rs[len(rs)-1][1] != math.MaxInt64 {
		t.Fatalf("ranges do not cover the ring: %v", rs)
	}
	for i := 1; i < len(rs); i++ {
		if rs[i][0] != rs[i-1][1] || rs[i][1] <= rs[i][0] {
			t.Fatalf("range %d %v does not follow %v", i, rs[i], rs[i-1])
		}
	}
}
