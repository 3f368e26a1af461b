package topology

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/regionsync/regionsync/topology/etcdtest"
)

// leaderProbe is a leader task that records how many terms run at once
// across all members sharing it, and which member leads.
type leaderProbe struct {
	running, maxRunning atomic.Int32
	mu                  sync.Mutex
	current             string
	terms               []string
}

func (p *leaderProbe) task(id string) LeaderFunc {
	return func(ctx context.Context, l *Leader) error {
		n := p.running.Add(1)
		defer p.running.Add(-1)
		for {
			old := p.maxRunning.Load()
			if n <= old || p.maxRunning.CompareAndSwap(old, n) {
				break
			}
		}
		p.mu.Lock()
		p.current = id
		p.terms = append(p.terms, id)
		p.mu.Unlock()
		<-ctx.Done()
		p.mu.Lock()
		if p.current == id {
			p.current = ""
		}
		p.mu.Unlock()
		return nil
	}
}

func (p *leaderProbe) leader() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.current
}

func newMember(t *testing.T, cli *clientv3.Client, prefix, region, id string, m *Metrics) *Member {
	t.Helper()
	mb, err := NewMember(cli, MemberOptions{Prefix: prefix, Region: region, WorkerID: id, SessionTTL: 2 * time.Second}, m, testLog())
	if err != nil {
		t.Fatal(err)
	}
	return mb
}

