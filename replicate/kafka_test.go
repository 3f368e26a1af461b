package replicate_test

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/regionsync/regionsync/internal/config"
	"github.com/regionsync/regionsync/mirror"
	"github.com/regionsync/regionsync/mirror/mirrortest"
	"github.com/regionsync/regionsync/replicate"
)

// kafkaEnv is a source and a target cluster.
type kafkaEnv struct{ east, west []string }

// TestKafkaLagKfake runs the lag scenario on in-process Kafka; the lab test
// runs it on real Kafka and also compares with Kafka's own tools.
func TestKafkaLagKfake(t *testing.T) {
	east, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.ClusterID("east"))
	if err != nil {
		t.Fatal(err)
	}
	defer east.Close()
	west, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.ClusterID("west"))
	if err != nil {
		t.Fatal(err)
	}
	defer west.Close()
	lagScenario(t, kafkaEnv{east: east.ListenAddrs(), west: west.ListenAddrs()}, nil)
}

// lagScenario: a flow copies a quiet topic; the observer sees no lag; the
// flow stops and, with no traffic at all, lag seconds grow by about a
// second per second; records produced while it is stopped show as lag in
// records equal to the source group's own lag (what kafka-consumer-groups
// prints); a consumer offset committed on the source shows as a stale
// checkpoint; the flow resumes and everything falls back to near zero.
// whileStopped, when set, runs extra checks with the flow stopped and the
// lag settled, given the flow's consumer group and the expected lag.
func lagScenario(t *testing.T, env kafkaEnv, whileStopped func(group, topic string, lag int64)) {
	topic := fmt.Sprintf("orders-%d", rand.Uint32())
	flowName := "lag-" + topic
	mirrortest.CreateTopic(t, env.east, topic, 3)
	menv := mirrortest.Env{East: env.east, West: env.west, Log: slog.New(slog.DiscardHandler)}
	fast := func(o *mirror.Options) {
		o.HeartbeatInterval, o.CheckpointInterval = 200*time.Millisecond, 200*time.Millisecond
	}
	_, stop := mirrortest.StartStoppableFlow(t, menv, flowName, "east", "west", env.east, env.west, "prefix", topic, fast)
	produceNow(t, env.east, topic, 3, 30)

	obs := startObserver(t, env, flowName, topic)
	s := waitStatus(t, obs, "flow running: no lag", func(f replicate.FlowFigures) bool {
		return f.LagRecords == 0 && f.RecordLagSeconds == 0 && f.HeartbeatAgeSeconds.Known() && f.HeartbeatAgeSeconds < 2 && f.CheckpointAgeSeconds.Known()
	})
	if s.Result() != replicate.Pass {
		t.Fatalf("running flow: result %s, failing %+v", s.Result(), s.Failing())
	}

	stop()
	sa := waitStatus(t, obs, "stopped: heartbeat age known", func(f replicate.FlowFigures) bool { return f.HeartbeatAgeSeconds.Known() })
	// The observer samples every second: judge two samples 3 s apart by
	// their own observation times.
	sb := sa
	for sb.ObservedAt.Sub(sa.ObservedAt) < 3*time.Second {
		time.Sleep(100 * time.Millisecond)
		sb = waitStatus(t, obs, "stopped: sampled again", func(f replicate.FlowFigures) bool { return f.HeartbeatAgeSeconds.Known() })
	}
	a, b := flowFigures(sa), flowFigures(sb)
	grew, elapsed := float64(b.LagSeconds-a.LagSeconds), sb.ObservedAt.Sub(sa.ObservedAt).Seconds()
	t.Logf("no traffic, flow stopped: lag seconds %.2f → %.2f (+%.2f) over %.2f s between samples", float64(a.LagSeconds), float64(b.LagSeconds), grew, elapsed)
	if rate := grew / elapsed; rate < 0.8 || rate > 1.2 || b.LagRecords != 0 {
		t.Fatalf("stopped flow without traffic: lag seconds grew %.2f in %.2f s (want about 1 s per second), lag records %d (want 0)", grew, elapsed, b.LagRecords)
	}

	produceNow(t, env.east, topic, 3, 45)
	mirrortest.CommitOffsets(t, env.east, "app-"+topic, topic, 3, 5)
	f := flowFigures(waitStatus(t, obs, "stopped: 45 records of lag and a stale checkpoint", func(f replicate.FlowFigures) bool {
		return f.LagRecords == 45 && f.StaleCheckpoints == 3 && f.RecordLagSeconds.Known() && f.RecordLagSeconds > 0
	}))
	t.Logf("45 records produced while stopped: lag %d records, record lag %.2f s, stale checkpoints %d", f.LagRecords, float64(f.RecordLagSeconds), f.StaleCheckpoints)
	group := "regionsync-mirror-" + flowName
	toolLag := int64(0)
	for p, off := range mirrortest.GroupOffsets(t, env.east, group, topic, 3) {
		for _, pf := range f.Partitions {
			if pf.Topic == topic && pf.Partition == p {
				toolLag += pf.HighWater - off
			}
		}
	}
	if toolLag != f.LagRecords {
		t.Fatalf("lag %d records, but high-water marks minus the flow group's committed offsets give %d", f.LagRecords, toolLag)
	}
	if whileStopped != nil {
		whileStopped(group, topic, f.LagRecords)
	}

	mirrortest.StartStoppableFlow(t, menv, flowName, "east", "west", env.east, env.west, "prefix", topic, fast)
	s = waitStatus(t, obs, "resumed: lag back near zero", func(f replicate.FlowFigures) bool {
		return f.LagRecords == 0 && f.RecordLagSeconds == 0 && f.HeartbeatAgeSeconds < 2 && f.StaleCheckpoints == 0
	})
	t.Logf("resumed: lag seconds %.2f", float64(flowFigures(s).LagSeconds))
}

