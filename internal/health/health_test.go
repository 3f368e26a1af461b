package health

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestChecker(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := New(10*time.Millisecond, 50*time.Millisecond, reg, slog.New(slog.DiscardHandler))
	var etcdDown atomic.Bool
	etcdDown.Store(true)
	c.Add("east", "kafka", func(context.Context) error { return nil })
	c.Add("east", "etcd", func(context.Context) error {
		if etcdDown.Load() {
			return errors.New("connection refused")
		}
		return nil
	})
	c.Add("west", "nats", func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }) // hangs

	if ok, d := c.Ready(); ok || d["east/kafka"] != "not probed yet" {
		t.Fatalf("before Run: ready=%v detail=%v", ok, d)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	waitFor(t, func() bool { return testutil.ToFloat64(c.failures.WithLabelValues("west", "nats")) >= 1 })
	ok, d := c.Ready()
	if ok || d["east/kafka"] != "" || d["east/etcd"] != "connection refused" || !strings.Contains(d["west/nats"], "deadline") {
		t.Fatalf("ready=%v detail=%v", ok, d)
	}
	if v := testutil.ToFloat64(c.up.WithLabelValues("east", "kafka")); v != 1 {
		t.Fatalf("kafka up gauge = %v", v)
	}
	etcdDown.Store(false)
	waitFor(t, func() bool { return testutil.ToFloat64(c.up.WithLabelValues("east", "etcd")) == 1 })
	rs := c.Results()
	if len(rs) != 3 || rs[0].Dependency != "etcd" || rs[2].Region != "west" {
		t.Fatalf("results order: %+v", rs)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 10s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
