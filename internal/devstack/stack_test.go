package devstack

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	clientv3 "go.etcd.io/etcd/client/v3"
)

func TestMain(m *testing.M) { VerifyTestMain(m) }

// TestStack starts the whole dev stack, uses each part through its real
// client, and stops it; goleak then proves nothing was left running.
func TestStack(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	s := New(Options{Dir: t.TempDir()}, log)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run = %v", err)
		}
	}()
	select {
	case <-s.Ready():
	case err := <-done:
		t.Fatalf("stack did not start: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatal("stack not ready after 60s")
	}
	ep := s.Endpoints()
	if len(ep.Kafka) != 2 || len(ep.Etcd) != 3 || ep.NATS == "" {
		t.Fatalf("endpoints = %+v", ep)
	}

	t.Run("producer writes to east kafka", func(t *testing.T) {
		reg := prometheus.NewRegistry()
		p := NewProducer("east", s.Brokers("east"), []string{"orders", "payments"}, 200, reg, log)
		pctx, pcancel := context.WithCancel(ctx)
		pdone := make(chan error, 1)
		go func() { pdone <- p.Run(pctx) }()
		deadline := time.Now().Add(20 * time.Second)
		for testutil.ToFloat64(p.sent.WithLabelValues("orders")) < 20 && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		pcancel()
		if err := <-pdone; err != nil {
			t.Fatal(err)
		}
		if n := testutil.ToFloat64(p.sent.WithLabelValues("orders")); n < 20 {
			t.Fatalf("orders records acknowledged = %v, want ≥ 20", n)
		}
		cl, err := sarama.NewClient(ep.Kafka["east"], sarama.NewConfig())
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		var total int64
		for part := int32(0); part < 3; part++ {
			hw, err := cl.GetOffset("orders", part, sarama.OffsetNewest)
			if err != nil {
				t.Fatal(err)
			}
			total += hw
		}
		if float64(total) != testutil.ToFloat64(p.sent.WithLabelValues("orders")) {
			t.Fatalf("high-water marks sum %d, acknowledged %v", total, testutil.ToFloat64(p.sent.WithLabelValues("orders")))
		}
	})

	t.Run("etcd has 3 members and a leader", func(t *testing.T) {
		cli, err := clientv3.New(clientv3.Config{Endpoints: ep.Etcd, DialTimeout: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		defer cli.Close()
		c, cc := context.WithTimeout(ctx, 10*time.Second)
		defer cc()
		ml, err := cli.MemberList(c)
		if err != nil {
			t.Fatal(err)
		}
		if len(ml.Members) != 3 {
			t.Fatalf("members = %d", len(ml.Members))
		}
		st, err := cli.Status(c, ep.Etcd[0])
		if err != nil {
			t.Fatal(err)
		}
		if st.Leader == 0 {
			t.Fatal("no leader")
		}
		if _, err := cli.Put(c, "/regionsync/dev-test", "ok"); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("jetstream kv works", func(t *testing.T) {
		nc, err := nats.Connect(ep.NATS)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		js, err := jetstream.New(nc)
		if err != nil {
			t.Fatal(err)
		}
		c, cc := context.WithTimeout(ctx, 10*time.Second)
		defer cc()
		kv, err := js.CreateKeyValue(c, jetstream.KeyValueConfig{Bucket: "devtest"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := kv.Put(c, "west", []byte("READY")); err != nil {
			t.Fatal(err)
		}
		e, err := kv.Get(c, "west")
		if err != nil || string(e.Value()) != "READY" {
			t.Fatalf("get = %v, %v", e, err)
		}
	})
}
