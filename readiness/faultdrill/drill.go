// Package faultdrill injects the faults of issue #7 into the lab while
// regionsync workers run, and measures how soon the readiness KV bucket
// shows them. The lab acceptance test and the readiness load test use it.
package faultdrill

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/regionsync/regionsync/deploy/lab/labtest"
	"github.com/regionsync/regionsync/mirror"
	"github.com/regionsync/regionsync/mirror/mirrortest"
	"github.com/regionsync/regionsync/readiness"
)

// Drill runs regionsync workers (the real binary) on the lab — one in east,
// two in west, all observers — with a flow east→west run by the drill
// itself, and watches the readiness KV bucket the way a router does, so
// faults can be injected and the time until the bucket says so measured.
type Drill struct {
	t   testing.TB
	lab *labtest.Lab
	bin string
	cfg string

	flowName, topic string
	stopFlow        func()
	workers         map[string][]*proc

	mu     sync.Mutex
	states []Seen // west's states as the watcher received them
}

// Seen is one value of key "west" as a KV watcher received it.
type Seen struct {
	At    time.Time
	State readiness.State
	Rev   int64
	Why   string
}

// Fault is one way to break west and to repair it.
type Fault struct {
	Name   string
	Break  func(d *Drill)
	Repair func(d *Drill)
	// Want is the state west must turn to.
	Want readiness.State
}

// Faults are the four of issue #7: the mirror flow stops, dc-west's
// Cassandra freezes, etcd loses two of three members, every west worker
// dies.
func Faults() []Fault {
	return []Fault{
		{Name: "mirror flow east→west stopped", Want: readiness.NotReady,
			Break: func(d *Drill) { d.stopFlow() }, Repair: func(d *Drill) { d.startFlow() }},
		{Name: "SIGSTOP cassandra-west", Want: readiness.NotReady,
			Break:  func(d *Drill) { d.lab.Pause(d.t, "cassandra-west") },
			Repair: func(d *Drill) { d.lab.Resume(d.t, "cassandra-west") }},
		{Name: "kill -9 etcd-west and etcd-witness", Want: readiness.NotReady,
			Break: func(d *Drill) {
				d.lab.Kill(d.t, "etcd-west")
				d.lab.Kill(d.t, "etcd-witness")
			},
			Repair: func(d *Drill) {
				d.lab.Start(d.t, "etcd-west")
				d.lab.Start(d.t, "etcd-witness")
			}},
		{Name: "kill -9 every west worker", Want: readiness.Unknown,
			Break: func(d *Drill) {
				for _, w := range d.workers["west"] {
					w.kill9()
				}
			},
			Repair: func(d *Drill) {
				for _, w := range d.workers["west"] {
					w.start()
				}
			}},
	}
}

// StartDrill builds nothing: bin is a built regionsync binary. It creates
// the keyspace, the topic and the flow, starts the workers and waits until
// the bucket says west is READY.
func StartDrill(t testing.TB, lab *labtest.Lab, bin string, hold time.Duration) *Drill {
	t.Helper()
	id := rand.Uint32()
	d := &Drill{t: t, lab: lab, bin: bin, workers: map[string][]*proc{},
		flowName: fmt.Sprintf("drill-%d", id), topic: fmt.Sprintf("drill_%d", id)}
	ks := fmt.Sprintf("rs_drill_%d", id)
	d.createKeyspace(ks)
	mirrortest.CreateTopic(t, lab.KafkaEast, d.topic, 1)
	d.startFlow()
	t.Cleanup(func() { d.stopFlow() })
	d.cfg = filepath.Join(t.TempDir(), "regionsync.yaml")
	if err := os.WriteFile(d.cfg, []byte(d.config(ks, id, hold)), 0o600); err != nil {
		t.Fatal(err)
	}
	d.watch()
	for _, w := range []struct{ region, id string }{{"east", "east-1"}, {"west", "west-1"}, {"west", "west-2"}} {
		p := &proc{t: t, bin: bin, args: []string{"run", "--config", d.cfg, "--region", w.region, "--worker-id", w.id,
			"--listen", "127.0.0.1:0", "--run-flows=false"}}
		p.start()
		t.Cleanup(p.stop)
		d.workers[w.region] = append(d.workers[w.region], p)
	}
	if _, err := d.WaitState(readiness.Ready, time.Now(), 90*time.Second); err != nil {
		t.Fatalf("west never READY: %v; worker logs:\n%s", err, d.Logs())
	}
	return d
}

