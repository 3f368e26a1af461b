//go:build lab

package faultdrill_test

import (
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/regionsync/regionsync/deploy/lab/labtest"
	"github.com/regionsync/regionsync/readiness/faultdrill"
)

// BuildBinary builds cmd/regionsync into a temporary directory.
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "regionsync")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/regionsync/regionsync/cmd/regionsync").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// TestLabFaultToVerdict is issue #7's acceptance: with `regionsync run`
// workers (east ×1, west ×2) observing the lab, each fault turns west
// NOT_READY (UNKNOWN when every west worker is dead) as a JetStream KV
// watcher sees it within 2 s; after the repair west returns to READY, and
// not before the hold period.
func TestLabFaultToVerdict(t *testing.T) {
	l := labtest.Require(t)
	const hold = 3 * time.Second
	d := faultdrill.StartDrill(t, l, buildBinary(t), hold)
	for _, f := range faultdrill.Faults() {
		r, err := d.Inject(f)
		if err != nil {
			t.Fatalf("%s: %v\nworker logs:\n%s", f.Name, err, d.Logs())
		}
		t.Logf("%-36s → %s after %s (%s); READY again %s after the repair began", f.Name, r.Seen.State, r.Detect.Round(time.Millisecond), r.Seen.Why, r.Recover.Round(time.Millisecond))
		if r.Detect > 2*time.Second {
			t.Errorf("%s: the KV bucket said %s %s after the fault, want ≤ 2s", f.Name, f.Want, r.Detect)
		}
		if r.Recover < hold {
			t.Errorf("%s: READY again %s after the repair began, before the %s hold period", f.Name, r.Recover, hold)
		}
	}
}
