package topology

import (
	"context"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/regionsync/regionsync/internal/devstack"
)

// TestMain fails the package if goroutines are left running. When started
// as a lab worker subprocess (see worker_test.go) it runs that instead.
func TestMain(m *testing.M) {
	if os.Getenv(workerEnv) != "" {
		os.Exit(workerMain())
	}
	devstack.VerifyTestMain(m)
}

// testLog logs to stderr at the level in TOPOLOGY_TEST_LOG (debug, info,
// warn; default warn).
func testLog() *slog.Logger {
	var lvl slog.Level
	switch strings.ToLower(os.Getenv("TOPOLOGY_TEST_LOG")) {
	case "debug":
		lvl = slog.LevelDebug
	case "info":
		lvl = slog.LevelInfo
	default:
		lvl = slog.LevelWarn
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lvl}))
}

func testMetrics() (*Metrics, *prometheus.Registry) {
	reg := prometheus.NewRegistry()
	return NewMetrics(reg), reg
}

// runner is any component with Run.
type runner interface{ Run(context.Context) error }

// start runs r in the background. The returned stop (also run at cleanup)
// cancels it and waits for Run to return nil.
func start(t testing.TB, r runner) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run returned %v", err)
				}
			case <-time.After(30 * time.Second):
				t.Errorf("Run did not return 30 s after cancel")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// eventually polls cond every 10 ms until it holds, and returns how long
// that took; after timeout it fails the test with what.
func eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	began := time.Now()
	for !cond() {
		if time.Since(began) > timeout {
			t.Fatalf("%s: not true after %s", what, timeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return time.Since(began)
}

// uniquePrefix is a key prefix of its own for one test.
func uniquePrefix(t testing.TB) string {
	return "/regionsync-test/" + strings.NewReplacer("/", "_", " ", "_").Replace(t.Name()) + "/"
}
