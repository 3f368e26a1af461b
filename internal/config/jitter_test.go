package config

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// A jitter written as 0s stays 0; one left out gets the default.
func TestExplicitZeroJitter(t *testing.T) {
	base, err := os.ReadFile("testdata/good-minimal.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		extra string
		audit time.Duration
	}{
		{"reconcile:\n  kafka_audit: {jitter: 0s}\n", 0},
		{"reconcile:\n  kafka_audit: {interval: 5s}\n", 10 * time.Second},
	} {
		p := filepath.Join(t.TempDir(), "c.yaml")
		if err := os.WriteFile(p, append(base, c.extra...), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg, err := Load(p)
		if err != nil {
			t.Fatalf("%q: %v", c.extra, err)
		}
		if got := cfg.Reconcile.KafkaAudit.Jitter.Std(); got != c.audit {
			t.Errorf("%q: kafka_audit.jitter %s, want %s", c.extra, got, c.audit)
		}
	}
}
