package consistency_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"testing"
	"time"

	"github.com/regionsync/regionsync/consistency"
	"github.com/regionsync/regionsync/schemas"
)

var update = flag.Bool("update", false, "rewrite schemas/testdata/reconcile-report-*golden.json")

// The report matches its schema, equals the golden file and round-trips.
func TestReportSchema(t *testing.T) {
	at := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	r := consistency.KafkaAuditReport{SchemaVersion: 1, Kind: "kafka-audit", Flow: "east-to-west", Source: "east", Target: "west",
		StartedAt: at, FinishedAt: at.Add(1004 * time.Millisecond), Topics: []string{"orders"}, Divergent: []consistency.WindowResult{}, Errors: []string{}}
	r.Add([]consistency.WindowResult{
		{Topic: "orders", RemoteTopic: "east.orders", Partition: 0, Start: at.Add(-10 * time.Minute), End: at.Add(-9 * time.Minute),
			Source: consistency.Side{Records: 3, Sum: 9, Chain: 77, First: 0, Last: 2}, Target: consistency.Side{Records: 3, Sum: 9, Chain: 77, First: 0, Last: 2}},
		{Topic: "orders", RemoteTopic: "east.orders", Partition: 1, Start: at.Add(-10 * time.Minute), End: at.Add(-9 * time.Minute),
			Source: consistency.Side{Records: 3, Sum: 9, Chain: 77, First: 0, Last: 2}, Target: consistency.Side{Records: 3, Sum: 6, Chain: 12, First: 0, Last: 2},
			Missing: []int64{1}, Duplicated: []int64{2}},
	}, 1)
	want := golden(t, "reconcile-report-golden.json", r)
	bad := bytes.Replace(want, []byte(`"kind": "kafka-audit"`), []byte(`"kind": "cassandra"`), 1)
	if err := schemas.Validate("reconcile-report", bad); err == nil {
		t.Fatal("unknown kind accepted")
	}
}

// So does a Cassandra diff report; DecodeReport tells the kinds apart.
func TestCassandraReportSchema(t *testing.T) {
	at := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	r := consistency.CassandraReport{SchemaVersion: 1, Kind: "cassandra-diff", Job: "orders", Keyspace: "shop", RegionA: "east", RegionB: "west",
		DCA: "dc-east", DCB: "dc-west", Mode: "repair", StartedAt: at, FinishedAt: at.Add(3 * time.Second), Resumed: true, ScheduleSeconds: 25200, Errors: []string{},
		Tables: []consistency.TableDiffReport{{Keyspace: "shop", Table: "orders", A: "dc-east", B: "dc-west", Mode: "repair", Ranges: 256, Next: 256,
			RangesResumed: 64, RangesDiffering: 2, RowsA: 1000, RowsB: 999, MissingInB: 1, CellRows: 1, Repaired: 2,
			Divergent: []consistency.RowDiff{{Key: "17", Kind: "missing", MissingIn: "dc-west", Token: -42},
				{Key: "18", Kind: "cells", Token: 7, Cells: []consistency.CellDiff{{Column: "v", WriteTimeA: 1764504000000000, WriteTimeB: 1764504000000001, Newer: "dc-west"}}}},
			Errors: []string{}, Took: 2500 * time.Millisecond}}}
	want := golden(t, "reconcile-report-cassandra-golden.json", r)
	back, _ := consistency.DecodeReport(want)
	if bad, why := consistency.CassandraDivergence(back.(consistency.CassandraReport)); bad {
		t.Fatalf("every divergent row repaired, yet: %s", why)
	}
	for name, mod := range map[string][2]string{
		"unknown mode":        {`"mode": "repair",`, `"mode": "fix",`},
		"negative rows":       {`"rowsA": 1000`, `"rowsA": -1`},
		"missing without key": {`"key": "17",`, ``},
	} {
		bad := bytes.Replace(want, []byte(mod[0]), []byte(mod[1]), 1)
		if err := schemas.Validate("reconcile-report", bad); err == nil {
			t.Errorf("%s accepted", name)
		} else {
			t.Logf("%s: %v", name, err)
		}
	}
}

// golden checks that r validates against the schema, equals the golden
// file (rewritten with -update) and round-trips through DecodeReport.
func golden(t *testing.T, name string, r any) []byte {
	t.Helper()
	got, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	if err := schemas.Validate("reconcile-report", got); err != nil {
		t.Fatalf("%v\n%s", err, got)
	}
	path := "../schemas/testdata/" + name
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("golden %s differs:\n%s", name, got)
	}
	back, err := consistency.DecodeReport(want)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := json.MarshalIndent(back, "", "  ")
	if !bytes.Equal(append(again, '\n'), want) {
		t.Fatalf("%s: round trip changed the report", name)
	}
	return want
}
