//go:build lab

package consistency_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"regexp"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"

	"github.com/regionsync/regionsync/consistency"
	"github.com/regionsync/regionsync/deploy/lab/labtest"
)

// writeRows writes rows [from, to) with value prefix v at LOCAL_ONE, 32 at a time.
func writeRows(t *testing.T, s *gocql.Session, ks string, from, to int, v string) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, 32)
	sem := make(chan struct{}, 32)
	for i := from; i < to; i++ {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			if err := s.Query(fmt.Sprintf("INSERT INTO %s.t (id, v, n) VALUES (?, ?, ?)", ks), i, v+strconv.Itoa(i), i).Consistency(gocql.LocalOne).Exec(); err != nil {
				select {
				case errs <- err:
				default:
				}
			}
		}()
	}
	wg.Wait()
	select {
	case err := <-errs:
		t.Fatalf("write: %v", err)
	default:
	}
}

// TestLabCassandraDiff is issue #8's Cassandra diff (dry run) on the lab:
// with hinted handoff off on both nodes, 100,000 rows are written at
// LOCAL_ONE to dc-east while dc-west runs; then, with dc-west paused,
// 2,000 more rows, overwrites of 100 rows and 10 deletes go to dc-east
// only; then, with dc-east paused, 100 other rows are overwritten and 10
// others deleted in dc-west only. The diff finds exactly those rows, and no others. Then the repair
// (repairAndResume), killed midway and resumed.
func TestLabCassandraDiff(t *testing.T) {
	l := labtest.Require(t)
	east, west := l.Cassandra(t, "127.0.0.1", "dc-east"), l.Cassandra(t, "127.0.0.2", "dc-west")
	ks := fmt.Sprintf("rs_diff_%d", rand.Uint32())
	l.CreateKeyspace(t, east, ks, `CREATE TABLE %[1]s.t (id int PRIMARY KEY, v text, n int)`)
	for _, dc := range []string{"east", "west"} {
		l.Nodetool(t, dc, "disablehandoff")
	}
	t.Cleanup(func() {
		for _, dc := range []string{"east", "west"} {
			l.Nodetool(t, dc, "enablehandoff")
		}
	})
	start := time.Now()
	writeRows(t, east, ks, 0, 100_000, "v")
	t.Logf("100,000 rows written at LOCAL_ONE to dc-east in %s", time.Since(start).Round(time.Millisecond))
	// LOCAL_ONE acknowledges before dc-west applied the copy: pausing it
	// now would drop the copies still in flight (hints are off), making
	// divergence the test did not plan. Wait until dc-west has them all.
	labtest.Eventually(t, 60*time.Second, "dc-west holds the 100,000 rows", func(ctx context.Context) bool {
		var n int
		return west.Query(fmt.Sprintf("SELECT count(*) FROM %s.t", ks)).Consistency(gocql.LocalOne).ScanContext(ctx, &n) == nil && n == 100_000
	})

	want := map[string]string{} // key → expected kind/missingIn
	// A paused node's peer keeps sending it mutations until its failure
	// detector marks it down; from then on writes for it would only be
	// hinted, and hints are off: wait for DN before the divergent writes.
	pauseUntilDown := func(proc, from, addr string) {
		l.Pause(t, proc)
		t.Cleanup(func() { l.Resume(t, proc) }) // SIGCONT again is harmless
		down := regexp.MustCompile(`(?m)^DN\s+` + regexp.QuoteMeta(addr) + `\s`)
		labtest.Eventually(t, 90*time.Second, from+" sees "+addr+" down", func(context.Context) bool {
			return down.MatchString(l.Nodetool(t, from, "status"))
		})
	}
	resumeUntilUp := func(proc, from, addr string) {
		l.Resume(t, proc)
		up := regexp.MustCompile(`(?m)^UN\s+` + regexp.QuoteMeta(addr) + `\s`)
		labtest.Eventually(t, 90*time.Second, from+" sees "+addr+" up", func(context.Context) bool {
			return up.MatchString(l.Nodetool(t, from, "status"))
		})
	}
	pauseUntilDown("cassandra-west", "east", "127.0.0.2")
	writeRows(t, east, ks, 100_000, 102_000, "late")
	writeRows(t, east, ks, 0, 100, "east-overwrite")
	for i := 300; i < 310; i++ {
		if err := east.Query(fmt.Sprintf("DELETE FROM %s.t WHERE id = ?", ks), i).Consistency(gocql.LocalOne).Exec(); err != nil {
			t.Fatal(err)
		}
		want[strconv.Itoa(i)] = "missing dc-east"
	}
	resumeUntilUp("cassandra-west", "east", "127.0.0.2")
	for i := 100_000; i < 102_000; i++ {
		want[strconv.Itoa(i)] = "missing dc-west"
	}
	for i := 0; i < 100; i++ {
		want[strconv.Itoa(i)] = "cells"
	}
	pauseUntilDown("cassandra-east", "west", "127.0.0.1")
	writeRows(t, west, ks, 100, 200, "west-overwrite")
	for i := 200; i < 210; i++ {
		if err := west.Query(fmt.Sprintf("DELETE FROM %s.t WHERE id = ?", ks), i).Consistency(gocql.LocalOne).Exec(); err != nil {
			l.Resume(t, "cassandra-east")
			t.Fatal(err)
		}
		want[strconv.Itoa(i)] = "missing dc-west"
	}
	for i := 100; i < 200; i++ {
		want[strconv.Itoa(i)] = "cells"
	}
	resumeUntilUp("cassandra-east", "west", "127.0.0.1")
	var n int
	if err := west.Query(fmt.Sprintf("SELECT count(*) FROM %s.t WHERE id = 100000", ks)).Consistency(gocql.LocalOne).Scan(&n); err != nil || n != 0 {
		t.Fatalf("the fault did not take: dc-west holds row 100000 (%d, %v)", n, err)
	}

	var last int
	rep, err := consistency.DiffTable(context.Background(), consistency.TableDiffOptions{Keyspace: ks, Table: "t",
		A: consistency.DiffDC{Name: "dc-east", Session: east}, B: consistency.DiffDC{Name: "dc-west", Session: west},
		Progress: func(done, total int) { last = done }})
	if err != nil {
		t.Fatal(err)
	}
	rate := float64(rep.RowsA+rep.RowsB) / rep.Took.Seconds()
	t.Logf("diff: %d ranges (%d differing), %d rows in dc-east, %d in dc-west, %d divergent rows, %s: %.0f rows/s (both DCs), %.0f row pairs/s",
		rep.Ranges, rep.RangesDiffering, rep.RowsA, rep.RowsB, len(rep.Divergent), rep.Took.Round(time.Millisecond), rate, rate/2)
	if last != rep.Ranges {
		t.Fatalf("progress reached %d of %d ranges", last, rep.Ranges)
	}
	got := map[string]string{}
	for _, d := range rep.Divergent {
		k := d.Kind
		if d.Kind == "missing" {
			k = "missing " + d.MissingIn
		}
		got[d.Key] = k
	}
	var wrong []string
	for k, w := range want {
		if got[k] != w {
			wrong = append(wrong, fmt.Sprintf("%s: got %q want %q", k, got[k], w))
		}
	}
	for k, g := range got {
		if _, ok := want[k]; !ok {
			wrong = append(wrong, fmt.Sprintf("%s: unexpected %q", k, g))
		}
	}
	sort.Strings(wrong)
	if len(wrong) > 0 {
		t.Fatalf("%d rows judged wrong (of %d expected divergent), first: %v", len(wrong), len(want), wrong[:min(10, len(wrong))])
	}
	// Each overwritten cell names the DC whose write is newer.
	for _, d := range rep.Divergent {
		if d.Kind != "cells" {
			continue
		}
		id, _ := strconv.Atoi(d.Key)
		wantNewer := "dc-east"
		if id >= 100 {
			wantNewer = "dc-west"
		}
		for _, c := range d.Cells {
			if c.Newer != wantNewer {
				t.Fatalf("row %s column %s: newer %s, want %s", d.Key, c.Column, c.Newer, wantNewer)
			}
		}
	}
	repairAndResume(t, l, east, west, ks, rep)
}
