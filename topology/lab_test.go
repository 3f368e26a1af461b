//go:build lab

package topology

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/regionsync/regionsync/deploy/lab/labtest"
)

// Acceptance tests of issue 5 on the lab's real 3-member etcd (etcd-east,
// etcd-west, etcd-witness on 12379/22379/31379). Workers are separate
// processes (this test binary re-executed, see worker_test.go) so that
// kill -9 and SIGSTOP hit a real process.

// labTTL is the workers' session TTL in these tests; etcd's smallest TTL
// with the lab's 1 s election timeout is 2 s.
const labTTL = 3 * time.Second

// labPrefix is a key prefix of one test run; its keys are deleted at the end.
func labPrefix(t *testing.T, cli *clientv3.Client) string {
	p := fmt.Sprintf("/regionsync-labtest/%s-%d/", t.Name(), time.Now().UnixNano())
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := cli.Delete(ctx, p, clientv3.WithPrefix()); err != nil {
			t.Logf("cleanup of %s: %v", p, err)
		}
	})
	return p
}

// restoreEtcd starts every etcd member that is down and waits until all
// three answer with a leader; registered as cleanup by tests that kill
// members, so the lab is left as found.
func restoreEtcd(t *testing.T, l *labtest.Lab) {
	t.Helper()
	out, _ := exec.Command(filepath.Join(l.Dir, "lab.sh"), "status").Output()
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && strings.HasPrefix(f[0], "etcd-") && f[1] != "up" {
			if f[1] == "paused" {
				l.Resume(t, f[0])
			} else {
				t.Logf("cleanup: starting %s", f[0])
				l.Start(t, f[0])
			}
		}
	}
	cli := l.Etcd(t)
	labtest.Eventually(t, 90*time.Second, "all three etcd members answer with a leader", func(ctx context.Context) bool {
		for _, ep := range l.EtcdEndpoints {
			st, err := cli.Status(ctx, ep)
			if err != nil || st.Leader == 0 {
				return false
			}
		}
		return true
	})
}

// workerProc is one worker subprocess and the events it printed.
type workerProc struct {
	id     string
	cmd    *exec.Cmd
	mu     sync.Mutex
	events []workerEvent
	done   chan struct{}
}

func startWorker(t *testing.T, l *labtest.Lab, prefix, region, id string, raw bool) *workerProc {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	rawVal := "0"
	if raw {
		rawVal = "1"
	}
	cmd.Env = append(os.Environ(), workerEnv+"=1", workerEndpointsEnv+"="+strings.Join(l.EtcdEndpoints, ","),
		workerPrefixEnv+"="+prefix, workerRegionEnv+"="+region, workerIDEnv+"="+id, workerTTLEnv+"="+labTTL.String(),
		workerRawEnv+"="+rawVal)
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start worker %s: %v", id, err)
	}
	w := &workerProc{id: id, cmd: cmd, done: make(chan struct{})}
	go func() {
		defer close(w.done)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			var e workerEvent
			if json.Unmarshal(sc.Bytes(), &e) == nil && e.Event != "" {
				w.mu.Lock()
				w.events = append(w.events, e)
				w.mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGCONT)
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-w.done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-w.done
		}
		_ = cmd.Wait()
	})
	return w
}

func (w *workerProc) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := w.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signal %v to worker %s: %v", sig, w.id, err)
	}
}

func (w *workerProc) eventsOf(kind string) []workerEvent {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []workerEvent
	for _, e := range w.events {
		if e.Event == kind {
			out = append(out, e)
		}
	}
	return out
}

// beat is one leader-only write seen in etcd.
type beat struct {
	worker string
	rev    int64
	seen   time.Time // when the test's watch delivered it
}

// beatLog records every beat write of a region from a revision on.
type beatLog struct {
	mu    sync.Mutex
	beats []beat
}

