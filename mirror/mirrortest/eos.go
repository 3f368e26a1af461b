package mirrortest

import (
	"context"
	"testing"
	"time"

	"github.com/regionsync/regionsync/mirror"
)

// ExactlyOnce: records arrive once as seen by read_committed consumers,
// and a restarted flow resumes from the positions stored on the target even
// when the source group's offsets were wound back to 0 (as after lost
// commits): the target still equals the source, with no duplicate.
func ExactlyOnce(t *testing.T, env Env) {
	const parts = 3
	topic := uniqueTopic("eos")
	remote := "east." + topic
	CreateTopic(t, env.East, topic, parts)
	n := env.Records / 2
	Produce(t, env.East, topic, parts, n)
	eos := func(o *mirror.Options) { o.ExactlyOnce = true }
	_, stop := StartStoppableFlow(t, env, "eos", "east", "west", env.East, env.West, "prefix", topic, eos)
	waitCommitted(t, env.West, remote, n)
	stop()
	CommitOffsets(t, env.East, "regionsync-mirror-eos", topic, parts, 0)
	StartStoppableFlow(t, env, "eos", "east", "west", env.East, env.West, "prefix", topic, eos)
	src := Produce(t, env.East, topic, parts, n) // the source now holds 2n
	waitCommitted(t, env.West, remote, 2*n)
	time.Sleep(2 * time.Second) // duplicates, if any, would land now
	Compare(t, src, ReadAll(t, env.West, remote), "east")
}

// waitCommitted waits until read_committed consumers see n records of topic.
func waitCommitted(t *testing.T, brokers []string, topic string, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for ctx.Err() == nil {
		if Total(ReadAll(t, brokers, topic)) >= n {
			return
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Fatalf("%s: fewer than %d committed records after 2 minutes", topic, n)
}
