package topology

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/regionsync/regionsync/topology/etcdtest"
)

func specJSON(t testing.TB, s RegionSpec) string {
	t.Helper()
	b, err := MarshalRegionSpec(s)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// sameAsRead reports whether a region snapshot equals a fresh linearizable
// read of the registry (items and malformed keys with their revisions), and
// if not, how they differ.
func sameAsRead(ctx context.Context, cli *clientv3.Client, prefix string, s Snapshot[RegionSpec]) (bool, string) {
	keys := NewKeys(prefix)
	fresh, err := read(ctx, cli, keys, 10*time.Second, false)
	if err != nil {
		return false, err.Error()
	}
	want := map[string]RegionSpec{}
	for _, r := range fresh.Regions {
		want[r.Name] = r
	}
	if !reflect.DeepEqual(want, s.Items) {
		return false, fmt.Sprintf("items: snapshot has %d at revision %d, read has %d at %d", len(s.Items), s.Revision, len(want), fresh.Revision)
	}
	var wantErrs, gotErrs []string
	for _, e := range fresh.Errors {
		if strings.HasPrefix(e.Key, keys.Regions()) {
			wantErrs = append(wantErrs, fmt.Sprintf("%s@%d", e.Key, e.Revision))
		}
	}
	for _, e := range s.Errors {
		gotErrs = append(gotErrs, fmt.Sprintf("%s@%d", e.Key, e.Revision))
	}
	if !reflect.DeepEqual(wantErrs, gotErrs) {
		return false, fmt.Sprintf("errors: snapshot %v, read %v", gotErrs, wantErrs)
	}
	return true, ""
}

// TestWatcherMalformedValues: bad JSON, an unknown schema_version and a
// record under the wrong key are reported with key and revision, counted,
// and ignored for their key; the watcher keeps going, and a fixed or deleted
// key leaves the error list.
func TestWatcherMalformedValues(t *testing.T) {
	c := etcdtest.Start(t, 1)
	cli := c.Client(t)
	prefix := uniquePrefix(t)
	keys := NewKeys(prefix)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	put := func(key, val string) int64 {
		resp, err := cli.Put(ctx, key, val)
		if err != nil {
			t.Fatal(err)
		}
		return resp.Header.Revision
	}
	put(keys.Region("east"), specJSON(t, spec("east", RolePrimary)))
	revWest := put(keys.Region("west"), `{"schema_version":1,"name":"west",`)
	m, reg := testMetrics()
	w := NewRegionWatcher(cli, prefix, WatchOptions{Region: "east"}, m, testLog())
	start(t, w)
	revNorth := put(keys.Region("north"), `{"schema_version":2,"name":"north","role":"primary","new_field":1}`)
	revSouth := put(keys.Region("south"), specJSON(t, spec("elsewhere", RoleSecondary)))

	var s Snapshot[RegionSpec]
	eventually(t, 20*time.Second, "three malformed values reported", func() bool {
		s, _ = w.Current()
		return len(s.Errors) == 3
	})
	want := []struct {
		key    string
		rev    int64
		reason error
		detail string
	}{
		{keys.Region("north"), revNorth, ErrUnknownSchemaVersion, "unknown schema_version 2"},
		{keys.Region("south"), revSouth, ErrMalformedValue, `does not match the key's region "south"`},
		{keys.Region("west"), revWest, ErrMalformedValue, "invalid JSON"},
	}
	for i, wnt := range want {
		e := s.Errors[i]
		if e.Key != wnt.key || e.Revision != wnt.rev || !errors.Is(e, wnt.reason) || !strings.Contains(e.Error(), wnt.detail) {
			t.Errorf("error %d: %v (key %s rev %d); want key %s rev %d, %v, %q", i, e, e.Key, e.Revision, wnt.key, wnt.rev, wnt.reason, wnt.detail)
		}
	}
	if len(s.Items) != 1 || s.Items["east"].Role != RolePrimary {
		t.Errorf("items: %+v, want only east", s.Items)
	}
	if n := testutil.ToFloat64(m.malformed.WithLabelValues("east", "regions", "malformed")); n != 2 {
		t.Errorf("malformed counter %v, want 2", n)
	}
	if n := testutil.ToFloat64(m.malformed.WithLabelValues("east", "regions", "schema_version")); n != 1 {
		t.Errorf("schema_version counter %v, want 1", n)
	}
	if n := testutil.ToFloat64(m.malformedKeys.WithLabelValues("east", "regions")); n != 3 {
		t.Errorf("malformed keys gauge %v, want 3", n)
	}
	if _, err := testutil.GatherAndCount(reg, "regionsync_topology_malformed_values_total"); err != nil {
		t.Error(err)
	}

	// A good value that turns bad leaves the items; fixed and deleted keys
	// leave the errors.
	put(keys.Region("east"), "not json")
	put(keys.Region("west"), specJSON(t, spec("west", RoleSecondary)))
	if _, err := cli.Delete(ctx, keys.Region("north")); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "errors follow the fixes", func() bool {
		s, _ = w.Current()
		return len(s.Errors) == 2 && s.Errors[0].Key == keys.Region("east") && s.Errors[1].Key == keys.Region("south") &&
			len(s.Items) == 1 && s.Items["west"].Role == RoleSecondary
	})
	if ok, diff := sameAsRead(ctx, cli, prefix, s); !ok {
		t.Errorf("final snapshot differs from a fresh read: %s", diff)
	}
}

