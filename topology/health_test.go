package topology

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/regionsync/regionsync/topology/etcdtest"
)

// TestHealthQuorumLossAndRecovery: the monitor sees all members, one
// leader, raft terms and indexes; with two of three members stopped it
// reports the quorum lost, and reachable again when one returns. The
// embedded members stop gracefully, so this is the fast unit version; the
// lab test kills real processes.
func TestHealthQuorumLossAndRecovery(t *testing.T) {
	c := etcdtest.Start(t, 3)
	m, reg := testMetrics()
	h := NewHealthMonitor(c.Client(t), HealthOptions{Region: "east"}, m, testLog())
	start(t, h)
	var hl Health
	eventually(t, 30*time.Second, "quorum reachable, 3 members up with names and one leader", func() bool {
		hl = h.Health()
		if !hl.QuorumReachable || len(hl.Members) != 3 || hl.LeaderName == "" {
			return false
		}
		leaders := 0
		for _, mh := range hl.Members {
			if !mh.Up || !mh.ReadOK || mh.Name == "" || mh.RaftTerm == 0 || mh.RaftIndex == 0 {
				return false
			}
			if mh.IsLeader {
				leaders++
			}
		}
		return leaders == 1
	})
	t.Logf("%s", hl.Summary())
	if n := testutil.ToFloat64(m.quorum.WithLabelValues("east")); n != 1 {
		t.Errorf("quorum gauge %v", n)
	}
	if n := testutil.ToFloat64(m.hasLeader.WithLabelValues("east")); n != 1 {
		t.Errorf("has_leader gauge %v", n)
	}
	for _, ep := range c.Endpoints {
		if n := testutil.ToFloat64(m.memberUp.WithLabelValues("east", ep)); n != 1 {
			t.Errorf("member_up{%s} = %v", ep, n)
		}
	}
	if n, err := testutil.GatherAndCount(reg, "regionsync_etcd_endpoint_latency_seconds"); err != nil || n != 6 {
		t.Errorf("latency series: %d %v, want 6 (3 endpoints × status, read)", n, err)
	}

	// A watcher pinned to member 0, whose watch must end (WithRequireLeader)
	// once member 0 has no leader.
	prefix := uniquePrefix(t)
	w := NewRegionWatcher(c.Client(t, c.Endpoints[0]), prefix, WatchOptions{Region: "east"}, m, testLog())
	start(t, w)
	eventually(t, 30*time.Second, "the watcher read the prefix", func() bool { _, ok := w.Current(); return ok })

	// Leave member 0 alone.
	c.Stop(t, 1)
	c.Stop(t, 2)
	stopped := time.Now()
	lost := eventually(t, 30*time.Second, "quorum reported lost", func() bool { return !h.Health().QuorumReachable })
	hl = h.Health()
	t.Logf("quorum lost reported %s after the second member stopped: %s", lost.Round(time.Millisecond), hl.Summary())
	if hl.QuorumError == "" || hl.QuorumSince.Before(stopped) {
		t.Errorf("lost verdict lacks a reason or time: %+v", hl)
	}
	if n := testutil.ToFloat64(m.quorum.WithLabelValues("east")); n != 0 {
		t.Errorf("quorum gauge %v after the loss", n)
	}
	up := 0
	for _, mh := range hl.Members {
		if mh.Up {
			up++
		}
	}
	if up != 1 {
		t.Errorf("%d members up, want 1: %+v", up, hl.Members)
	}

	eventually(t, 30*time.Second, "the watch ended for lack of a leader", func() bool {
		return testutil.ToFloat64(m.restarts.WithLabelValues("east", "regions", "no_leader")) >= 1
	})

	c.Restart(t, 1) // returns once member 1 is ready, which needs the quorum back
	back := eventually(t, 30*time.Second, "quorum reported reachable", func() bool { return h.Health().QuorumReachable })
	t.Logf("quorum reachable reported %s after member 1 was ready again: %s", back.Round(time.Millisecond), h.Health().Summary())

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cli := c.Client(t)
	if _, err := cli.Put(ctx, NewKeys(prefix).Region("after"), specJSON(t, spec("after", RolePrimary))); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "the watcher follows again", func() bool {
		s, _ := w.Current()
		_, ok := s.Items["after"]
		return ok
	})

	// One-shot check, as `topology show` does it.
	once := CheckHealth(ctx, c.Client(t), "west", time.Second, nil, nil)
	if !once.QuorumReachable || len(once.Members) != 3 || once.Observer != "west" {
		t.Errorf("CheckHealth: %s %+v", once.Summary(), once)
	}
}
