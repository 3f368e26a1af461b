package readiness

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/regionsync/regionsync/consistency"
	"github.com/regionsync/regionsync/internal/config"
	"github.com/regionsync/regionsync/readiness/readinesstest"
	"github.com/regionsync/regionsync/replicate"
	"github.com/regionsync/regionsync/schemas"
	"github.com/regionsync/regionsync/topology"
	"github.com/regionsync/regionsync/topology/etcdtest"
)

// fakeStatuses is the replication view the test controls: the lag of
// east→west in seconds.
type fakeStatuses struct{ lag atomic.Value }

func (f *fakeStatuses) get() []replicate.Status {
	lag, _ := f.lag.Load().(float64)
	b := testBudgets("west")
	return []replicate.Status{{Store: replicate.StoreKafka, Source: "east", Target: "west", ObservedAt: time.Now(),
		RPOSeconds: replicate.Figure(lag), Checks: []replicate.Check{
			replicate.UpperBound("lag_seconds", replicate.StoreKafka, "east-to-west", lag, b.RPOBudget.Std().Seconds(), "seconds")}}}
}

func testBudgets(string) config.Budgets {
	b := config.DefaultBudgets()
	b.RPOBudget = config.Duration(10 * time.Second)
	b.HoldPeriod = config.Duration(1500 * time.Millisecond)
	b.VerdictTTL = config.Duration(3 * time.Second)
	return b
}

