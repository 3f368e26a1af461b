package mirrortest

import (
	"context"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/regionsync/regionsync/mirror"
)

// OffsetSyncRuns: a partition copied without gaps, in several batches, is
// described by one run in the offset-sync topic: every sync record of the
// partition carries the run's key (its first upstream offset), and the
// newest one covers every record copied. The topic is created compacted
// with segments that roll (segment.ms), so compaction keeps one per run.
func OffsetSyncRuns(t *testing.T, env Env) {
	const parts, waves, perWave = 2, 5, 100
	topic := uniqueTopic("syncruns")
	remote := "east." + topic
	CreateTopic(t, env.East, topic, parts)
	StartFlow(t, env, "syncruns", "east", "west", env.East, env.West, "prefix", topic)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for w := 1; w <= waves; w++ { // one wave at a time: several batches per partition
		Produce(t, env.East, topic, parts, parts*perWave)
		WaitHighWater(ctx, t, env.West, remote, int64(w*parts*perWave))
	}
	syncTopic := mirror.OffsetSyncTopic("syncruns")
	want := mirror.OffsetSync{Topic: topic, Upstream: 0, Downstream: 0, Count: waves * perWave}
	var newest map[int32]mirror.OffsetSync
	var keys map[int32]map[string]int
	for { // the last syncs are written just after the records they describe
		newest, keys = map[int32]mirror.OffsetSync{}, map[int32]map[string]int{}
		for _, r := range ReadAll(t, env.West, syncTopic)[0] {
			var s mirror.OffsetSync
			if err := s.UnmarshalBinary(r.Value); err != nil {
				t.Fatalf("offset-sync record %d: %v", r.Offset, err)
			}
			if s.Topic != topic {
				continue
			}
			if keys[s.Partition] == nil {
				keys[s.Partition] = map[string]int{}
			}
			keys[s.Partition][string(r.Key)]++
			newest[s.Partition] = s
		}
		done := len(newest) == parts
		for _, s := range newest {
			done = done && s.Count == want.Count
		}
		if done || ctx.Err() != nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	for p := range int32(parts) {
		want.Partition = p
		if newest[p] != want {
			t.Fatalf("partition %d: newest sync %+v, want %+v", p, newest[p], want)
		}
		if len(keys[p]) != 1 {
			t.Fatalf("partition %d: sync records under %d keys (%v), want one run", p, len(keys[p]), keys[p])
		}
		for k, n := range keys[p] {
			t.Logf("partition %d: %d sync records, all under key %s", p, n, k)
		}
	}
	admin, err := sarama.NewClusterAdmin(env.West, Config())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	res, err := admin.DescribeConfigs([]*sarama.ConfigResource{{Type: sarama.TopicResource, Name: syncTopic}}, sarama.DescribeConfigsOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, r := range res {
		if r.ErrorCode != 0 {
			t.Fatalf("describe %s: %v %s", syncTopic, r.ErrorCode, r.ErrorMsg)
		}
		for _, e := range r.Configs {
			got[e.Name] = e.Value
		}
	}
	if got["cleanup.policy"] != "compact" || got["segment.ms"] != "600000" {
		t.Fatalf("offset-sync topic config %v, want cleanup.policy=compact segment.ms=600000", got)
	}
}