// TestElectionOneLeader: of two candidates exactly one leads and runs the
// leader-only work; when it stops, the other takes over at once (the
// stopping leader resigns and revokes its lease), and never do two terms
// overlap.
func TestElectionOneLeader(t *testing.T) {
	c := etcdtest.Start(t, 1)
	prefix := uniquePrefix(t)
	m, _ := testMetrics()
	probe := &leaderProbe{}
	a := newMember(t, c.Client(t), prefix, "east", "a", m)
	b := newMember(t, c.Client(t), prefix, "east", "b", m)
	a.AddLeaderTask("probe", probe.task("a"))
	b.AddLeaderTask("probe", probe.task("b"))
	stopA := start(t, a)
	eventually(t, 20*time.Second, "a leads", func() bool { return probe.leader() == "a" })
	stopB := start(t, b)
	cli := c.Client(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	eventually(t, 20*time.Second, "both registered and campaigning", func() bool {
		topo, err := Show(ctx, cli, prefix, ShowOptions{NoHealth: true})
		return err == nil && len(topo.Workers) == 2 && len(topo.Leaders) == 1 && topo.Leaders[0].Candidates == 2
	})
	topo, _ := Show(ctx, cli, prefix, ShowOptions{NoHealth: true})
	if l, err := topo.Leader("east"); err != nil || l.Worker != "a" {
		t.Fatalf("etcd says the leader is %+v (%v), want a", l, err)
	}
	if !a.IsLeader() || b.IsLeader() {
		t.Fatalf("IsLeader: a %v, b %v", a.IsLeader(), b.IsLeader())
	}
	if n := testutil.ToFloat64(m.isLeader.WithLabelValues("east", "a")); n != 1 {
		t.Errorf("leader gauge of a: %v", n)
	}

	stopA()
	// A stopped member has revoked its lease before Run returned: its keys
	// are gone now, not a TTL later.
	topo, _ = Show(ctx, cli, prefix, ShowOptions{NoHealth: true})
	if len(topo.Workers) != 1 || topo.Workers[0].ID != "b" || len(topo.Leaders) != 1 || topo.Leaders[0].Candidates != 1 {
		t.Errorf("right after a stopped: workers %+v, leaders %+v; a's keys should be revoked", topo.Workers, topo.Leaders)
	}
	took := eventually(t, 20*time.Second, "b takes over", func() bool { return probe.leader() == "b" })
	t.Logf("b led %s after a's Run returned (graceful: resign + revoke)", took.Round(time.Millisecond))
	if got := probe.maxRunning.Load(); got != 1 {
		t.Errorf("%d leader terms ran at once", got)
	}
	stopB()
	if topo, _ = Show(ctx, cli, prefix, ShowOptions{NoHealth: true}); len(topo.Workers) != 0 || len(topo.Leaders) != 0 {
		t.Errorf("keys left after both stopped: %+v", topo)
	}
}

// TestFencing: a leader whose session was revoked behind its back gets
// ErrNotLeader from etcd on a fenced write (the fence itself, not the local
// check, refuses it), its leader context ends at once, and it re-registers
// with a new session while the other candidate leads.
func TestFencing(t *testing.T) {
	c := etcdtest.Start(t, 1)
	prefix := uniquePrefix(t)
	keys := NewKeys(prefix)
	m, _ := testMetrics()
	probe := &leaderProbe{}
	a := newMember(t, c.Client(t), prefix, "east", "a", m)
	b := newMember(t, c.Client(t), prefix, "east", "b", m)
	a.AddLeaderTask("probe", probe.task("a"))
	b.AddLeaderTask("probe", probe.task("b"))
	start(t, a)
	eventually(t, 20*time.Second, "a leads", func() bool { return a.Leader() != nil })
	start(t, b)
	cli := c.Client(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	eventually(t, 20*time.Second, "b registered", func() bool {
		r, err := cli.Get(ctx, keys.Worker("east", "b"))
		return err == nil && len(r.Kvs) == 1
	})
	l := a.Leader()
	if _, err := l.Put(ctx, prefix+"fenced/ok", "a"); err != nil {
		t.Fatalf("fenced write while leading: %v", err)
	}
	resp, err := l.Txn(ctx, []clientv3.Cmp{clientv3.Compare(clientv3.Version(prefix+"fenced/ok"), "=", 1)},
		[]clientv3.Op{clientv3.OpPut(prefix+"fenced/txn", "then")}, []clientv3.Op{clientv3.OpPut(prefix+"fenced/txn", "else")})
	if err != nil || !resp.Succeeded {
		t.Fatalf("fenced txn while leading: %+v %v", resp, err)
	}
	oldLease := a.Lease()

	// The lease goes away as if it had expired while a was paused.
	if _, err := cli.Revoke(ctx, oldLease); err != nil {
		t.Fatal(err)
	}
	// The fence alone (no local check) refuses the write.
	_, err = l.do(ctx, clientv3.OpPut(prefix+"fenced/late", "a"), false)
	if !errors.Is(err, ErrNotLeader) {
		t.Fatalf("fenced write after the lease was revoked: %v, want ErrNotLeader", err)
	}
	t.Logf("refused: %v", err)
	if r, _ := cli.Get(ctx, prefix+"fenced/late"); len(r.Kvs) != 0 {
		t.Fatal("the late write happened")
	}
	if n := testutil.ToFloat64(m.fenced.WithLabelValues("east", "a", "etcd")); n != 1 {
		t.Errorf("fenced{where=etcd} = %v, want 1", n)
	}
	select {
	case <-l.Context().Done():
		t.Logf("leader context ended: %v", context.Cause(l.Context()))
	case <-time.After(5 * time.Second):
		t.Fatal("leader context still live 5 s after the lease was revoked")
	}
	if _, err := l.Put(ctx, prefix+"fenced/later", "a"); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("Put with an ended term: %v", err)
	}
	eventually(t, 20*time.Second, "b leads", func() bool { return probe.leader() == "b" })
	eventually(t, 20*time.Second, "a re-registered with a new lease", func() bool {
		r, err := cli.Get(ctx, keys.Worker("east", "a"))
		return err == nil && len(r.Kvs) == 1 && clientv3.LeaseID(r.Kvs[0].Lease) != oldLease && r.Kvs[0].Lease == int64(a.Lease())
	})
	if a.IsLeader() {
		t.Error("a thinks it leads")
	}
	if _, err := l.Put(ctx, prefix+"fenced/later", "a"); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("old handle after re-registration: %v", err)
	}
	if got := probe.maxRunning.Load(); got != 1 {
		t.Errorf("%d leader terms ran at once", got)
	}
	if n := testutil.ToFloat64(m.terms.WithLabelValues("east", "a")); n != 1 {
		t.Errorf("a's terms: %v", n)
	}
}

