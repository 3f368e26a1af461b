package gateclient_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/regionsync/regionsync/readiness"
	"github.com/regionsync/regionsync/readiness/gateclient"
	"github.com/regionsync/regionsync/readiness/readinesstest"
)

type env struct {
	srv    interface{ Shutdown() }
	bus    *readiness.Bus
	signer *readiness.Signer
	client *gateclient.Client
}

func start(t testing.TB) env {
	srv, nc := readinesstest.StartNATS(t)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	bus, err := readiness.OpenBus(ctx, js, 1)
	if err != nil {
		t.Fatal(err)
	}
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	signer := &readiness.Signer{KeyID: "k1", Key: priv}
	c := gateclient.New(bus.KV(), gateclient.Options{Verifier: &readiness.Verifier{Keys: map[string]ed25519.PublicKey{"k1": pub}},
		Rules: readiness.Rules{MinFlipInterval: time.Minute}, Conn: nc})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); _ = c.Run(ctx) }()
	t.Cleanup(func() { cancel(); wg.Wait() })
	return env{srv: srv, bus: bus, signer: signer, client: c}
}

func (e env) put(t testing.TB, region string, s readiness.State, sign bool, rev int64) readiness.Aggregate {
	t.Helper()
	now := time.Now()
	a := readiness.Aggregate{SchemaVersion: readiness.SchemaVersion, Region: region, State: s, Reason: "test",
		ObservedAt: now, ExpiresAt: now.Add(10 * time.Second), Revision: rev, PublishedBy: "east", Votes: []readiness.Vote{}, Verdicts: []readiness.Verdict{}}
	if sign {
		if err := e.signer.SignAggregate(&a); err != nil {
			t.Fatal(err)
		}
	}
	val, _ := json.Marshal(a)
	if _, err := e.bus.KV().Put(context.Background(), region, val); err != nil {
		t.Fatal(err)
	}
	return a
}

func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 5s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Signed READY verdicts allow; a forged (wrongly signed) or unsigned
// aggregate is dropped, so the region reads NOT_READY; a recorded flip
// starts the wait period; an override mirrored into the bucket wins.
func TestClient(t *testing.T) {
	e := start(t)
	e.put(t, "east", readiness.Ready, true, 1)
	e.put(t, "west", readiness.Ready, true, 1)
	waitFor(t, "client current with both regions", func() bool { return e.client.Current() && len(e.client.View().Aggregates) == 2 })
	if d := e.client.Allowed("east", "west"); !d.Allowed {
		t.Fatalf("signed READY target denied: %v", d.Reasons)
	}

	forged := e.put(t, "west", readiness.Ready, true, 2)
	forged.State, forged.Revision = readiness.Ready, 3 // changed after signing
	forged.Reason = "forged"
	val, _ := json.Marshal(forged)
	if _, err := e.bus.KV().Put(context.Background(), "west", val); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "forged aggregate rejected", func() bool { return e.client.Rejected() >= 1 })
	if d := e.client.Allowed("east", "west"); d.Allowed || e.client.State("west") != readiness.NotReady {
		t.Fatalf("forged aggregate accepted: %+v", d)
	}
	e.put(t, "west", readiness.Ready, false, 4) // unsigned
	waitFor(t, "unsigned aggregate rejected", func() bool { return e.client.Rejected() >= 2 })
	if d := e.client.Allowed("east", "west"); d.Allowed {
		t.Fatalf("unsigned aggregate accepted: %+v", d)
	}

	e.put(t, "west", readiness.Ready, true, 5)
	waitFor(t, "signed READY again", func() bool { return e.client.Allowed("east", "west").Allowed })
	if err := e.bus.RecordFlip(context.Background(), readiness.Flip{From: "west", To: "east", At: time.Now(), By: "test"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "wait period after a flip", func() bool { return !e.client.Allowed("east", "west").Allowed })

	now := time.Now()
	err := e.bus.SyncOverrides(context.Background(), map[string]readiness.Override{"east": {SchemaVersion: 1, Region: "east", State: readiness.NotReady,
		By: "oncall", Reason: "maintenance", CreatedAt: now, ExpiresAt: now.Add(time.Hour)}})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "override seen", func() bool { return e.client.State("east") == readiness.NotReady })
	d := e.client.Decide("west", "east", time.Now().Add(2*time.Minute)) // past the wait period
	if d.Allowed || d.Override == nil {
		t.Fatalf("override NOT_READY on east not honoured: %+v", d)
	}
}

// A NATS outage loses nothing that matters: the client stops being
// current, keeps the last view, and once the verdict expires the region
// reads NOT_READY; it never says READY on a verdict nobody refreshes.
func TestClientNATSOutage(t *testing.T) {
	e := start(t)
	now := time.Now()
	for _, r := range []string{"east", "west"} {
		a := readiness.Aggregate{SchemaVersion: 1, Region: r, State: readiness.Ready, Reason: "test", ObservedAt: now,
			ExpiresAt: now.Add(1500 * time.Millisecond), Revision: 1, PublishedBy: "east", Votes: []readiness.Vote{}, Verdicts: []readiness.Verdict{}}
		if err := e.signer.SignAggregate(&a); err != nil {
			t.Fatal(err)
		}
		val, _ := json.Marshal(a)
		if _, err := e.bus.KV().Put(context.Background(), r, val); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "READY view", func() bool { return e.client.Allowed("east", "west").Allowed })
	e.srv.Shutdown()
	waitFor(t, "client no longer current", func() bool { return !e.client.Current() })
	if d := e.client.Decide("east", "west", now.Add(time.Second)); !d.Allowed {
		t.Fatalf("before expiry the last verified view still counts: %+v", d)
	}
	d := e.client.Decide("east", "west", now.Add(2*time.Second))
	if d.Allowed || d.TargetState != readiness.NotReady || !strings.Contains(strings.Join(d.Reasons, ";"), "expired") {
		t.Fatalf("after expiry without NATS: %+v", d)
	}
}

// BenchmarkAllowed: the router's in-memory decision.
func BenchmarkAllowed(b *testing.B) {
	e := start(b)
	e.put(b, "east", readiness.Ready, true, 1)
	e.put(b, "west", readiness.Ready, true, 1)
	waitFor(b, "client current", func() bool { return e.client.Current() && len(e.client.View().Aggregates) == 2 })
	b.ResetTimer()
	for b.Loop() {
		if !e.client.Allowed("east", "west").Allowed {
			b.Fatal("denied")
		}
	}
}

// While the watch is not current the client asks the HTTP gate.
func TestClientFallback(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/gate" || r.URL.Query().Get("from") != "east" || r.URL.Query().Get("to") != "west" {
			http.NotFound(w, r)
			return
		}
		w.WriteHeader(http.StatusConflict)
		_ = json.NewEncoder(w).Encode(readiness.Decision{From: "east", To: "west", Reasons: []string{"from the HTTP gate"}, TargetState: readiness.NotReady})
	}))
	defer srv.Close()
	c := gateclient.New(nil, gateclient.Options{Fallback: srv.URL})
	if d := c.Allowed("east", "west"); d.Allowed || len(d.Reasons) != 1 || d.Reasons[0] != "from the HTTP gate" {
		t.Fatalf("fallback not used: %+v", d)
	}
}