func (d *Drill) createKeyspace(ks string) {
	cc := d.lab.CassandraCluster("127.0.0.1", "dc-east")
	s, err := cc.CreateSession()
	if err != nil {
		d.t.Fatalf("cassandra: %v", err)
	}
	defer s.Close()
	for _, q := range []string{
		fmt.Sprintf(`CREATE KEYSPACE %s WITH replication = {'class': 'NetworkTopologyStrategy', 'dc-east': 1, 'dc-west': 1}`, ks),
		fmt.Sprintf(`CREATE TABLE %s.t (k int PRIMARY KEY, v text)`, ks),
	} {
		if err := s.Query(q).Consistency(gocql.One).Exec(); err != nil {
			d.t.Fatalf("%s: %v", q, err)
		}
	}
	if err := s.AwaitSchemaAgreement(context.Background()); err != nil {
		d.t.Fatal(err)
	}
	d.t.Cleanup(func() {
		if s, err := cc.CreateSession(); err == nil {
			_ = s.Query("DROP KEYSPACE IF EXISTS " + ks).Exec()
			s.Close()
		}
	})
}

// config: budgets tight enough that every fault fails a check within a
// second (RPO 750 ms with 100 ms heartbeats), observers sampling every
// 250 ms.
func (d *Drill) config(ks string, id uint32, hold time.Duration) string {
	etcd := `["` + strings.Join(d.lab.EtcdEndpoints, `", "`) + `"]`
	region := func(name, kafka, cass, dc string) string {
		return fmt.Sprintf(`  - name: %s
    kafka: {brokers: [%q]}
    cassandra: {contact_points: [%q], local_dc: %s, keyspaces: [%s], probe_timeout: 600ms}
    etcd: {endpoints: %s}
    nats: {url: %q}
`, name, kafka, cass, dc, ks, etcd, d.lab.NATSURL)
	}
	return fmt.Sprintf(`version: 1
etcd_prefix: /regionsync-drill-%d/
regions:
%s%sflows:
  - name: %s
    source: east
    target: west
    topics: {include: [%q]}
readiness:
  defaults:
    rpo_budget: 750ms
    max_checkpoint_age: 0s
    max_since_repair: 0s
    require_local_quorum: [%s]
    hold_period: %s
    verdict_ttl: 3s
    evaluate_interval: 250ms
  gate:
    min_flip_interval: 0s
server:
  log_format: json
  log_level: info
`, id, region("east", d.lab.KafkaEast[0], "127.0.0.1", "dc-east"), region("west", d.lab.KafkaWest[0], "127.0.0.2", "dc-west"),
		d.flowName, d.topic, ks, hold)
}

func (d *Drill) startFlow() {
	env := mirrortest.Env{East: d.lab.KafkaEast, West: d.lab.KafkaWest, Log: slog.New(slog.DiscardHandler)}
	_, stop := mirrortest.StartStoppableFlow(d.t, env, d.flowName, "east", "west", d.lab.KafkaEast, d.lab.KafkaWest, "prefix", d.topic,
		func(o *mirror.Options) { o.HeartbeatInterval = 100 * time.Millisecond })
	d.stopFlow = stop
}