func startObserver(t *testing.T, env kafkaEnv, flowName, topic string) *replicate.Kafka {
	t.Helper()
	sel, err := mirror.NewSelector([]string{topic}, nil)
	if err != nil {
		t.Fatal(err)
	}
	naming, _ := mirror.NewNaming("prefix")
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V3_6_0_0
	obs, err := replicate.NewKafka(replicate.KafkaOptions{
		Flows: []replicate.KafkaFlow{{Name: flowName, Source: "east", Target: "west", SourceConfig: cfg, TargetConfig: cfg,
			SourceBrokers: env.east, TargetBrokers: env.west, Selector: sel, Naming: naming}},
		Budgets:  func(string) config.Budgets { return config.DefaultBudgets() },
		Interval: 200 * time.Millisecond,
	}, prometheus.NewRegistry(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- obs.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("observer Run: %v", err)
		}
	})
	return obs
}

func flowFigures(s replicate.Status) replicate.FlowFigures { return s.Kafka.Flows[0] }

// waitStatus waits up to 30 s for the observer's status of east→west whose
// only flow satisfies cond, and returns it.
func waitStatus(t *testing.T, obs *replicate.Kafka, what string, cond func(replicate.FlowFigures) bool) replicate.Status {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var last replicate.Status
	for time.Now().Before(deadline) {
		for _, s := range obs.Statuses() {
			if s.Source == "east" && s.Target == "west" && s.Kafka != nil && len(s.Kafka.Flows) == 1 {
				last = s
				if cond(s.Kafka.Flows[0]) {
					return s
				}
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	var got string
	if last.Kafka != nil {
		got = fmt.Sprintf("%+v", last.Kafka.Flows[0])
	}
	t.Fatalf("%s: not reached in 30 s; last figures %s", what, got)
	return last
}

// produceNow writes n records with current timestamps round-robin over parts.
func produceNow(t *testing.T, brokers []string, topic string, parts int32, n int) {
	t.Helper()
	p, err := sarama.NewSyncProducer(brokers, mirrortest.Config())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	msgs := make([]*sarama.ProducerMessage, n)
	for i := range msgs {
		msgs[i] = &sarama.ProducerMessage{Topic: topic, Partition: int32(i) % parts, Timestamp: time.Now(),
			Key: sarama.StringEncoder(fmt.Sprint(i)), Value: sarama.StringEncoder(strings.Repeat("v", 100))}
	}
	if err := p.SendMessages(msgs); err != nil {
		t.Fatal(err)
	}
}
