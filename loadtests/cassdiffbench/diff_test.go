//go:build loadtest

// Package cassdiffbench measures the Cassandra cross-DC diff on the lab:
// row pairs compared per second (goal: ≥ 20,000 per DC pair on the 2-core
// machine), for a table of --rows rows identical in both DCs, over --runs
// dry runs, unthrottled and at LOCAL_ONE, then once at LOCAL_QUORUM. Run it
// with `make loadtest` or:
//
//	go test -tags loadtest -run TestCassDiffBench -v -timeout 30m ./loadtests/cassdiffbench
package cassdiffbench

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"

	"github.com/regionsync/regionsync/consistency"
	"github.com/regionsync/regionsync/deploy/lab/labtest"
)

var (
	rows = flag.Int("rows", 200_000, "rows in the table")
	runs = flag.Int("runs", 3, "diff runs at LOCAL_ONE")
)

func TestCassDiffBench(t *testing.T) {
	l := labtest.Require(t)
	east, west := l.Cassandra(t, "127.0.0.1", "dc-east"), l.Cassandra(t, "127.0.0.2", "dc-west")
	ks := fmt.Sprintf("rs_diffbench_%d", rand.Uint32())
	l.CreateKeyspace(t, east, ks, `CREATE TABLE %[1]s.t (id int, seq int, v text, n bigint, at timestamp, PRIMARY KEY (id, seq))`)
	start := time.Now()
	var wg sync.WaitGroup
	sem := make(chan struct{}, 64)
	var mu sync.Mutex
	var werr error
	for i := range *rows {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			// EACH_QUORUM: both DCs hold every row before the diff.
			err := east.Query(fmt.Sprintf("INSERT INTO %s.t (id, seq, v, n, at) VALUES (?, ?, ?, ?, ?)", ks), i/4, i%4,
				strings.Repeat("x", 100)+fmt.Sprint(i), int64(i)*7, time.UnixMilli(int64(i))).Consistency(gocql.EachQuorum).Exec()
			if err != nil {
				mu.Lock()
				werr = err
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if werr != nil {
		t.Fatal(werr)
	}
	t.Logf("%d rows (4 per partition, 5 columns, ~120 B) written at EACH_QUORUM in %s", *rows, time.Since(start).Round(time.Millisecond))
	diff := func(c gocql.Consistency) float64 {
		rep, err := consistency.DiffTable(context.Background(), consistency.TableDiffOptions{Keyspace: ks, Table: "t", Consistency: c,
			A: consistency.DiffDC{Name: "dc-east", Session: east}, B: consistency.DiffDC{Name: "dc-west", Session: west}})
		if err != nil {
			t.Fatal(err)
		}
		if rep.DivergentRows() != 0 || rep.RowsA != int64(*rows) || rep.RowsB != int64(*rows) {
			t.Fatalf("diff: %d divergent, %d and %d rows of %d", rep.DivergentRows(), rep.RowsA, rep.RowsB, *rows)
		}
		return float64(rep.RowsA) / rep.Took.Seconds()
	}
	var got []float64
	for range *runs {
		got = append(got, diff(gocql.LocalOne))
	}
	quorum := diff(gocql.LocalQuorum)
	var b strings.Builder
	fmt.Fprintf(&b, "\n| Cassandra diff, %d rows, 256 ranges, dry run | row pairs/s |\n|---|---|\n", *rows)
	for i, r := range got {
		fmt.Fprintf(&b, "| LOCAL_ONE, run %d | %.0f |\n", i+1, r)
	}
	fmt.Fprintf(&b, "| LOCAL_QUORUM | %.0f |\n", quorum)
	sort.Float64s(got)
	fmt.Fprintf(&b, "\nLOCAL_ONE median %.0f row pairs/s (goal ≥ 20,000).\n", got[len(got)/2])
	t.Log(b.String())
}
