package mirrortest

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/regionsync/regionsync/mirror"
)

// Env is a pair of Kafka clusters for the suite.
type Env struct {
	East, West []string // bootstrap brokers
	Records    int      // records per fidelity run
	Log        *slog.Logger
	// WestMaxBytes, when set, is the largest record batch west accepts; the
	// permanent-rejection tests run only then.
	WestMaxBytes int
}

// Run runs every behaviour test of the suite against env.
func Run(t *testing.T, env Env) {
	if env.Log == nil {
		env.Log = slog.New(slog.DiscardHandler)
	}
	t.Run("Fidelity", func(t *testing.T) { Fidelity(t, env) })
	t.Run("ActiveActiveIdentity", func(t *testing.T) { ActiveActiveIdentity(t, env) })
	t.Run("HeartbeatsShowStall", func(t *testing.T) { HeartbeatsShowStall(t, env) })
	t.Run("ConsumerFailover", func(t *testing.T) { ConsumerFailover(t, env) })
	t.Run("OffsetSyncRuns", func(t *testing.T) { OffsetSyncRuns(t, env) })
	t.Run("ExactlyOnce", func(t *testing.T) { ExactlyOnce(t, env) })
	if env.WestMaxBytes > 0 {
		t.Run("PermanentRejectStopsPartition", func(t *testing.T) { PermanentReject(t, env, "") })
		t.Run("PermanentRejectDeadLetters", func(t *testing.T) { PermanentReject(t, env, "regionsync.dlq") })
	}
}

// StartFlow runs a flow from src to dst until the test ends.
func StartFlow(t testing.TB, env Env, name, srcAlias, dstAlias string, src, dst []string, naming, include string) *mirror.Flow {
	t.Helper()
	f, _ := StartStoppableFlow(t, env, name, srcAlias, dstAlias, src, dst, naming, include)
	return f
}

// StartStoppableFlow is StartFlow that also returns a function stopping the
// flow early (and checking it stopped cleanly); it is safe to call twice.
func StartStoppableFlow(t testing.TB, env Env, name, srcAlias, dstAlias string, src, dst []string, naming, include string, opts ...func(*mirror.Options)) (*mirror.Flow, func()) {
	t.Helper()
	sel, err := mirror.NewSelector([]string{include}, nil)
	if err != nil {
		t.Fatal(err)
	}
	nm, err := mirror.NewNaming(naming)
	if err != nil {
		t.Fatal(err)
	}
	o := mirror.Options{
		Name: name, SourceAlias: srcAlias, TargetAlias: dstAlias,
		Source: plainConfig(), Target: plainConfig(), SourceBrokers: src, TargetBrokers: dst,
		Selector: sel, Naming: nm, RefreshInterval: time.Second,
	}
	for _, opt := range opts {
		opt(&o)
	}
	f, err := mirror.New(o, mirror.NewMetrics(prometheus.NewRegistry()), env.Log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("flow %s: Run = %v", name, err)
				}
			case <-time.After(30 * time.Second):
				t.Errorf("flow %s did not stop 30s after cancel", name)
			}
		})
	}
	t.Cleanup(stop)
	return f, stop
}

func uniqueTopic(prefix string) string { return fmt.Sprintf("%s-%d", prefix, rand.Uint32()) }

// Fidelity: every record arrives on the same partition of the prefixed
// remote topic, in order, with key, value, headers and timestamp intact
// (null keys and tombstones too), and nothing extra.
func Fidelity(t *testing.T, env Env) {
	topic := uniqueTopic("orders")
	CreateTopic(t, env.East, topic, 6)
	src := Produce(t, env.East, topic, 6, env.Records)
	if Total(src) != env.Records {
		t.Fatalf("source holds %d records, produced %d", Total(src), env.Records)
	}
	StartFlow(t, env, "fidelity", "east", "west", env.East, env.West, "prefix", topic)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	WaitHighWater(ctx, t, env.West, "east."+topic, int64(env.Records))
	Compare(t, src, ReadAll(t, env.West, "east."+topic), "east")
}

// ActiveActiveIdentity: east⇄west with identity naming. Records written in
// either cluster appear exactly once in both, and nothing loops back.
func ActiveActiveIdentity(t *testing.T, env Env) {
	topic := uniqueTopic("aa")
	CreateTopic(t, env.East, topic, 3)
	CreateTopic(t, env.West, topic, 3)
	StartFlow(t, env, "aa-east-to-west", "east", "west", env.East, env.West, "identity", topic)
	StartFlow(t, env, "aa-west-to-east", "west", "east", env.West, env.East, "identity", topic)
	const n = 300
	Produce(t, env.East, topic, 3, n)
	Produce(t, env.West, topic, 3, n)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	WaitHighWater(ctx, t, env.East, topic, 2*n)
	WaitHighWater(ctx, t, env.West, topic, 2*n)
	time.Sleep(3 * time.Second) // a loop would keep adding records; give it the chance
	for _, c := range []struct {
		name    string
		brokers []string
	}{{"east", env.East}, {"west", env.West}} {
		recs := ReadAll(t, c.brokers, topic)
		if got := Total(recs); got != 2*n {
			t.Errorf("%s holds %d records of %s, want %d (a loop or a loss)", c.name, got, topic, 2*n)
		}
	}
}

// HeartbeatsShowStall: with no user traffic, heartbeats keep the measured
// age near zero while the flow runs, and it grows once the flow stops.
func HeartbeatsShowStall(t *testing.T, env Env) {
	topic := uniqueTopic("quiet")
	CreateTopic(t, env.East, topic, 1)
	f, stop := StartStoppableFlow(t, env, "hb", "east", "west", env.East, env.West, "prefix", topic)
	deadline := time.Now().Add(30 * time.Second)
	for f.HeartbeatAge() == 0 || f.HeartbeatAge() > 3*time.Second {
		if time.Now().After(deadline) {
			t.Fatalf("no fresh heartbeat after 30s (age %s)", f.HeartbeatAge())
		}
		time.Sleep(100 * time.Millisecond)
	}
	stop()
	before := f.HeartbeatAge()
	time.Sleep(3 * time.Second)
	if grown := f.HeartbeatAge() - before; grown < 2*time.Second {
		t.Fatalf("heartbeat age grew %s in 3s after the flow stopped, want ≥ 2s", grown)
	}
}

// plainConfig is what a flow gets in production (internal/clients.Kafka):
// sarama's defaults plus TLS/SASL; the flow must set everything else it needs.
func plainConfig() *sarama.Config {
	c := sarama.NewConfig()
	c.Version = sarama.V3_6_0_0
	return c
}
