package mirrortest

import (
	"context"
	crand "crypto/rand"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/regionsync/regionsync/mirror"
)

// PermanentReject: a record larger than west accepts, amid small ones on
// partition 0. Without a dead-letter topic the flow stops exactly that
// partition at exactly that offset (reported by Flow.Stopped), copies
// everything before it, and keeps copying partition 1. With one, the
// record goes there (value dropped, origin in headers) and the partition
// goes on.
func PermanentReject(t *testing.T, env Env, dlq string) {
	topic := uniqueTopic("reject")
	CreateTopic(t, env.East, topic, 2)
	p, err := sarama.NewSyncProducer(env.East, Config())
	if err != nil {
		t.Fatal(err)
	}
	var msgs []*sarama.ProducerMessage
	add := func(part int32, n int, size int) {
		for range n {
			v := make([]byte, size)
			_, _ = crand.Read(v) // incompressible: the mirror compresses batches
			msgs = append(msgs, &sarama.ProducerMessage{Topic: topic, Partition: part, Value: sarama.ByteEncoder(v)})
		}
	}
	add(0, 20, 100)
	add(0, 1, 2*env.WestMaxBytes) // offset 20
	add(0, 20, 100)
	add(1, 20, 100)
	for _, m := range msgs { // one at a time: each within east's limits
		if _, _, err := p.SendMessage(m); err != nil {
			t.Fatal(err)
		}
	}
	_ = p.Close()
	// The limit is the remote topic's own (a target-only override the flow
	// keeps), as well as the broker's where the environment sets one.
	limit := strconv.Itoa(env.WestMaxBytes)
	admin, err := sarama.NewClusterAdmin(env.West, Config())
	if err != nil {
		t.Fatal(err)
	}
	if err := admin.CreateTopic("east."+topic, &sarama.TopicDetail{NumPartitions: 2, ReplicationFactor: 1,
		ConfigEntries: map[string]*string{"max.message.bytes": &limit}}, false); err != nil {
		t.Fatal(err)
	}
	_ = admin.Close()
	flow, _ := StartStoppableFlow(t, env, "reject", "east", "west", env.East, env.West, "prefix", topic,
		func(o *mirror.Options) { o.DeadLetterTopic = dlq })
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	remote := "east." + topic
	if dlq == "" {
		WaitHighWater(ctx, t, env.West, remote, 40) // 20 before the big one + partition 1
		for len(flow.Stopped()) == 0 && ctx.Err() == nil {
			time.Sleep(50 * time.Millisecond)
		}
		st := flow.Stopped()
		if len(st) != 1 || st[0].Topic != topic || st[0].Partition != 0 || st[0].Offset != 20 {
			t.Fatalf("Stopped() = %+v, want %s partition 0 offset 20", st, topic)
		}
		time.Sleep(2 * time.Second) // nothing after the rejected record may follow
		// At-least-once: a rebalance may copy records before the stop point
		// twice, but none at or after it may arrive, and none before it may
		// be missing.
		src, got := ReadAll(t, env.East, topic), ReadAll(t, env.West, remote)
		at := map[string]int64{}
		for _, r := range src[0] {
			at[string(r.Value)] = r.Offset
		}
		seen := map[int64]bool{}
		for _, r := range got[0] {
			off, ok := at[string(r.Value)]
			if !ok || off >= 20 {
				t.Fatalf("west partition 0 holds source offset %d (known %v): nothing at or after the rejected record may be copied", off, ok)
			}
			seen[off] = true
		}
		if len(seen) != 20 || len(got[1]) < 20 {
			t.Fatalf("west holds %d distinct of the 20 records before the rejected one, and %d on partition 1", len(seen), len(got[1]))
		}
		return
	}
	WaitHighWater(ctx, t, env.West, remote, 60)
	WaitHighWater(ctx, t, env.West, dlq, 1)
	d := ReadAll(t, env.West, dlq)[0]
	if len(d) != 1 || d[0].Value != nil {
		t.Fatalf("dead-letter topic holds %d records (first value %d bytes), want 1 with its value dropped", len(d), len(d[0].Value))
	}
	hdr := map[string]string{}
	for _, h := range d[0].Headers {
		hdr[string(h.Key)] = string(h.Value)
	}
	if hdr["regionsync-dlq-topic"] != topic || hdr["regionsync-dlq-offset"] != "20" || !strings.Contains(hdr["regionsync-dlq-error"], "too large") {
		t.Fatalf("dead-letter headers = %v", hdr)
	}
	if len(flow.Stopped()) != 0 {
		t.Fatalf("partition stopped despite the dead-letter topic: %+v", flow.Stopped())
	}
}