func watchBeats(t *testing.T, cli *clientv3.Client, prefix, region string, from int64) *beatLog {
	b := &beatLog{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for resp := range cli.Watch(ctx, beatKey(prefix, region), clientv3.WithRev(from)) {
			now := time.Now()
			for _, ev := range resp.Events {
				if ev.Type != clientv3.EventTypePut {
					continue
				}
				id, _, _ := strings.Cut(string(ev.Kv.Value), " ")
				b.mu.Lock()
				b.beats = append(b.beats, beat{worker: id, rev: ev.Kv.ModRevision, seen: now})
				b.mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	return b
}

func (b *beatLog) snapshot() []beat {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]beat(nil), b.beats...)
}

// writers lists who wrote beats, in order of first write.
func writers(bs []beat) []string {
	var out []string
	seen := map[string]bool{}
	for _, b := range bs {
		if !seen[b.worker] {
			seen[b.worker] = true
			out = append(out, b.worker)
		}
	}
	return out
}

func currentRev(t *testing.T, cli *clientv3.Client) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := cli.Get(ctx, "/regionsync-labtest/rev")
	if err != nil {
		t.Fatal(err)
	}
	return r.Header.Revision
}

// TestLabOneLeaderPerRegionAndKillTakeover: two worker processes per region
// (east, west); exactly one leads each region and only it performs
// leader-only writes; kill -9 of a leader gives the other worker the lead
// within the session TTL + 1 s, and the new leader writes nothing before
// the old one's election key is gone.
func TestLabOneLeaderPerRegionAndKillTakeover(t *testing.T) {
	l := labtest.Require(t)
	cli := l.Etcd(t)
	prefix := labPrefix(t, cli)
	from := currentRev(t, cli)
	logs := map[string]*beatLog{"east": watchBeats(t, cli, prefix, "east", from), "west": watchBeats(t, cli, prefix, "west", from)}
	procs := map[string]*workerProc{}
	for _, r := range []string{"east", "west"} {
		for i := 1; i <= 2; i++ {
			id := fmt.Sprintf("%s-%d", r, i)
			procs[id] = startWorker(t, l, prefix, r, id, false)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var topo Topology
	labtest.Eventually(t, 60*time.Second, "4 workers registered, 2 candidates and a leader per region", func(context.Context) bool {
		var err error
		topo, err = Show(ctx, cli, prefix, ShowOptions{NoHealth: true})
		if err != nil || len(topo.Workers) != 4 || len(topo.Leaders) != 2 {
			return false
		}
		for _, ld := range topo.Leaders {
			if ld.Candidates != 2 {
				return false
			}
		}
		return true
	})
	// Let the leaders write for a while, then check that each region's beats
	// come from exactly its elected leader, and no other worker ever led.
	time.Sleep(2 * time.Second) // an observation window, not a wait for a condition
	topo, _ = Show(ctx, cli, prefix, ShowOptions{NoHealth: true})
	for _, r := range []string{"east", "west"} {
		ld, err := topo.Leader(r)
		if err != nil {
			t.Fatal(err)
		}
		ws := writers(logs[r].snapshot())
		if len(ws) != 1 || ws[0] != ld.Worker {
			t.Fatalf("region %s: beats written by %v; elected leader %s", r, ws, ld.Worker)
		}
		for id, p := range procs {
			if strings.HasPrefix(id, r+"-") && id != ld.Worker && len(p.eventsOf("leader")) > 0 {
				t.Fatalf("region %s: %s also led", r, id)
			}
		}
		t.Logf("region %s: leader %s, %d beats, candidates %d", r, ld.Worker, len(logs[r].snapshot()), ld.Candidates)
	}

	// kill -9 each region's leader in turn.
	for _, r := range []string{"east", "west"} {
		ld, _ := topo.Leader(r)
		old := procs[ld.Worker]
		other := r + "-1"
		if ld.Worker == other {
			other = r + "-2"
		}
		before := len(logs[r].snapshot())
		killed := time.Now()
		old.signal(t, syscall.SIGKILL)
		<-old.done
		var first beat
		took := labtest.Eventually(t, 30*time.Second, r+": the other worker writes as leader", func(context.Context) bool {
			for _, b := range logs[r].snapshot()[before:] {
				if b.worker == other {
					first = b
					return true
				}
			}
			return false
		})
		handover := first.seen.Sub(killed)
		// The old election key's deletion (lease expiry) precedes the new
		// leader's first write in etcd's history.
		gctx, gcancel := context.WithTimeout(ctx, 10*time.Second)
		hist, err := cli.Get(gctx, ld.Key, clientv3.WithRev(first.rev-1))
		gcancel()
		if err != nil {
			t.Fatalf("read %s at revision %d: %v", ld.Key, first.rev-1, err)
		}
		if len(hist.Kvs) != 0 {
			t.Fatalf("%s: %s wrote at revision %d while %s's election key still existed", r, other, first.rev, ld.Worker)
		}
		for _, b := range logs[r].snapshot()[before:] {
			if b.worker == ld.Worker && b.seen.After(killed.Add(100*time.Millisecond)) {
				t.Fatalf("%s: killed leader %s still wrote at revision %d", r, ld.Worker, b.rev)
			}
		}
		t.Logf("region %s: kill -9 of leader %s → %s's first leader-only write %s later (budget TTL %s + 1 s; polled %s)",
			r, ld.Worker, other, handover.Round(time.Millisecond), labTTL, took.Round(time.Millisecond))
		if handover > labTTL+time.Second {
			t.Errorf("region %s: takeover took %s, more than TTL + 1 s = %s", r, handover, labTTL+time.Second)
		}
	}
}

// TestLabFencingAfterSIGSTOP: a leader stopped (SIGSTOP) for longer than its
// TTL loses the lead; after SIGCONT its first action is a leader-only write
// (sent without the local check, so only etcd's fence can refuse it), and
// etcd refuses it: no write of the old leader lands after the pause.
func TestLabFencingAfterSIGSTOP(t *testing.T) {
	l := labtest.Require(t)
	cli := l.Etcd(t)
	prefix := labPrefix(t, cli)
	from := currentRev(t, cli)
	beats := watchBeats(t, cli, prefix, "east", from)
	a := startWorker(t, l, prefix, "east", "east-a", true)
	labtest.Eventually(t, 60*time.Second, "east-a leads and writes", func(context.Context) bool {
		ws := writers(beats.snapshot())
		return len(ws) == 1 && ws[0] == "east-a"
	})
	b := startWorker(t, l, prefix, "east", "east-b", true)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	labtest.Eventually(t, 60*time.Second, "east-b campaigns", func(context.Context) bool {
		topo, err := Show(ctx, cli, prefix, ShowOptions{NoHealth: true})
		return err == nil && len(topo.Leaders) == 1 && topo.Leaders[0].Candidates == 2 && topo.Leaders[0].Worker == "east-a"
	})

	a.signal(t, syscall.SIGSTOP)
	paused := time.Now()
	pauseRev := currentRev(t, cli)
	took := labtest.Eventually(t, 30*time.Second, "east-b takes over while east-a is stopped", func(context.Context) bool {
		for _, bt := range beats.snapshot() {
			if bt.worker == "east-b" {
				return true
			}
		}
		return false
	})
	t.Logf("east-b wrote as leader %s after east-a was stopped", took.Round(time.Millisecond))
	if wait := labTTL + 2*time.Second - time.Since(paused); wait > 0 {
		time.Sleep(wait) // keep east-a stopped well past its TTL
	}
	stoppedFor := time.Since(paused)
	a.signal(t, syscall.SIGCONT)
	resumed := time.Now()
	var fenced []workerEvent
	labtest.Eventually(t, 30*time.Second, "east-a reports its term over", func(context.Context) bool {
		fenced = a.eventsOf("fenced")
		return len(a.eventsOf("term_end")) > 0
	})
	end := a.eventsOf("term_end")[0]
	// Give any late write time to show up in the watch before judging.
	labtest.Eventually(t, 30*time.Second, "east-b keeps writing after east-a resumed", func(context.Context) bool {
		bs := beats.snapshot()
		return len(bs) > 0 && bs[len(bs)-1].worker == "east-b" && bs[len(bs)-1].seen.After(resumed.Add(time.Second))
	})
	for _, bt := range beats.snapshot() {
		if bt.worker == "east-a" && bt.rev > pauseRev {
			t.Fatalf("east-a wrote at revision %d, after it was paused at revision %d", bt.rev, pauseRev)
		}
	}
	etcdRefused := 0
	for _, e := range fenced {
		if e.Where == "etcd" {
			etcdRefused++
		}
	}
	t.Logf("east-a stopped %s (TTL %s); after SIGCONT: %d leader-only write(s) attempted and refused by etcd's fence (first %s after SIGCONT: %s); term ended %s after SIGCONT (cause: %s)",
		stoppedFor.Round(time.Millisecond), labTTL, etcdRefused, firstAfter(fenced, resumed), firstDetail(fenced),
		end.At.Sub(resumed).Round(time.Millisecond), end.Detail)
	if etcdRefused == 0 {
		t.Errorf("east-a attempted no write after resuming, so the fence was not exercised (events %+v)", a.eventsOf("fenced"))
	}
	// east-a registers again and campaigns behind east-b.
	labtest.Eventually(t, 30*time.Second, "east-a registered again as a candidate", func(context.Context) bool {
		topo, err := Show(ctx, cli, prefix, ShowOptions{NoHealth: true})
		return err == nil && len(topo.Workers) == 2 && len(topo.Leaders) == 1 && topo.Leaders[0].Worker == "east-b" && topo.Leaders[0].Candidates == 2
	})
	_ = b
}

func firstAfter(es []workerEvent, t0 time.Time) string {
	if len(es) == 0 {
		return "-"
	}
	return es[0].At.Sub(t0).Round(time.Millisecond).String()
}

func firstDetail(es []workerEvent) string {
	if len(es) == 0 {
		return "-"
	}
	return es[0].Detail
}

// TestLabWatcherSurvivesCompactionMemberKillAndLeaderChange: two watchers,
// one on all endpoints and one that reaches only etcd-west, through the
// toxiproxy link (etcd-west, 127.0.0.1:30379), follow a prefix under
// continuous writes while
//  1. the link is cut, the history the linked watcher needs is compacted,
//     and the link restored (it must re-read the prefix: a member that is
//     up and compacted cannot resume it);
//  2. etcd-west is killed and started again;
//  3. the etcd leader is moved to another member;
//
// and both end equal to a fresh read.
func TestLabWatcherSurvivesCompactionMemberKillAndLeaderChange(t *testing.T) {
	l := labtest.Require(t)
	t.Cleanup(func() { restoreEtcd(t, l) })
	t.Cleanup(func() { l.RestoreLink(t, "etcd-west") })
	east, witness := l.EtcdEndpoints[0], l.EtcdEndpoints[2]
	writer := l.Etcd(t, east, witness)
	prefix := labPrefix(t, writer)
	keys := NewKeys(prefix)
	m, _ := testMetrics()
	wAll := NewRegionWatcher(l.Etcd(t), prefix, WatchOptions{Name: "all", Region: "east"}, m, testLog())
	wLink := NewRegionWatcher(l.Etcd(t, l.ProxyEtcdWest), prefix, WatchOptions{Name: "west-link", Region: "east"}, m, testLog())
	start(t, wAll)
	start(t, wLink)
	eventually(t, 30*time.Second, "both watchers read the prefix", func() bool {
		_, ok1 := wAll.Current()
		_, ok2 := wLink.Current()
		return ok1 && ok2
	})

	// Continuous writes: puts, deletes and malformed values over 60 keys.
	wctx, stopWrites := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var writes, failures int
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; wctx.Err() == nil; i++ {
			name := fmt.Sprintf("r%d", i%60)
			ctx, cancel := context.WithTimeout(wctx, 5*time.Second)
			var err error
			switch {
			case i%17 == 16:
				_, err = writer.Put(ctx, keys.Region(name), `{"schema_version":1`)
			case i%7 == 6:
				_, err = writer.Delete(ctx, keys.Region(name))
			default:
				s := spec(name, []Role{RolePrimary, RoleSecondary, RoleWitness}[i%3])
				s.Description = fmt.Sprintf("write %d", i)
				_, err = writer.Put(ctx, keys.Region(name), specJSON(t, s))
			}
			cancel()
			if err != nil {
				failures++
				time.Sleep(50 * time.Millisecond)
				continue
			}
			writes++
			time.Sleep(5 * time.Millisecond)
		}
	}()
	defer func() { stopWrites(); wg.Wait() }()
	time.Sleep(time.Second) // writes under way before the faults
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	// 1. Cut the linked watcher off, compact what it has not seen, restore.
	l.CutLink(t, "etcd-west")
	cut := time.Now()
	time.Sleep(2 * time.Second) // writes it cannot see
	seen, _ := wLink.Current()
	compacted := currentRev(t, writer)
	if _, err := writer.Compact(ctx, compacted, clientv3.WithCompactPhysical()); err != nil {
		t.Fatalf("compact at %d: %v", compacted, err)
	}
	l.RestoreLink(t, "etcd-west")
	restored := time.Now()
	rebuilt := eventually(t, 90*time.Second, "the linked watcher re-read the prefix after the compaction", func() bool {
		return testutil.ToFloat64(m.resyncs.WithLabelValues("east", "west-link", "compacted")) >= 1
	})
	t.Logf("link cut for %s; the linked watcher had revision %d, history compacted at %d; it re-read the prefix %s after the link was restored",
		restored.Sub(cut).Round(time.Millisecond), seen.Revision, compacted, rebuilt.Round(time.Millisecond))

	// 2. Kill etcd-west and start it again.
	l.Kill(t, "etcd-west")
	killed := time.Now()
	time.Sleep(2 * time.Second) // writes while it is down
	l.Start(t, "etcd-west")
	t.Logf("etcd-west killed and started again after %s", time.Since(killed).Round(time.Millisecond))

	// 3. Move the etcd leader to another member.
	var leaderID, targetID uint64
	var leaderEP string
	labtest.Eventually(t, 90*time.Second, "all members answer with one leader", func(ctx context.Context) bool {
		ids := map[string]uint64{}
		leaderID, leaderEP = 0, ""
		for _, ep := range l.EtcdEndpoints {
			st, err := writer.Status(ctx, ep)
			if err != nil || st.Leader == 0 || (leaderID != 0 && st.Leader != leaderID) {
				return false
			}
			leaderID, ids[ep] = st.Leader, st.Header.MemberId
		}
		for ep, id := range ids {
			if id == leaderID {
				leaderEP = ep
			} else {
				targetID = id
			}
		}
		return leaderEP != ""
	})
	moved := time.Now()
	if _, err := l.Etcd(t, leaderEP).MoveLeader(ctx, targetID); err != nil {
		t.Fatalf("move the etcd leader from %s to %x: %v", leaderEP, targetID, err)
	}
	labtest.Eventually(t, 30*time.Second, "the new leader is in place", func(ctx context.Context) bool {
		st, err := writer.Status(ctx, east)
		return err == nil && st.Leader == targetID
	})
	t.Logf("etcd leader moved from %x (%s) to %x in %s", leaderID, leaderEP, targetID, time.Since(moved).Round(time.Millisecond))
	time.Sleep(2 * time.Second) // writes under the new leader

	stopWrites()
	wg.Wait()
	final := currentRev(t, writer)
	for _, w := range []struct {
		name string
		w    *Watcher[RegionSpec]
	}{{"all", wAll}, {"west-link", wLink}} {
		took := eventually(t, 60*time.Second, w.name+" watcher equals a fresh read", func() bool {
			s, _ := w.w.Current()
			ok, _ := sameAsRead(ctx, writer, prefix, s)
			return ok
		})
		s, _ := w.w.Current()
		var restarts []string
		for _, reason := range []string{"no_leader", "closed", "error"} {
			if n := testutil.ToFloat64(m.restarts.WithLabelValues("east", w.name, reason)); n > 0 {
				restarts = append(restarts, fmt.Sprintf("%s=%v", reason, n))
			}
		}
		t.Logf("watcher %s: equal to a fresh read (at revision %d) %s after the writes stopped; snapshot revision %d, %d regions, %d malformed; re-reads after compaction %v; watch restarts %v",
			w.name, final, took.Round(time.Millisecond), s.Revision, len(s.Items), len(s.Errors),
			testutil.ToFloat64(m.resyncs.WithLabelValues("east", w.name, "compacted")), restarts)
	}
	t.Logf("%d writes, %d failed during the faults", writes, failures)
}

// TestLabHealthQuorumLossAndRecovery: with two of three members killed,
// Health reports the quorum lost within 2 s; after one is started again it
// reports it reachable within 2 s.
func TestLabHealthQuorumLossAndRecovery(t *testing.T) {
	l := labtest.Require(t)
	t.Cleanup(func() { restoreEtcd(t, l) })
	m, _ := testMetrics()
	h := NewHealthMonitor(l.Etcd(t), HealthOptions{Region: "east"}, m, testLog())
	start(t, h)
	eventually(t, 30*time.Second, "quorum reachable and 3 members up", func() bool {
		hl := h.Health()
		up := 0
		for _, mh := range hl.Members {
			if mh.Up {
				up++
			}
		}
		return hl.QuorumReachable && up == 3
	})
	t.Logf("before: %s", h.Health().Summary())

	// Ground truth, independent of the monitor: a linearizable read every
	// 50 ms through a client of all endpoints.
	truthCli := l.Etcd(t)
	var tmu sync.Mutex
	var oks []time.Time
	tctx, stopTruth := context.WithCancel(context.Background())
	truthDone := make(chan struct{})
	go func() {
		defer close(truthDone)
		for tctx.Err() == nil {
			ctx, cancel := context.WithTimeout(tctx, 500*time.Millisecond)
			_, err := truthCli.Get(ctx, "/regionsync-labtest/truth")
			cancel()
			if err == nil {
				tmu.Lock()
				oks = append(oks, time.Now())
				tmu.Unlock()
			}
			time.Sleep(50 * time.Millisecond)
		}
	}()
	defer func() { stopTruth(); <-truthDone }()

	// A watcher with WithRequireLeader: its watch must end when the member
	// serving it has no leader, and resume after the recovery.
	wcli := l.Etcd(t)
	prefix := labPrefix(t, wcli)
	w := NewRegionWatcher(wcli, prefix, WatchOptions{Region: "east"}, m, testLog())
	start(t, w)
	eventually(t, 30*time.Second, "the watcher read the prefix", func() bool { _, ok := w.Current(); return ok })

	l.Kill(t, "etcd-west")
	l.Kill(t, "etcd-witness")
	killed := time.Now()
	lost := eventually(t, 30*time.Second, "Health reports the quorum lost", func() bool { return !h.Health().QuorumReachable })
	hl := h.Health()
	t.Logf("quorum lost reported %s after the second kill returned (budget 2 s): %s", lost.Round(time.Millisecond), hl.Summary())
	if lost > 2*time.Second {
		t.Errorf("quorum loss took %s to show, more than 2 s", lost)
	}
	noLeader := eventually(t, 30*time.Second, "the watch ended for lack of a leader", func() bool {
		return testutil.ToFloat64(m.restarts.WithLabelValues("east", "regions", "no_leader")) >= 1
	})
	t.Logf("the watch ended with 'no leader' %s after the quorum loss was reported", noLeader.Round(time.Millisecond))

	l.Start(t, "etcd-west")
	restored := time.Now()
	back := eventually(t, 60*time.Second, "Health reports the quorum reachable", func() bool { return h.Health().QuorumReachable })
	reported := restored.Add(back)
	var truthAt time.Time
	eventually(t, 30*time.Second, "the independent read succeeds again", func() bool {
		tmu.Lock()
		defer tmu.Unlock()
		for _, at := range oks {
			if at.After(killed.Add(lost)) {
				truthAt = at
				return true
			}
		}
		return false
	})
	t.Logf("quorum reachable reported %s after 'lab.sh start etcd-west' returned (budget 2 s); the independent 50 ms read loop first succeeded %s after it, so the monitor lagged it by %s; %s",
		back.Round(time.Millisecond), truthAt.Sub(restored).Round(time.Millisecond), reported.Sub(truthAt).Round(time.Millisecond), h.Health().Summary())
	if back > 2*time.Second {
		t.Errorf("quorum recovery took %s to show, more than 2 s", back)
	}
	if n := testutil.ToFloat64(m.quorum.WithLabelValues("east")); n != 1 {
		t.Errorf("regionsync_etcd_quorum_reachable = %v after recovery", n)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := wcli.Put(ctx, NewKeys(prefix).Region("after"), specJSON(t, spec("after", RolePrimary))); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "the watcher follows again and equals a fresh read", func() bool {
		s, _ := w.Current()
		ok, _ := sameAsRead(ctx, wcli, prefix, s)
		return ok && len(s.Items) == 1
	})
	l.Start(t, "etcd-witness")
}