// TestSessionLossCancelsCampaign: a candidate that is waiting in Campaign
// when its lease disappears stops waiting, registers again with a new lease
// and campaigns with a new election key.
func TestSessionLossCancelsCampaign(t *testing.T) {
	c := etcdtest.Start(t, 1)
	prefix := uniquePrefix(t)
	keys := NewKeys(prefix)
	a := newMember(t, c.Client(t), prefix, "east", "a", nil)
	b := newMember(t, c.Client(t), prefix, "east", "b", nil)
	start(t, a)
	eventually(t, 20*time.Second, "a leads", func() bool { return a.IsLeader() })
	start(t, b)
	cli := c.Client(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	candidateOf := func(lease clientv3.LeaseID) bool {
		r, err := cli.Get(ctx, fmt.Sprintf("%s/%x", keys.Election("east"), lease))
		return err == nil && len(r.Kvs) == 1 && string(r.Kvs[0].Value) == "b"
	}
	var first clientv3.LeaseID
	eventually(t, 20*time.Second, "b campaigns", func() bool {
		first = b.Lease()
		return first != 0 && candidateOf(first)
	})
	if _, err := cli.Revoke(ctx, first); err != nil {
		t.Fatal(err)
	}
	took := eventually(t, 20*time.Second, "b campaigns again under a new lease", func() bool {
		l := b.Lease()
		return l != 0 && l != first && candidateOf(l)
	})
	t.Logf("b campaigned again %s after its lease was revoked", took.Round(time.Millisecond))
	if !a.IsLeader() || b.IsLeader() {
		t.Errorf("leaders: a %v, b %v", a.IsLeader(), b.IsLeader())
	}
}

// TestLeaderTaskFailureResigns: a task error ends the term and the worker
// resigns, so the other candidate leads.
func TestLeaderTaskFailureResigns(t *testing.T) {
	c := etcdtest.Start(t, 1)
	prefix := uniquePrefix(t)
	m, _ := testMetrics()
	probe := &leaderProbe{}
	fail := make(chan struct{})
	a := newMember(t, c.Client(t), prefix, "east", "a", m)
	a.AddLeaderTask("flaky", func(ctx context.Context, l *Leader) error {
		select {
		case <-fail:
			return errors.New("disk full")
		case <-ctx.Done():
			return nil
		}
	})
	a.AddLeaderTask("probe", probe.task("a"))
	b := newMember(t, c.Client(t), prefix, "east", "b", m)
	b.AddLeaderTask("probe", probe.task("b"))
	start(t, a)
	eventually(t, 20*time.Second, "a leads", func() bool { return probe.leader() == "a" })
	start(t, b)
	cli := c.Client(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	eventually(t, 20*time.Second, "b campaigns", func() bool {
		topo, err := Show(ctx, cli, prefix, ShowOptions{NoHealth: true})
		return err == nil && len(topo.Leaders) == 1 && topo.Leaders[0].Candidates == 2
	})
	l := a.Leader()
	close(fail)
	eventually(t, 20*time.Second, "b leads after a's task failed", func() bool { return probe.leader() == "b" })
	if cause := context.Cause(l.Context()); !errors.Is(cause, errTaskFailed) {
		t.Errorf("cause: %v", cause)
	}
	if n := testutil.ToFloat64(m.taskErrors.WithLabelValues("east", "a", "flaky")); n != 1 {
		t.Errorf("task errors: %v", n)
	}
	if got := probe.maxRunning.Load(); got != 1 {
		t.Errorf("%d leader terms ran at once", got)
	}
}
