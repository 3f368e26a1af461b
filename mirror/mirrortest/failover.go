package mirrortest

import (
	"context"
	"testing"
	"time"

	"github.com/IBM/sarama"
)

// ConsumerFailover: a group consumes half of a source topic and commits;
// after the checkpoint the same group on the target resumes at the
// translated offsets and, reading to the end, sees every remaining record
// exactly once. The remote topic is pre-filled with junk so downstream
// offsets differ from upstream ones and only exact translation passes.
func ConsumerFailover(t *testing.T, env Env) {
	const parts, perPart, junk = 3, 200, 50
	topic := uniqueTopic("failover")
	remote := "east." + topic
	CreateTopic(t, env.East, topic, parts)
	CreateTopic(t, env.West, remote, parts)
	produceJunk(t, env.West, remote, parts, junk)
	src := Produce(t, env.East, topic, parts, parts*perPart)
	flow := StartFlow(t, env, "failover", "east", "west", env.East, env.West, "prefix", topic)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	WaitHighWater(ctx, t, env.West, remote, int64(parts*(perPart+junk)))

	group := uniqueTopic("app")
	CommitOffsets(t, env.East, group, topic, parts, perPart/2)
	committedAt := time.Now()
	var got map[int32]int64
	for time.Since(committedAt) < 30*time.Second {
		got = GroupOffsets(t, env.West, group, remote, parts)
		if len(got) == parts {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("checkpoint visible on the target %s after the source commit", time.Since(committedAt).Round(10*time.Millisecond))
	for p := range int32(parts) {
		if want := int64(junk + perPart/2); got[p] != want {
			t.Fatalf("partition %d: target offset %d, want %d (exact translation)", p, got[p], want)
		}
	}
	ms, err := flow.TranslateGroup(t.Context(), group)
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != parts {
		t.Fatalf("TranslateGroup: %d mappings, want %d", len(ms), parts)
	}
	for _, m := range ms {
		if !m.Translated || m.RemoteTopic != remote || m.SourceOffset != perPart/2 || m.TargetOffset != got[m.Partition] {
			t.Fatalf("TranslateGroup mapping %+v disagrees with the checkpoint %d", m, got[m.Partition])
		}
	}
	dst := ReadAll(t, env.West, remote)
	for p := range int32(parts) {
		resumed := dst[p][got[p]-dst[p][0].Offset:]
		seen := append(append([]Record{}, src[p][:perPart/2]...), resumed...)
		if len(seen) != len(src[p]) {
			t.Fatalf("partition %d: %d records seen across both sides, source has %d", p, len(seen), len(src[p]))
		}
		for i := range seen {
			if string(seen[i].Value) != string(src[p][i].Value) || string(seen[i].Key) != string(src[p][i].Key) {
				t.Fatalf("partition %d record %d differs after failover: %q vs %q", p, i, seen[i].Value, src[p][i].Value)
			}
		}
	}
}

func produceJunk(t testing.TB, brokers []string, topic string, parts, n int) {
	t.Helper()
	p, err := sarama.NewSyncProducer(brokers, Config())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	var msgs []*sarama.ProducerMessage
	for part := range parts {
		for range n {
			msgs = append(msgs, &sarama.ProducerMessage{Topic: topic, Partition: int32(part), Value: sarama.StringEncoder("junk")})
		}
	}
	if err := p.SendMessages(msgs); err != nil {
		t.Fatal(err)
	}
}

// CommitOffsets commits offset for every partition of topic as group, as a
// consumer that read that far would.
func CommitOffsets(t testing.TB, brokers []string, group, topic string, parts int, offset int64) {
	t.Helper()
	client, err := sarama.NewClient(brokers, Config())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	req := sarama.NewOffsetCommitRequest(client.Config(), group)
	for p := range parts {
		req.AddBlock(topic, int32(p), offset, -1, "")
	}
	coord, err := client.Coordinator(group)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := coord.CommitOffset(req)
	if err != nil {
		t.Fatal(err)
	}
	for _, ps := range resp.Errors {
		for p, kerr := range ps {
			if kerr != sarama.ErrNoError {
				t.Fatalf("commit partition %d: %v", p, kerr)
			}
		}
	}
}

// GroupOffsets returns the committed offsets of group on topic.
func GroupOffsets(t testing.TB, brokers []string, group, topic string, parts int) map[int32]int64 {
	t.Helper()
	admin, err := sarama.NewClusterAdmin(brokers, Config())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	ps := make([]int32, parts)
	for i := range ps {
		ps[i] = int32(i)
	}
	resp, err := admin.ListConsumerGroupOffsets(group, map[string][]int32{topic: ps})
	if err != nil {
		return nil
	}
	out := map[int32]int64{}
	for _, p := range ps {
		if b := resp.GetGroupBlock(group, topic, p); b != nil && b.Offset >= 0 {
			out[p] = b.Offset
		} else if b := resp.GetBlock(topic, p); b != nil && b.Offset >= 0 {
			out[p] = b.Offset
		}
	}
	return out
}
