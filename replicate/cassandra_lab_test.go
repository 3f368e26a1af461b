//go:build lab

package replicate_test

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"regexp"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/regionsync/regionsync/deploy/lab/labtest"
	"github.com/regionsync/regionsync/internal/config"
	"github.com/regionsync/regionsync/replicate"
)

var (
	nodetoolWestDown = regexp.MustCompile(`(?m)^DN\s+127\.0\.0\.2\s`)
	nodetoolWestUp   = regexp.MustCompile(`(?m)^UN\s+127\.0\.0\.2\s`)
)

// TestLabCassandraPause: with writes flowing into dc-east, SIGSTOP the
// dc-west node. Within 3 s dc-west reports LOCAL_QUORUM unavailable for a
// keyspace with RF 1 per DC, and the hints dc-east holds for dc-west grow;
// once nodetool (gossip) also says DN, both agree. SIGCONT: healthy again,
// hints drained, and nodetool agrees on UN.
func TestLabCassandraPause(t *testing.T) {
	l := labtest.Require(t)
	east := l.Cassandra(t, "127.0.0.1", "dc-east")
	ks := fmt.Sprintf("rs_repl_%d", rand.Uint32())
	if err := east.Query(fmt.Sprintf(`CREATE KEYSPACE %s WITH replication = {'class': 'NetworkTopologyStrategy', 'dc-east': 1, 'dc-west': 1}`, ks)).Exec(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = east.Query("DROP KEYSPACE IF EXISTS " + ks).Exec() })
	if err := east.Query(fmt.Sprintf(`CREATE TABLE %s.t (k int PRIMARY KEY, v text)`, ks)).Exec(); err != nil {
		t.Fatal(err)
	}
	if err := east.AwaitSchemaAgreement(t.Context()); err != nil {
		t.Fatal(err)
	}

	budgets := config.DefaultBudgets()
	budgets.RequireLocalQuorum = []string{ks}
	budgets.MaxSinceRepair = 0 // a fresh keyspace was never repaired
	dc := func(region, host, name string) replicate.CassandraDC {
		return replicate.CassandraDC{Region: region, DC: name, Cluster: l.CassandraCluster(host, name), Keyspaces: []string{ks}}
	}
	obs, err := replicate.NewCassandra(replicate.CassandraOptions{
		DCs:     []replicate.CassandraDC{dc("east", "127.0.0.1", "dc-east"), dc("west", "127.0.0.2", "dc-west")},
		Budgets: func(string) config.Budgets { return budgets },
	}, prometheus.NewRegistry(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); _ = obs.Run(ctx) }()
	t.Cleanup(func() { cancel(); wg.Wait() })

	eastToWest := func() (replicate.Status, bool) {
		for _, s := range obs.Statuses() {
			if s.Source == "east" && s.Target == "west" {
				return s, true
			}
		}
		return replicate.Status{}, false
	}
	check := func(s replicate.Status, name string) replicate.Check {
		for _, c := range s.Checks {
			if c.Name == name {
				return c
			}
		}
		return replicate.Check{Result: replicate.Unknown}
	}
	westNodeUp := func(s replicate.Status) (up, seen bool) {
		for _, n := range s.Cassandra.Nodes {
			if n.Address == "127.0.0.2" {
				return n.Up, true
			}
		}
		return false, false
	}
	healthy := func(context.Context) bool {
		s, ok := eastToWest()
		return ok && s.Cassandra != nil && check(s, "local_quorum").Result == replicate.Pass && s.Cassandra.Hints.Files == 0
	}
	labtest.Eventually(t, 60*time.Second, "east→west healthy before the fault", healthy)
	s, _ := eastToWest()
	if up, seen := westNodeUp(s); !up || !seen || !nodetoolWestUp.MatchString(l.Nodetool(t, "east", "status")) {
		t.Fatalf("before the fault: regionsync says 127.0.0.2 up=%v (seen %v); nodetool:\n%s", up, seen, l.Nodetool(t, "east", "status"))
	}

	// Writes at LOCAL_ONE into dc-east all along.
	var written atomic.Int64
	wctx, stopWrites := context.WithCancel(ctx)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; wctx.Err() == nil; i++ {
			err := east.Query(fmt.Sprintf("INSERT INTO %s.t (k, v) VALUES (?, ?)", ks), i, fmt.Sprintf("value-%d", i)).
				Consistency(gocql.LocalOne).ExecContext(wctx)
			if err == nil {
				written.Add(1)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	defer stopWrites()

	l.Pause(t, "cassandra-west")
	paused := time.Now()
	resumed := false
	defer func() {
		if !resumed {
			l.Resume(t, "cassandra-west")
		}
	}()
	took := labtest.Eventually(t, 10*time.Second, "dc-west reports LOCAL_QUORUM unavailable", func(context.Context) bool {
		s, ok := eastToWest()
		return ok && s.Cassandra != nil && check(s, "local_quorum").Result == replicate.Fail
	})
	s, _ = eastToWest()
	t.Logf("LOCAL_QUORUM unavailable for %s in dc-west %s after SIGSTOP: %s", ks, took.Round(time.Millisecond), check(s, "local_quorum").Reason)
	if took > 3*time.Second {
		t.Fatalf("dc-west reported down %s after SIGSTOP, want ≤ 3s", took)
	}
	if up, _ := westNodeUp(s); up {
		t.Fatal("LOCAL_QUORUM failed but the node still shows up")
	}

	// Hints for dc-west pile up on dc-east while writes continue.
	labtest.Eventually(t, 30*time.Second, "dc-east holds hints for dc-west", func(context.Context) bool {
		s, _ := eastToWest()
		return s.Cassandra != nil && s.Cassandra.Hints.Files > 0
	})
	s1, _ := eastToWest()
	w1 := written.Load()
	time.Sleep(3 * time.Second)
	s2, _ := eastToWest()
	h1, h2 := s1.Cassandra.Hints, s2.Cassandra.Hints
	t.Logf("hints dc-east holds for dc-west: files %d → %d, bytes %v → %v, oldest age %.1fs → %.1fs; %d rows written meanwhile; window (RPO) %.1fs",
		h1.Files, h2.Files, h1.Bytes, h2.Bytes, float64(h1.OldestAgeSeconds), float64(h2.OldestAgeSeconds), written.Load()-w1, float64(s2.RPOSeconds))
	if written.Load() == w1 {
		t.Fatal("no write succeeded at LOCAL_ONE in dc-east while dc-west was paused")
	}
	grew := h2.OldestAgeSeconds > h1.OldestAgeSeconds+2 || (h1.Bytes.Known() && h2.Bytes > h1.Bytes) || h2.Files > h1.Files
	if !grew {
		t.Fatalf("pending hints for dc-west did not grow while writes continued: %+v → %+v", h1, h2)
	}
	if float64(s2.RPOSeconds) < time.Since(paused).Seconds()-3 {
		t.Fatalf("the window %v s is shorter than the pause (%s)", s2.RPOSeconds, time.Since(paused))
	}

	// nodetool (gossip's failure detector) gets there later; then both agree.
	took = labtest.Eventually(t, 90*time.Second, "nodetool on dc-east shows 127.0.0.2 DN", func(context.Context) bool {
		return nodetoolWestDown.MatchString(l.Nodetool(t, "east", "status"))
	})
	s, _ = eastToWest()
	if up, _ := westNodeUp(s); up {
		t.Fatal("nodetool says DN, regionsync says up")
	}
	t.Logf("nodetool status said DN %s after SIGSTOP (regionsync: %s)", (took + 3*time.Second).Round(time.Second), check(s, "local_quorum").Result)

	l.Resume(t, "cassandra-west")
	resumed = true
	took = labtest.Eventually(t, 90*time.Second, "healthy again with hints drained", healthy)
	stopWrites()
	t.Logf("healthy again (LOCAL_QUORUM served, no hint files for dc-west) %s after SIGCONT", took.Round(time.Millisecond))
	labtest.Eventually(t, 60*time.Second, "nodetool on dc-east shows 127.0.0.2 UN", func(context.Context) bool {
		return nodetoolWestUp.MatchString(l.Nodetool(t, "east", "status"))
	})
	s, _ = eastToWest()
	if up, _ := westNodeUp(s); !up {
		t.Fatal("nodetool says UN, regionsync says down")
	}
	// Hints drain: every row acknowledged in dc-east reaches dc-west (a
	// file being delivered no longer shows in pending_hints, so "no files"
	// alone does not prove it).
	west := l.Cassandra(t, "127.0.0.2", "dc-west")
	var n int64
	took = labtest.Eventually(t, 90*time.Second, "every acknowledged row on dc-west", func(ctx context.Context) bool {
		return west.Query(fmt.Sprintf("SELECT count(*) FROM %s.t", ks)).Consistency(gocql.LocalOne).ScanContext(ctx, &n) == nil && n >= written.Load()
	})
	s, _ = eastToWest()
	t.Logf("dc-west holds all %d rows acknowledged in dc-east %s after the writes stopped; hint files for dc-west now %d", n, took.Round(time.Millisecond), s.Cassandra.Hints.Files)
	// Writes in the seconds after SIGCONT, before dc-east's gossip saw
	// dc-west up, may be hinted into a new file, which Cassandra flushes
	// and dispatches on its 10 s schedule: regionsync must report it gone
	// once it is.
	took = labtest.Eventually(t, 60*time.Second, "no hint files for dc-west reported", func(context.Context) bool {
		s, _ = eastToWest()
		return s.Cassandra.Hints.Files == 0
	})
	t.Logf("no hint files for dc-west reported %s later", took.Round(time.Millisecond))
}