// The leader of east publishes verdicts on east and west: a JetStream KV
// watcher sees west READY only after the hold period, NOT_READY within 2 s
// of a failing check, READY again only after the hold period; each change
// comes with a CloudEvent; a forged verdict written straight to etcd is
// not counted.
func TestPublisherKVAndEvents(t *testing.T) {
	etcd := etcdtest.Start(t, 1)
	cli := etcd.Client(t)
	_, nc := readinesstest.StartNATS(t)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	bus, err := OpenBus(ctx, js, 1)
	if err != nil {
		t.Fatal(err)
	}
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	signer := &Signer{KeyID: "k1", Key: priv}
	verifier := &Verifier{Keys: map[string]ed25519.PublicKey{"k1": pub}}
	keys := topology.NewKeys("/rs-test/")
	fs := &fakeStatuses{}
	fs.lag.Store(0.5)
	var quorumLost atomic.Bool
	p, err := NewPublisher(PublisherOptions{Observer: "east", Keys: keys, Regions: []string{"east", "west"},
		Budgets: testBudgets, Interval: 200 * time.Millisecond, Signer: signer, Verifier: verifier, Bus: bus,
		ExpectedStores: func(r string) []string {
			if r == "west" {
				return []string{replicate.StoreKafka}
			}
			return nil
		}},
		Sources{Statuses: fs.get, Topology: func() topology.Topology {
			health := &topology.Health{Observer: "east", QuorumReachable: !quorumLost.Load(), CheckedAt: time.Now(), QuorumError: "test: quorum lost"}
			return topology.Topology{Health: health, Workers: []topology.Worker{
				{WorkerInfo: topology.WorkerInfo{ID: "e1", Region: "east"}}, {WorkerInfo: topology.WorkerInfo{ID: "w1", Region: "west"}}}}
		}}, prometheus.NewRegistry(), slog.New(slog.NewTextHandler(testWriter{t}, nil)))
	if err != nil {
		t.Fatal(err)
	}
	mb, err := topology.NewMember(cli, topology.MemberOptions{Prefix: keys.Prefix, Region: "east", WorkerID: "e1", SessionTTL: 2 * time.Second}, nil, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	mb.AddLeaderTask("readiness", p.Task)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); _ = mb.Run(ctx) }()
	defer func() { cancel(); wg.Wait() }()

	// Every state the KV bucket holds for west, as a router sees it.
	type seen struct {
		at time.Time
		a  Aggregate
	}
	states := make(chan seen, 100)
	w, err := bus.KV().Watch(ctx, "west")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = w.Stop() }()
	go func() {
		for e := range w.Updates() {
			if e == nil {
				continue
			}
			var a Aggregate
			if json.Unmarshal(e.Value(), &a) == nil {
				states <- seen{time.Now(), a}
			}
		}
	}()
	events, err := nc.SubscribeSync(SubjectReadiness + ".west")
	if err != nil {
		t.Fatal(err)
	}
	waitState := func(want State, within time.Duration) seen {
		t.Helper()
		deadline := time.After(within)
		for {
			select {
			case s := <-states:
				if err := verifier.VerifyAggregate(s.a); err != nil {
					t.Fatalf("aggregate in KV fails verification: %v", err)
				}
				if s.a.State == want {
					return s
				}
			case <-deadline:
				t.Fatalf("west not %s in the KV bucket within %s", want, within)
			}
		}
	}
	first := waitState(NotReady, 5*time.Second) // passing, but not yet for the hold period
	ready := waitState(Ready, 5*time.Second)
	if held := ready.at.Sub(first.at); held < 1200*time.Millisecond {
		t.Fatalf("READY %s after the first verdict, before the 1.5 s hold period", held)
	}

	// A forged READY verdict from a fake observer is not counted.
	forged := ready.a.Verdicts[0]
	forged.Observer, forged.Signature = "mallory", "AAAA"
	raw, _ := json.Marshal(forged)
	if _, err := cli.Put(ctx, keys.Verdict("west", "mallory"), string(raw)); err != nil {
		t.Fatal(err)
	}

	fs.lag.Store(60.0) // over the 10 s budget
	failed := time.Now()
	nr := waitState(NotReady, 2*time.Second)
	t.Logf("failing check → NOT_READY in the KV bucket after %s: %s", nr.at.Sub(failed).Round(time.Millisecond), nr.a.Reason)
	for _, v := range nr.a.Votes {
		if v.Observer == "mallory" {
			t.Fatal("the forged verdict was counted")
		}
	}
	msg, err := events.NextMsg(5 * time.Second)
	if err != nil {
		t.Fatalf("no CloudEvent on %s.west: %v", SubjectReadiness, err)
	}
	if err := schemas.Validate("cloudevent", msg.Data); err != nil {
		t.Fatalf("the readiness event does not match its schema: %v", err)
	}
	var ce map[string]any
	if err := json.Unmarshal(msg.Data, &ce); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"id", "source", "type", "subject", "time", "dataschema", "data"} {
		if ce[k] == nil {
			t.Errorf("CloudEvent lacks %q: %s", k, msg.Data)
		}
	}
	if ce["specversion"] != "1.0" || ce["type"] != TypeReadiness || ce["subject"] != "west" {
		t.Errorf("CloudEvent: %s", msg.Data)
	}

	fs.lag.Store(0.5)
	passing := time.Now()
	again := waitState(Ready, 5*time.Second)
	if held := again.at.Sub(passing); held < 1200*time.Millisecond {
		t.Fatalf("READY again %s after the checks passed, before the hold period", held)
	}
	t.Logf("READY again %s after the checks passed (hold 1.5 s)", again.at.Sub(passing).Round(time.Millisecond))

	// Without etcd's quorum nothing can be fenced: the bucket turns
	// NOT_READY at once instead of saying READY until expiry.
	quorumLost.Store(true)
	lost := time.Now()
	fs1 := waitState(NotReady, 2*time.Second)
	if !strings.Contains(fs1.a.Reason, "cannot reach etcd's quorum") {
		t.Fatalf("fail-safe reason: %s", fs1.a.Reason)
	}
	t.Logf("quorum lost → NOT_READY in the KV bucket after %s", fs1.at.Sub(lost).Round(time.Millisecond))
	quorumLost.Store(false)
	back := time.Now()
	if r := waitState(Ready, 5*time.Second); r.at.Sub(back) < 1200*time.Millisecond {
		t.Fatalf("READY %s after quorum returned, before the hold period", r.at.Sub(back))
	}

	// A Kafka audit report with missing records into west is unrepaired
	// divergence: NOT_READY until a clean report.
	report := func(missing int64) {
		r := consistency.KafkaAuditReport{SchemaVersion: 1, Kind: "kafka-audit", Flow: "east-to-west", Source: "east", Target: "west",
			StartedAt: time.Now().Add(-time.Minute), FinishedAt: time.Now(), Divergent: []consistency.WindowResult{}, Errors: []string{}}
		if missing > 0 {
			r.Add([]consistency.WindowResult{{Topic: "orders", Partition: 0, Missing: []int64{missing},
				Source: consistency.Side{Records: 2}, Target: consistency.Side{Records: 1}}}, 0)
		}
		b, _ := json.Marshal(r)
		if _, err := cli.Put(ctx, consistency.ReportKey(keys, "east-to-west"), string(b)); err != nil {
			t.Fatal(err)
		}
	}
	report(17)
	div := waitState(NotReady, 3*time.Second)
	if !strings.Contains(div.a.Reason, "reconcile_divergence") || !strings.Contains(div.a.Reason, "1 missing") {
		t.Fatalf("divergence reason: %s", div.a.Reason)
	}
	report(0)
	waitState(Ready, 5*time.Second)

	// So is a Cassandra diff of west's DC with rows it did not repair.
	cass := func(divergent, repaired int, age time.Duration, schedule float64) {
		r := consistency.CassandraReport{SchemaVersion: 1, Kind: "cassandra-diff", Job: "orders", Keyspace: "shop", RegionA: "east", RegionB: "west",
			DCA: "dc-east", DCB: "dc-west", Mode: "repair", StartedAt: time.Now().Add(-age - time.Minute), FinishedAt: time.Now().Add(-age),
			ScheduleSeconds: schedule, Errors: []string{},
			Tables: []consistency.TableDiffReport{{Keyspace: "shop", Table: "t", A: "dc-east", B: "dc-west", Mode: "repair", Ranges: 4, Next: 4,
				MissingInB: divergent, Repaired: repaired, Divergent: []consistency.RowDiff{}, Errors: []string{}}}}
		b, _ := json.Marshal(r)
		if _, err := cli.Put(ctx, consistency.CassandraReportKey(keys, "orders"), string(b)); err != nil {
			t.Fatal(err)
		}
	}
	cass(5, 3, 0, 86400)
	div = waitState(NotReady, 3*time.Second)
	if !strings.Contains(div.a.Reason, "cassandra diff orders") || !strings.Contains(div.a.Reason, "5 divergent rows, 3 repaired") {
		t.Fatalf("cassandra divergence reason: %s", div.a.Reason)
	}
	// A clean daily job's report 3 h old is on schedule (budget 2 h plus
	// the job's interval and jitter) ...
	cass(5, 5, 3*time.Hour, 86400+3600)
	waitState(Ready, 5*time.Second)
	// ... but stale when the job runs every 30 minutes.
	cass(5, 5, 3*time.Hour, 1800)
	stale := waitState(NotReady, 3*time.Second)
	if !strings.Contains(stale.a.Reason, "since_reconcile") {
		t.Fatalf("stale report reason: %s", stale.a.Reason)
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) { w.t.Log(string(b)); return len(b), nil }