// watch follows key "west" of the bucket from the lab's NATS.
func (d *Drill) watch() {
	nc, err := nats.Connect(d.lab.NATSURL, nats.MaxReconnects(-1))
	if err != nil {
		d.t.Fatal(err)
	}
	d.t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		d.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	d.t.Cleanup(cancel)
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: readiness.Bucket, History: 5})
	if err != nil {
		d.t.Fatal(err)
	}
	w, err := kv.Watch(ctx, "west", jetstream.UpdatesOnly())
	if err != nil {
		d.t.Fatal(err)
	}
	go func() {
		for e := range w.Updates() {
			if e == nil {
				continue
			}
			var a readiness.Aggregate
			if json.Unmarshal(e.Value(), &a) != nil {
				continue
			}
			d.mu.Lock()
			if n := len(d.states); n == 0 || d.states[n-1].State != a.State {
				d.states = append(d.states, Seen{At: time.Now(), State: a.State, Rev: a.Revision, Why: a.Reason})
			}
			d.mu.Unlock()
		}
	}()
}

// WaitState waits until the watcher received state after since, and
// returns when.
func (d *Drill) WaitState(state readiness.State, since time.Time, timeout time.Duration) (Seen, error) {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		d.mu.Lock()
		for _, s := range d.states {
			if s.State == state && !s.At.Before(since) {
				d.mu.Unlock()
				return s, nil
			}
		}
		d.mu.Unlock()
		time.Sleep(10 * time.Millisecond)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	var seen []string
	for _, s := range d.states {
		if !s.At.Before(since) {
			seen = append(seen, fmt.Sprintf("%s after %s (%s)", s.State, s.At.Sub(since).Round(time.Millisecond), s.Why))
		}
	}
	return Seen{}, fmt.Errorf("west not %s within %s; seen since: %v", state, timeout, seen)
}

// Result of one fault.
type Result struct {
	Fault string
	// Detect: fault injected (its command returned) → the watcher received Want.
	Detect time.Duration
	// Recover: repair started → READY again; it must not beat the hold
	// period.
	Recover time.Duration
	Seen    Seen
}

// Inject breaks, measures, repairs, and waits for READY again.
func (d *Drill) Inject(f Fault) (Result, error) {
	f.Break(d)
	broken := time.Now()
	seen, err := d.WaitState(f.Want, broken, 15*time.Second)
	if err != nil {
		f.Repair(d)
		return Result{Fault: f.Name}, err
	}
	repairing := time.Now() // the repair cannot take effect before this
	f.Repair(d)
	ready, err := d.WaitState(readiness.Ready, repairing, 120*time.Second)
	if err != nil {
		return Result{Fault: f.Name}, fmt.Errorf("after repair: %w", err)
	}
	return Result{Fault: f.Name, Detect: seen.At.Sub(broken), Recover: ready.At.Sub(repairing), Seen: seen}, nil
}

// Logs returns the tail of every worker's output.
func (d *Drill) Logs() string {
	var b strings.Builder
	for _, ws := range d.workers {
		for _, w := range ws {
			fmt.Fprintf(&b, "--- %s\n%s\n", strings.Join(w.args, " "), tail(w.out.String(), 3000))
		}
	}
	return b.String()
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// proc is one regionsync process, restartable.
type proc struct {
	t      testing.TB
	bin    string
	args   []string
	cmd    *exec.Cmd
	out    syncBuf
	exited chan struct{}
}

func (p *proc) start() {
	p.cmd = exec.Command(p.bin, p.args...)
	p.cmd.Stdout, p.cmd.Stderr = &p.out, &p.out
	if err := p.cmd.Start(); err != nil {
		p.t.Fatal(err)
	}
	p.exited = make(chan struct{})
	go func(c *exec.Cmd, ch chan struct{}) { _ = c.Wait(); close(ch) }(p.cmd, p.exited)
}

func (p *proc) kill9() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.exited
}

func (p *proc) stop() {
	select {
	case <-p.exited:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(15 * time.Second):
		p.kill9()
	}
}

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
