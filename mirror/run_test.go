package mirror

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/prometheus/client_golang/prometheus"
)

func testFlow(t *testing.T) *Flow {
	t.Helper()
	sel, _ := NewSelector([]string{"orders"}, nil)
	nm, _ := NewNaming("prefix")
	f, err := New(Options{Name: "f", SourceAlias: "east", TargetAlias: "west", Source: sarama.NewConfig(), Target: sarama.NewConfig(),
		SourceBrokers: []string{"a:1"}, TargetBrokers: []string{"b:1"}, Selector: sel, Naming: nm}, NewMetrics(prometheus.NewRegistry()), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// A start-up step that fails transiently is retried (a topic created a
// moment ago has no leader yet: the lab's first CI run died on exactly
// that); a missing ACL is not retried.
func TestRetrySetup(t *testing.T) {
	f := testFlow(t)
	calls := 0
	err := f.retrySetup(context.Background(), "load offset syncs", func() error {
		calls++
		if calls < 3 {
			return sarama.ErrNotLeaderForPartition
		}
		return nil
	})
	if err != nil || calls != 3 {
		t.Fatalf("transient: err %v after %d calls, want nil after 3", err, calls)
	}
	calls = 0
	err = f.retrySetup(context.Background(), "create the offset-sync topic", func() error {
		calls++
		return sarama.ErrTopicAuthorizationFailed
	})
	if !errors.Is(err, sarama.ErrTopicAuthorizationFailed) || calls != 1 {
		t.Fatalf("authorization: err %v after %d calls, want it at once", err, calls)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if err := f.retrySetup(ctx, "x", func() error { return sarama.ErrLeaderNotAvailable }); err == nil {
		t.Fatal("retrySetup returned nil although ctx ended first")
	}
}
