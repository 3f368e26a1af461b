//go:build lab

package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"
	"github.com/nats-io/nats.go/jetstream"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/regionsync/regionsync/consistency"
	"github.com/regionsync/regionsync/deploy/lab/labtest"
	"github.com/regionsync/regionsync/readiness"
	"github.com/regionsync/regionsync/topology"
)

// TestLabReconcileCassandra wires issue #8's Cassandra job end to end on
// the lab: `regionsync reconcile run --cassandra` runs the configured job
// once (exit 0 on identical DCs) and stores its report, `reconcile status`
// prints it, and a `regionsync run` worker leading east runs the job on its
// schedule, storing a newer report in etcd and publishing it on NATS.
func TestLabReconcileCassandra(t *testing.T) {
	l := labtest.Require(t)
	bin := filepath.Join(t.TempDir(), "regionsync")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	id := rand.Uint32()
	ks := fmt.Sprintf("rs_job_%d", id)
	east := l.Cassandra(t, "127.0.0.1", "dc-east")
	l.CreateKeyspace(t, east, ks, `CREATE TABLE %[1]s.t (id int PRIMARY KEY, v text)`)
	for i := range 1000 {
		if err := east.Query(fmt.Sprintf("INSERT INTO %s.t (id, v) VALUES (?, ?)", ks), i, fmt.Sprint("v", i)).Consistency(gocql.EachQuorum).Exec(); err != nil {
			t.Fatal(err)
		}
	}
	prefix := fmt.Sprintf("/regionsync-job-%d/", id)
	cfg := l.WriteConfig(t, true, fmt.Sprintf("etcd_prefix: %s\nreconcile:\n  kafka_audit: {disabled: true}\n  cassandra:\n"+
		"    - {name: lab-%d, keyspace: %s, regions: [east, west], interval: 2s, jitter: 0s, splits: 16, rate_limit: -1}\n", prefix, id, ks))
	job := fmt.Sprintf("lab-%d", id)
	run := func(args ...string) (string, int) {
		out, err := exec.Command(bin, args...).CombinedOutput()
		var ee *exec.ExitError
		switch {
		case err == nil:
			return string(out), 0
		case errors.As(err, &ee):
			return string(out), ee.ExitCode()
		}
		t.Fatalf("%v: %v", args, err)
		return "", 0
	}
	out, code := run("reconcile", "run", "--cassandra", job, "--config", cfg)
	t.Logf("reconcile run --cassandra (exit %d):\n%s", code, out)
	if code != 0 || !strings.Contains(out, "IDENTICAL") || !strings.Contains(out, "1000 rows in dc-east, 1000 in dc-west") {
		t.Fatalf("reconcile run --cassandra: exit %d", code)
	}
	out, code = run("reconcile", "status", "--config", cfg)
	if code != 0 || !strings.Contains(out, "cassandra job "+job) {
		t.Fatalf("reconcile status (exit %d):\n%s", code, out)
	}
	out, code = run("reconcile", "run", "--cassandra", "nope", "--config", cfg)
	if code == 0 || !strings.Contains(out, `cassandra job "nope": not in reconcile.cassandra`) {
		t.Fatalf("unknown job (exit %d):\n%s", code, out)
	}

	cli := l.Etcd(t)
	keys := topology.NewKeys(prefix)
	t.Cleanup(func() { _, _ = cli.Delete(context.Background(), prefix, clientv3.WithPrefix()) })
	stored := func(ctx context.Context) consistency.CassandraReport {
		var r consistency.CassandraReport
		resp, err := cli.Get(ctx, consistency.CassandraReportKey(keys, job))
		if err == nil && len(resp.Kvs) == 1 {
			_ = json.Unmarshal(resp.Kvs[0].Value, &r)
		}
		return r
	}
	first := stored(context.Background())
	if first.Job != job || first.Mode != "dry-run" {
		t.Fatalf("stored report after the CLI run: %+v", first)
	}
	js, err := jetstream.New(l.NATS(t))
	if err != nil {
		t.Fatal(err)
	}
	w := &worker{t: t, bin: bin, cfg: cfg}
	w.cmd = exec.Command(bin, "run", "--config", cfg, "--region", "east", "--worker-id", "east-1", "--listen", "127.0.0.1:0", "--run-flows=false")
	w.logs = &syncBuffer{}
	w.cmd.Stdout, w.cmd.Stderr = w.logs, w.logs
	if err := w.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w.exited = make(chan error, 1)
	go func() { w.exited <- w.cmd.Wait() }()
	t.Cleanup(func() {
		w.stop()
		if t.Failed() {
			t.Logf("worker log tail:\n%s", tailString(w.logs.String(), 6000))
		}
	})
	labtest.Eventually(t, 60*time.Second, "the east leader ran the job on its schedule", func(ctx context.Context) bool {
		w.alive()
		return stored(ctx).FinishedAt.After(first.FinishedAt)
	})
	var ev struct {
		Type string                      `json:"type"`
		Data consistency.CassandraReport `json:"data"`
	}
	labtest.Eventually(t, 20*time.Second, "the report on NATS", func(ctx context.Context) bool {
		s, err := js.Stream(ctx, readiness.AuditStream)
		if err != nil {
			return false
		}
		m, err := s.GetLastMsgForSubject(ctx, readiness.SubjectReconcile+".cassandra."+job)
		return err == nil && json.Unmarshal(m.Data, &ev) == nil && ev.Data.Job == job
	})
	if ev.Type != readiness.TypeReconcile || ev.Data.Kind != "cassandra-diff" {
		t.Fatalf("event: type %q, kind %q", ev.Type, ev.Data.Kind)
	}
	if bad, why := consistency.CassandraDivergence(stored(context.Background())); bad {
		t.Fatalf("scheduled report: %s", why)
	}
}