// TestWatcherCoalescesBursts: 1,000 writes (puts, deletes and a few
// malformed values from 8 concurrent writers) give a handful of snapshots,
// and the last one equals a fresh read.
func TestWatcherCoalescesBursts(t *testing.T) {
	c := etcdtest.Start(t, 1)
	cli := c.Client(t)
	prefix := uniquePrefix(t)
	keys := NewKeys(prefix)
	m, _ := testMetrics()
	w := NewRegionWatcher(cli, prefix, WatchOptions{Region: "east"}, m, nil)
	start(t, w)
	eventually(t, 20*time.Second, "initial snapshot", func() bool { _, ok := w.Current(); return ok })
	<-w.Updates() // the initial snapshot

	var (
		mu       sync.Mutex
		received []Snapshot[RegionSpec]
	)
	consumed := make(chan struct{})
	go func() {
		defer close(consumed)
		for s := range w.Updates() {
			mu.Lock()
			received = append(received, s)
			mu.Unlock()
		}
	}()
	publishedBefore := testutil.ToFloat64(m.snapshots.WithLabelValues("east", "regions"))

	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	const writers, perWriter = 8, 125
	var lastRev int64
	var revMu sync.Mutex
	began := time.Now()
	var wg sync.WaitGroup
	for g := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perWriter {
				name := fmt.Sprintf("r%d-%d", g, i%40)
				var rev int64
				switch {
				case i%25 == 24:
					resp, err := cli.Put(ctx, keys.Region(name), `{"schema_version":1,`)
					if err != nil {
						t.Error(err)
						return
					}
					rev = resp.Header.Revision
				case i%10 == 9:
					resp, err := cli.Delete(ctx, keys.Region(name))
					if err != nil {
						t.Error(err)
						return
					}
					rev = resp.Header.Revision
				default:
					s := spec(name, []Role{RolePrimary, RoleSecondary, RoleWitness}[i%3])
					s.Description = fmt.Sprintf("write %d", i)
					resp, err := cli.Put(ctx, keys.Region(name), specJSON(t, s))
					if err != nil {
						t.Error(err)
						return
					}
					rev = resp.Header.Revision
				}
				revMu.Lock()
				lastRev = max(lastRev, rev)
				revMu.Unlock()
			}
		}()
	}
	wg.Wait()
	burst := time.Since(began)
	eventually(t, 30*time.Second, "a snapshot at the burst's last revision", func() bool {
		s, _ := w.Current()
		return s.Revision >= lastRev
	})
	final, _ := w.Current()
	if ok, diff := sameAsRead(ctx, cli, prefix, final); !ok {
		t.Fatalf("final snapshot differs from a fresh read: %s", diff)
	}
	// The reader gets that same final snapshot.
	eventually(t, 10*time.Second, "the reader received the final snapshot", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(received) > 0 && received[len(received)-1].Revision == final.Revision
	})
	published := testutil.ToFloat64(m.snapshots.WithLabelValues("east", "regions")) - publishedBefore
	mu.Lock()
	n := len(received)
	mu.Unlock()
	t.Logf("%d writes in %s (%.0f/s): %d snapshots published, %d received by the reader; final revision %d, %d regions, %d malformed",
		writers*perWriter, burst.Round(time.Millisecond), float64(writers*perWriter)/burst.Seconds(), int(published), n,
		final.Revision, len(final.Items), len(final.Errors))
	// A snapshot at most every MaxDelay (500 ms) while writes keep coming,
	// plus one per pause longer than Quiet (50 ms): a handful, never one per
	// write.
	if limit := 5 + int(burst/(500*time.Millisecond))*2; int(published) > limit {
		t.Errorf("%d snapshots for a %s burst of 1,000 writes; want at most %d", int(published), burst, limit)
	}
	if len(final.Errors) == 0 {
		t.Errorf("the burst's malformed values are not in the final snapshot")
	}
}

