package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/regionsync/regionsync/internal/devstack/devstacktest"
)

// TestTopologyApplyShow applies the example registry to a real etcd
// cluster, shows it, and checks a stale --expect-revision is refused.
func TestTopologyApplyShow(t *testing.T) {
	ep := devstacktest.Start(t)
	cfgPath := filepath.Join(t.TempDir(), "regionsync.yaml")
	cfg := fmt.Sprintf("version: 1\nregions:\n  - name: east\n    kafka: {brokers: [%q]}\n    etcd: {endpoints: [%q]}\n    nats: {url: %q}\n", ep.Kafka["east"][0], ep.Etcd[0], ep.NATS)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) (string, error) {
		var out, errb bytes.Buffer
		root := newRootCmd(&out, &errb)
		root.SetArgs(args)
		err := root.Execute()
		return out.String() + errb.String(), err
	}
	spec := filepath.Join("..", "..", "deploy", "examples", "regions.yaml")
	out, err := run("topology", "apply", spec, "--config", cfgPath, "--expect-revision", "0")
	if err != nil || !strings.Contains(out, "applied 3 region spec(s) at revision") {
		t.Fatalf("apply: %v\n%s", err, out)
	}
	out, err = run("topology", "show", "--config", cfgPath)
	if err != nil {
		t.Fatalf("show: %v\n%s", err, out)
	}
	for _, want := range []string{"east", "west", "witness", "primary", "secondary"} {
		if !strings.Contains(out, want) {
			t.Errorf("show output lacks %q:\n%s", want, out)
		}
	}
	// The registry is no longer empty: expecting revision 0 must conflict.
	if out, err := run("topology", "apply", spec, "--config", cfgPath, "--expect-revision", "0"); err == nil {
		t.Fatalf("second apply with --expect-revision 0 succeeded:\n%s", out)
	}
}
