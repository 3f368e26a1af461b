package readiness

import (
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/regionsync/regionsync/internal/config"
	"github.com/regionsync/regionsync/replicate"
)

func budgets(string) config.Budgets {
	b := config.DefaultBudgets()
	b.HoldPeriod = config.Duration(10 * time.Second)
	b.VerdictTTL = config.Duration(5 * time.Second)
	return b
}

func kafkaStatus(lagSeconds float64) replicate.Status {
	return replicate.Status{Store: replicate.StoreKafka, Source: "east", Target: "west", RPOSeconds: replicate.Figure(lagSeconds),
		Checks: []replicate.Check{replicate.UpperBound("lag_seconds", replicate.StoreKafka, "east-to-west", lagSeconds, 30, "seconds")}}
}

func inputs(now time.Time, lag float64, workers int) Inputs {
	return Inputs{Region: "west", Now: now, Statuses: []replicate.Status{kafkaStatus(lag)}, ExpectedStores: []string{"kafka"},
		EtcdQuorum: true, Workers: workers}
}

// TestHysteresis: fail → NOT_READY at once; READY only after the hold
// period of continuous passing; a warn is DEGRADED after the hold; no
// worker is UNKNOWN; a missing expected store is UNKNOWN.
func TestHysteresis(t *testing.T) {
	e := NewEvaluator("east", budgets)
	t0 := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	steps := []struct {
		at      time.Duration
		lag     float64
		workers int
		want    State
	}{
		{0, 1, 1, NotReady}, // passing, but not for the hold period yet
		{9 * time.Second, 1, 1, NotReady},
		{10 * time.Second, 1, 1, Ready},
		{11 * time.Second, 31, 1, NotReady}, // over budget: at once
		{12 * time.Second, 1, 1, NotReady},  // hold restarts
		{21 * time.Second, 1, 1, NotReady},
		{22 * time.Second, 1, 1, Ready},
		{23 * time.Second, 25, 1, Degraded}, // warn (≥ 75 % of 30 s) keeps the hold
		{24 * time.Second, 1, 0, Unknown},   // no live worker
		{25 * time.Second, 1, 1, NotReady},
	}
	var lastRev int64
	for i, s := range steps {
		v := e.Evaluate(inputs(t0.Add(s.at), s.lag, s.workers))
		if v.State != s.want {
			t.Fatalf("step %d (t+%s lag %.0f workers %d): state %s (%s), want %s", i, s.at, s.lag, s.workers, v.State, v.Reason, s.want)
		}
		if v.Revision <= lastRev {
			t.Fatalf("step %d: revision %d not above %d", i, v.Revision, lastRev)
		}
		lastRev = v.Revision
		if !v.ExpiresAt.Equal(v.ObservedAt.Add(5 * time.Second)) {
			t.Fatalf("step %d: expiresAt %s, want observedAt + 5s", i, v.ExpiresAt)
		}
		if v.State != Ready && v.Reason == "" {
			t.Fatalf("step %d: %s without a reason", i, v.State)
		}
	}
	in := inputs(t0.Add(time.Minute), 1, 1)
	in.Statuses = nil
	if v := e.Evaluate(in); v.State != Unknown || !strings.Contains(v.Reason, "no kafka replication status") {
		t.Fatalf("missing kafka status: %s (%s), want UNKNOWN", v.State, v.Reason)
	}
}

func vote(obs string, s State, now time.Time) Verdict {
	return Verdict{Region: "west", Observer: obs, State: s, ObservedAt: now, ExpiresAt: now.Add(5 * time.Second), RPOSeconds: 1}
}

func TestAggregateMajority(t *testing.T) {
	now := time.Now()
	expired := vote("central", Ready, now.Add(-time.Minute))
	cases := []struct {
		name  string
		votes []Verdict
		want  State
	}{
		{"none", nil, Unknown},
		{"one ready", []Verdict{vote("east", Ready, now)}, Ready},
		{"two of three", []Verdict{vote("east", Ready, now), vote("west", Ready, now), vote("central", NotReady, now)}, Ready},
		{"one of two", []Verdict{vote("east", Ready, now), vote("west", NotReady, now)}, NotReady},
		{"one of two unknown", []Verdict{vote("east", Ready, now), vote("west", Unknown, now)}, Unknown},
		{"expired do not count", []Verdict{vote("east", NotReady, now), expired}, NotReady},
		{"only expired", []Verdict{expired}, Unknown},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := AggregateVerdicts("west", c.votes, now, 7, "east", 5*time.Second)
			if a.State != c.want {
				t.Fatalf("state %s (%s), want %s", a.State, a.Reason, c.want)
			}
			if a.EffectiveState(a.ExpiresAt) != NotReady {
				t.Fatalf("at expiry the effective state is %s, want NOT_READY", a.EffectiveState(a.ExpiresAt))
			}
		})
	}
}

func TestSignatures(t *testing.T) {
	priv, pub, err := GenerateKeyPEM()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	writeFile(t, dir+"/k.pem", priv)
	writeFile(t, dir+"/k.pub", pub)
	signer, err := LoadSigner("k1", dir+"/k.pem")
	if err != nil {
		t.Fatal(err)
	}
	pk, err := LoadPublicKey(dir + "/k.pub")
	if err != nil {
		t.Fatal(err)
	}
	vf := &Verifier{Keys: map[string]ed25519.PublicKey{"k1": pk}}
	e := NewEvaluator("east", budgets)
	v := e.Evaluate(inputs(time.Now(), 1, 1))
	if err := signer.SignVerdict(&v); err != nil {
		t.Fatal(err)
	}
	a := AggregateVerdicts("west", []Verdict{v}, time.Now(), 9, "east", time.Second)
	if err := signer.SignAggregate(&a); err != nil {
		t.Fatal(err)
	}
	// A round trip through JSON (as a router receives it) still verifies.
	raw, _ := json.Marshal(a)
	var got Aggregate
	if err := json.Unmarshal(raw, &got); err != nil {
		t.Fatal(err)
	}
	if err := vf.VerifyAggregate(got); err != nil {
		t.Fatalf("round-tripped aggregate: %v", err)
	}
	forged := got
	forged.State = Ready
	forged.Reason = "trust me"
	if err := vf.VerifyAggregate(forged); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("forged aggregate: %v, want ErrBadSignature", err)
	}
	unsigned := got
	unsigned.Signature = ""
	if err := vf.VerifyAggregate(unsigned); !errors.Is(err, ErrUnsigned) {
		t.Fatalf("unsigned aggregate: %v, want ErrUnsigned", err)
	}
	_, otherPub, _ := GenerateKeyPEM()
	writeFile(t, dir+"/o.pub", otherPub)
	opk, _ := LoadPublicKey(dir + "/o.pub")
	if err := (&Verifier{Keys: map[string]ed25519.PublicKey{"k1": opk}}).VerifyAggregate(got); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("aggregate checked with another key: %v, want ErrBadSignature", err)
	}
	tampered := got
	tampered.Verdicts = append([]Verdict(nil), got.Verdicts...)
	tampered.Verdicts[0].RPOSeconds = 0.5
	if err := vf.VerifyAggregate(tampered); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("aggregate with a tampered verdict: %v, want ErrBadSignature", err)
	}
}

func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}