// TestWatcherSurvivesCompaction: a watcher whose only etcd member goes away
// while the history it needs is compacted re-reads the prefix and ends
// equal to a fresh read.
func TestWatcherSurvivesCompaction(t *testing.T) {
	c := etcdtest.Start(t, 3)
	writer := c.Client(t, c.Endpoints[1], c.Endpoints[2])
	pinned := c.Client(t, c.Endpoints[0]) // the watcher sees only member 0
	prefix := uniquePrefix(t)
	keys := NewKeys(prefix)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	for i := range 10 {
		if _, err := writer.Put(ctx, keys.Region(fmt.Sprintf("r%d", i)), specJSON(t, spec(fmt.Sprintf("r%d", i), RoleSecondary))); err != nil {
			t.Fatal(err)
		}
	}
	m, _ := testMetrics()
	w := NewRegionWatcher(pinned, prefix, WatchOptions{Region: "east"}, m, testLog())
	start(t, w)
	eventually(t, 30*time.Second, "watcher caught up", func() bool {
		s, _ := w.Current()
		return len(s.Items) == 10
	})

	c.Stop(t, 0)
	// Changes the watcher cannot see: updates, deletes, a malformed value,
	// then the history is compacted past them.
	for i := range 10 {
		key := keys.Region(fmt.Sprintf("r%d", i))
		var err error
		switch i % 3 {
		case 0:
			_, err = writer.Delete(ctx, key)
		case 1:
			_, err = writer.Put(ctx, key, specJSON(t, spec(fmt.Sprintf("r%d", i), RolePrimary)))
		case 2:
			_, err = writer.Put(ctx, key, `{"schema_version":7}`)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if _, err := writer.Put(ctx, keys.Region("new"), specJSON(t, spec("new", RoleWitness))); err != nil {
		t.Fatal(err)
	}
	compacted := c.Compact(t, writer)
	c.Restart(t, 0)

	took := eventually(t, 60*time.Second, "watcher equals a fresh read after the compaction", func() bool {
		s, _ := w.Current()
		if s.Revision < compacted {
			return false
		}
		ok, _ := sameAsRead(ctx, writer, prefix, s)
		return ok
	})
	if n := testutil.ToFloat64(m.resyncs.WithLabelValues("east", "regions", "compacted")); n < 1 {
		t.Errorf("compacted resyncs %v, want ≥ 1", n)
	}
	s, _ := w.Current()
	t.Logf("rebuilt %s after member 0 restarted; snapshot revision %d (compacted at %d), %d regions, %d malformed",
		took.Round(time.Millisecond), s.Revision, compacted, len(s.Items), len(s.Errors))
	if len(s.Errors) != 3 {
		t.Errorf("malformed after rebuild: %v, want 3", s.Errors)
	}
	// It keeps following after the rebuild.
	if _, err := writer.Put(ctx, keys.Region("later"), specJSON(t, spec("later", RolePrimary))); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "a change after the rebuild", func() bool {
		s, _ := w.Current()
		_, ok := s.Items["later"]
		return ok
	})
}

// TestWorkerAndCandidateDecoders: presence and election keys decode from
// their key layout; keys of the wrong shape are malformed, not fatal.
func TestWorkerAndCandidateDecoders(t *testing.T) {
	keys := NewKeys("/p/")
	info := WorkerInfo{SchemaVersion: 1, ID: "w1", Region: "east", StartedAt: time.Unix(1, 0).UTC()}
	b, _ := json.Marshal(info)
	w, err := WorkerDecoder(KV{Key: keys.Worker("east", "w1"), Rel: "east/w1", Value: b, Lease: 7})
	if err != nil || w.ID != "w1" || w.Lease != 7 || w.Key != "/p/workers/east/w1" {
		t.Fatalf("worker: %+v %v", w, err)
	}
	for _, rel := range []string{"east", "east/", "/w1", "east/w1/x"} {
		if _, err := WorkerDecoder(KV{Rel: rel, Value: b}); !errors.Is(err, ErrMalformedValue) {
			t.Errorf("worker key %q: %v", rel, err)
		}
	}
	cd, err := CandidateDecoder(KV{Key: "/p/leaders/east/694d7a1b2c3", Rel: "east/694d7a1b2c3", Value: []byte("w1"), CreateRevision: 5, Lease: 9})
	if err != nil || cd.Region != "east" || cd.Worker != "w1" || cd.CreateRevision != 5 {
		t.Fatalf("candidate: %+v %v", cd, err)
	}
	if _, err := CandidateDecoder(KV{Rel: "east"}); !errors.Is(err, ErrMalformedValue) {
		t.Errorf("candidate without lease part: %v", err)
	}
}
