// Package devstacktest starts the in-process dev stack (Kafka stand-ins,
// real 3-member etcd, real NATS with JetStream) for fast tests.
package devstacktest

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/regionsync/regionsync/internal/devstack"
)

// Start runs a dev stack for the rest of the test and returns its
// endpoints. The stack stops at test cleanup; a stack that fails to start or
// stop fails the test.
func Start(t testing.TB) devstack.Endpoints {
	t.Helper()
	s := devstack.New(devstack.Options{Dir: t.TempDir()}, slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("dev stack: %v", err)
		}
	})
	select {
	case <-s.Ready():
		return s.Endpoints()
	case err := <-done:
		done <- err // let Cleanup see it too
		t.Fatalf("dev stack did not start: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatal("dev stack not ready after 60s")
	}
	return devstack.Endpoints{}
}
