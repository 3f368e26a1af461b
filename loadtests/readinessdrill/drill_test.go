//go:build loadtest

// Package readinessdrill measures, on the lab, how soon a fault shows in the
// readiness KV bucket (fault → event latency, p50/p99 over every injected
// fault) and how long a router's in-process gate decision takes. Run it with
// `make loadtest` or:
//
//	go test -tags loadtest -run TestReadinessDrill -v -timeout 60m ./loadtests/readinessdrill -rounds 5
//
// It prints Markdown tables; it asserts nothing about time (figures are for
// the closing note and loadtests/README.md).
package readinessdrill

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"flag"
	"fmt"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/regionsync/regionsync/deploy/lab/labtest"
	"github.com/regionsync/regionsync/readiness"
	"github.com/regionsync/regionsync/readiness/faultdrill"
	"github.com/regionsync/regionsync/readiness/gateclient"
	"github.com/regionsync/regionsync/readiness/readinesstest"
)

var (
	rounds    = flag.Int("rounds", 5, "rounds of the four faults (≥ 5 gives ≥ 20 faults)")
	decisions = flag.Int("decisions", 1_000_000, "gate client decisions timed one by one")
)

func pct(ds []time.Duration, p float64) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(p*float64(len(s))+0.5) - 1
	return s[max(0, min(len(s)-1, i))]
}

func TestReadinessDrill(t *testing.T) {
	l := labtest.Require(t)
	bin := filepath.Join(t.TempDir(), "regionsync")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/regionsync/regionsync/cmd/regionsync").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	const hold = 3 * time.Second
	d := faultdrill.StartDrill(t, l, bin, hold)
	byFault := map[string][]time.Duration{}
	var all, recov []time.Duration
	var names []string
	for r := range *rounds {
		for _, f := range faultdrill.Faults() {
			res, err := d.Inject(f)
			if err != nil {
				t.Fatalf("round %d, %s: %v\n%s", r+1, f.Name, err, d.Logs())
			}
			if _, ok := byFault[f.Name]; !ok {
				names = append(names, f.Name)
			}
			byFault[f.Name] = append(byFault[f.Name], res.Detect)
			all = append(all, res.Detect)
			recov = append(recov, res.Recover)
			t.Logf("round %d: %-36s → %s in %s", r+1, f.Name, res.Seen.State, res.Detect.Round(time.Millisecond))
		}
	}
	fmt.Printf("\n### Fault → readiness event (JetStream KV watcher), %d faults, hold %s\n\n", len(all), hold)
	fmt.Println("| fault | n | p50 | p99 | max |")
	fmt.Println("|---|---|---|---|---|")
	for _, n := range names {
		ds := byFault[n]
		fmt.Printf("| %s | %d | %s | %s | %s |\n", n, len(ds), pct(ds, .5).Round(time.Millisecond), pct(ds, .99).Round(time.Millisecond), slices.Max(ds).Round(time.Millisecond))
	}
	fmt.Printf("| **all** | %d | %s | %s | %s |\n", len(all), pct(all, .5).Round(time.Millisecond), pct(all, .99).Round(time.Millisecond), slices.Max(all).Round(time.Millisecond))
	fmt.Printf("\nREADY again after the repair began: p50 %s, min %s (hold period %s)\n", pct(recov, .5).Round(time.Millisecond), slices.Min(recov).Round(time.Millisecond), hold)
	fmt.Println("\nAnchors: Route 53 health checks take 30–90 s to fail a region; ARC readiness checks run once a minute.")
	decisionLatency(t)
}

// decisionLatency times single gateclient.Allowed calls on a live view.
func decisionLatency(t *testing.T) {
	_, nc := readinesstest.StartNATS(t)
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	bus, err := readiness.OpenBus(ctx, js, 1)
	if err != nil {
		t.Fatal(err)
	}
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	signer := &readiness.Signer{KeyID: "k", Key: priv}
	now := time.Now()
	for _, r := range []string{"east", "west", "central"} {
		a := readiness.Aggregate{SchemaVersion: 1, Region: r, State: readiness.Ready, Reason: "bench", ObservedAt: now,
			ExpiresAt: now.Add(time.Hour), Revision: 1, PublishedBy: "east", Votes: []readiness.Vote{}, Verdicts: []readiness.Verdict{}}
		_ = signer.SignAggregate(&a)
		b, _ := json.Marshal(a)
		if _, err := bus.KV().Put(ctx, r, b); err != nil {
			t.Fatal(err)
		}
	}
	c := gateclient.New(bus.KV(), gateclient.Options{Verifier: &readiness.Verifier{Keys: map[string]ed25519.PublicKey{"k": pub}},
		Rules: readiness.Rules{MinFlipInterval: time.Minute}})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); _ = c.Run(ctx) }()
	for !c.Current() || len(c.View().Aggregates) < 3 {
		time.Sleep(10 * time.Millisecond)
	}
	lat := make([]time.Duration, *decisions)
	for i := range lat {
		s := time.Now()
		if !c.Allowed("east", "west").Allowed {
			t.Fatal("denied")
		}
		lat[i] = time.Since(s)
	}
	cancel()
	wg.Wait()
	fmt.Printf("\n### Gate client decision (gateclient.Allowed, in memory, %d calls timed one by one)\n\n", len(lat))
	fmt.Println("| p50 | p99 | p99.9 | max |")
	fmt.Println("|---|---|---|---|")
	fmt.Printf("| %s | %s | %s | %s |\n", pct(lat, .5), pct(lat, .99), pct(lat, .999), slices.Max(lat))
}
