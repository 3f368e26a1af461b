package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/regionsync/regionsync/consistency"
	"github.com/regionsync/regionsync/internal/config"
	"github.com/regionsync/regionsync/internal/devstack/devstacktest"
	"github.com/regionsync/regionsync/topology"
)

// reconcile status prints stored Cassandra reports and unfinished runs
// from a real etcd, and exits 3 on unrepaired divergence.
func TestReconcileStatusCassandra(t *testing.T) {
	ep := devstacktest.Start(t)
	cfgPath := filepath.Join(t.TempDir(), "regionsync.yaml")
	cfg := fmt.Sprintf("version: 1\nregions:\n  - name: east\n    kafka: {brokers: [%q]}\n    etcd: {endpoints: [%q]}\n    nats: {url: %q}\n", ep.Kafka["east"][0], ep.Etcd[0], ep.NATS)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: ep.Etcd, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	keys := topology.NewKeys(config.DefaultEtcdPrefix)
	at := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	table := consistency.TableDiffReport{Keyspace: "shop", Table: "orders", A: "dc-east", B: "dc-west", Mode: "repair", Ranges: 256, Next: 256,
		RowsA: 1000, RowsB: 998, MissingInB: 2, Repaired: 1, Divergent: []consistency.RowDiff{{Key: "7", Kind: "missing", MissingIn: "dc-west"}},
		Errors: []string{"shop.orders row 7: still differs after repair (missing in dc-west)"}}
	rep := consistency.CassandraReport{SchemaVersion: 1, Kind: "cassandra-diff", Job: "orders", Keyspace: "shop", RegionA: "east", RegionB: "west",
		DCA: "dc-east", DCB: "dc-west", Mode: "repair", StartedAt: at, FinishedAt: at.Add(time.Minute), Tables: []consistency.TableDiffReport{table}, Errors: []string{}}
	cur := table
	cur.Next = 67
	prog := consistency.CassandraProgress{Report: consistency.CassandraReport{Job: "users", Mode: "dry-run", StartedAt: at}, Current: &cur, Tables: []string{"orders", "items"}, Splits: 256}
	for k, v := range map[string]any{consistency.CassandraReportKey(keys, "orders"): rep, consistency.CassandraProgressKey(keys, "users"): prog} {
		b, _ := json.Marshal(v)
		if _, err := cli.Put(context.Background(), k, string(b)); err != nil {
			t.Fatal(err)
		}
	}
	var out, errb bytes.Buffer
	root := newRootCmd(&out, &errb)
	root.SetArgs([]string{"reconcile", "status", "--config", cfgPath})
	err = root.Execute()
	var ee exitError
	if !errors.As(err, &ee) || ee.code != 3 {
		t.Fatalf("exit: %v, want 3\n%s%s", err, out.String(), errb.String())
	}
	for _, want := range []string{
		"cassandra job orders: shop dc-east ⇄ dc-west (east/west), repair",
		"2 divergent, 1 repaired",
		"7: missing in dc-west",
		"readiness: cassandra diff orders (dc-east ⇄ dc-west, repair): 2 divergent rows, 1 repaired, 1 errors",
		"cassandra job users: unfinished run (dry-run, started 2026-11-30T12:00:00Z): 0 of 2 tables done, orders at range 67 of 256; the next run resumes it",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("status lacks %q:\n%s", want, out.String())
		}
	}
}
