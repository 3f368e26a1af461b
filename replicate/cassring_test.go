package replicate

import (
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/regionsync/regionsync/internal/config"
)

func testRing(t *testing.T) *ring {
	t.Helper()
	r, err := newRing([]ringNode{
		{HostID: "a", DC: "east", Rack: "r1", Tokens: []string{"0"}},
		{HostID: "b", DC: "east", Rack: "r1", Tokens: []string{"10"}},
		{HostID: "c", DC: "east", Rack: "r2", Tokens: []string{"20"}},
		{HostID: "d", DC: "east", Rack: "r2", Tokens: []string{"30"}},
		{HostID: "w1", DC: "west", Rack: "r1", Tokens: []string{"-5"}},
		{HostID: "w2", DC: "west", Rack: "r1", Tokens: []string{"15"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// NetworkTopologyStrategy places one replica per rack first, then the
// nodes it skipped for a repeated rack, in ring order.
func TestRingReplicasNTS(t *testing.T) {
	r := testRing(t)
	names := func(idx []int) []string {
		var out []string
		for _, i := range idx {
			out = append(out, r.nodes[i].HostID)
		}
		return out
	}
	// Ring order: w1(-5) a(0) b(10) w2(15) c(20) d(30).
	cases := []struct {
		rng  int
		dc   string
		rf   int
		want []string
	}{
		{1, "east", 2, []string{"a", "c"}}, // range (-5,0]: a r1, b skipped (r1), c r2
		{2, "east", 2, []string{"b", "c"}},
		{4, "east", 2, []string{"c", "a"}}, // c r2, d skipped (r2), wrap: a r1
		{5, "east", 2, []string{"d", "a"}},
		{1, "east", 3, []string{"a", "c", "b"}}, // racks done: skipped b fills
		{1, "east", 9, []string{"a", "c", "b", "d"}},
		{0, "west", 1, []string{"w1"}},
		{2, "west", 1, []string{"w2"}},
		{2, "west", 0, nil},
	}
	for _, c := range cases {
		if got := names(r.replicas(c.rng, c.dc, c.rf)); !slices.Equal(got, c.want) {
			t.Errorf("range %d dc %s rf %d: replicas %v, want %v", c.rng, c.dc, c.rf, got, c.want)
		}
	}
}

func TestRingAvailability(t *testing.T) {
	r := testRing(t)
	up := map[string]bool{"a": true, "b": true, "c": true, "w1": true}
	a := r.availability("ks", "east", 2, up) // quorum 2: d down breaks ranges replicated on d
	if a.Ranges != 6 || a.OneUnavailable != 0 {
		t.Fatalf("east rf2: %+v", a)
	}
	// Replica sets per range: (w1→a,c) (a→a,c) (b→b,c) (w2→c,a) (c→c,a) (d→d,a).
	if a.QuorumUnavailable != 1 {
		t.Fatalf("east rf2 with d down: %d ranges without quorum, want 1", a.QuorumUnavailable)
	}
	w := r.availability("ks", "west", 1, up) // w2 down: ranges owned by w2 in west
	if w.QuorumUnavailable != w.OneUnavailable || w.OneUnavailable == 0 || w.OneUnavailable == w.Ranges {
		t.Fatalf("west rf1 with w2 down: %+v", w)
	}
	if z := r.availability("ks", "west", 0, up); z.OneUnavailable != z.Ranges {
		t.Fatalf("rf 0 must leave every range unavailable: %+v", z)
	}
	if _, err := newRing([]ringNode{{HostID: "x", Tokens: []string{"0x1f"}}}); err == nil {
		t.Fatal("a non-integer token must be an error")
	}
}

func TestParseReplication(t *testing.T) {
	m, err := parseReplication(map[string]string{"class": "org.apache.cassandra.locator.NetworkTopologyStrategy", "dc-east": "3", "dc-west": "3/1"})
	if err != nil || m["dc-east"] != 3 || m["dc-west"] != 3 {
		t.Fatalf("got %v, %v", m, err)
	}
	if _, err := parseReplication(map[string]string{"class": "org.apache.cassandra.locator.SimpleStrategy", "replication_factor": "3"}); err == nil {
		t.Fatal("SimpleStrategy must be reported: it is not DC-aware")
	}
}

// A pair's status: the target DC's required keyspace without LOCAL_QUORUM
// fails, the window grows with the time a target node has been down, and
// the hints the source holds count.
func TestCassandraPairStatus(t *testing.T) {
	r, err := newRing([]ringNode{
		{HostID: "e1", DC: "dc-east", Rack: "rack1", Tokens: []string{"-100"}},
		{HostID: "w1", DC: "dc-west", Rack: "rack1", Tokens: []string{"0"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	budgets := config.Budgets{RPOBudget: config.Duration(30 * time.Second), MaxPendingHints: 100, RequireLocalQuorum: []string{"pay"},
		MaxSinceRepair: config.Duration(time.Hour)}
	c, err := NewCassandra(CassandraOptions{Budgets: func(string) config.Budgets { return budgets }}, prometheus.NewRegistry(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	down := now.Add(-12 * time.Second)
	east := CassandraDC{Region: "east", DC: "dc-east", Keyspaces: []string{"pay"}}
	west := CassandraDC{Region: "west", DC: "dc-west", Keyspaces: []string{"pay"}}
	sv := dcView{nodes: []NodeFigures{{HostID: "e1", Up: true, SchemaVersion: "v1"}},
		hints: map[string]*HintFigures{"dc-west": {Files: 1, Bytes: UnknownFigure(), OldestAgeSeconds: 9, HostsAsked: 1}}}
	dv := dcView{nodes: []NodeFigures{{HostID: "w1", Up: false, DownSince: &down, Reason: "probe failed"}}}
	c.dcs = []*dcSession{{dc: east}, {dc: west}}
	w := c.merge([]dcView{sv, dv})
	w.ring, w.ks = r, map[string]map[string]int{"pay": {"dc-east": 1, "dc-west": 1}}
	c.repair.last["pay"] = now.Add(-time.Minute)
	s := c.pairStatus(east, west, sv, dv, w, now)
	if s.Result() != Fail {
		t.Fatalf("status %s, want fail: %+v", s.Result(), s.Checks)
	}
	got := map[string]Check{}
	for _, ch := range s.Checks {
		got[ch.Name] = ch
	}
	if ch := got["local_quorum"]; ch.Result != Fail || ch.Value != 2 { // w1 holds both ranges in dc-west
		t.Errorf("local_quorum: %+v", ch)
	}
	if ch := got["since_repair"]; ch.Result != Pass {
		t.Errorf("since_repair: %+v", ch)
	}
	if float64(s.RPOSeconds) < 12 || float64(s.RPOSeconds) > 13 {
		t.Errorf("rpo %v, want the 12 s the target node has been down", s.RPOSeconds)
	}
	if ch := got["schema_agreement"]; ch.Result != Pass {
		t.Errorf("schema_agreement with one answering node: %+v", ch)
	}
	// Reverse pair: east is up, so LOCAL_QUORUM holds there; no hints for east.
	rev := c.pairStatus(west, east, dv, sv, w, now)
	for _, ch := range rev.Checks {
		if ch.Name == "local_quorum" && ch.Result != Pass {
			t.Errorf("west→east local_quorum: %+v", ch)
		}
	}
	// Never repaired fails with a reason.
	c.repair.last["pay"] = time.Time{}
	s = c.pairStatus(east, west, sv, dv, w, now)
	for _, ch := range s.Checks {
		if ch.Name == "since_repair" && (ch.Result != Fail || ch.Reason == "") {
			t.Errorf("never repaired: %+v", ch)
		}
	}
}
