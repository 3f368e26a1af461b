//go:build lab

package labtest

import (
	"context"
	"regexp"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/nats-io/nats.go"
)

// TestLabFaultEtcdMemberKill: with etcd-west killed the cluster keeps
// quorum; restarted, the member rejoins.
func TestLabFaultEtcdMemberKill(t *testing.T) {
	l := Require(t)
	l.Kill(t, "etcd-west")
	defer l.Start(t, "etcd-west")
	cli := l.Etcd(t, l.EtcdEndpoints[0], l.EtcdEndpoints[2])
	Eventually(t, 15*time.Second, "write with etcd-west dead", func(ctx context.Context) bool {
		_, err := cli.Put(ctx, "/labtest/quorum", time.Now().String())
		return err == nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, ep := range []string{l.EtcdEndpoints[0], l.EtcdEndpoints[2]} {
		st, err := cli.Status(ctx, ep)
		if err != nil || st.Leader == 0 {
			t.Fatalf("status of %s with etcd-west dead: %v (%+v)", ep, err, st)
		}
	}
	dctx, dcancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer dcancel()
	if _, err := cli.Status(dctx, l.EtcdEndpoints[1]); err == nil {
		t.Fatalf("killed etcd-west still answers on %s", l.EtcdEndpoints[1])
	}
	l.Start(t, "etcd-west")
	west := l.Etcd(t, l.EtcdEndpoints[1])
	took := Eventually(t, 60*time.Second, "etcd-west healthy again", func(ctx context.Context) bool {
		st, err := west.Status(ctx, l.EtcdEndpoints[1])
		return err == nil && st.Leader != 0
	})
	t.Logf("etcd-west rejoined %s after restart", took.Round(time.Millisecond))
}

var westDown = regexp.MustCompile(`(?m)^DN\s+127\.0\.0\.2\s`)
var westUp = regexp.MustCompile(`(?m)^UN\s+127\.0\.0\.2\s`)

// TestLabFaultCassandraPause: SIGSTOP dc-west's node; dc-east reports it
// down; SIGCONT; it is up again.
func TestLabFaultCassandraPause(t *testing.T) {
	l := Require(t)
	l.Pause(t, "cassandra-west")
	resumed := false
	defer func() {
		if !resumed {
			l.Resume(t, "cassandra-west")
		}
	}()
	took := Eventually(t, 90*time.Second, "dc-east sees 127.0.0.2 down", func(context.Context) bool {
		return westDown.MatchString(l.Nodetool(t, "east", "status"))
	})
	t.Logf("dc-east reported dc-west down %s after SIGSTOP", took.Round(time.Millisecond))
	l.Resume(t, "cassandra-west")
	resumed = true
	took = Eventually(t, 60*time.Second, "dc-east sees 127.0.0.2 up", func(context.Context) bool {
		return westUp.MatchString(l.Nodetool(t, "east", "status"))
	})
	t.Logf("up again %s after SIGCONT", took.Round(time.Millisecond))
}

// TestLabLinkCut: east's clients reach west's Kafka through the proxy; a
// cut link fails requests, a restored one serves them again.
func TestLabLinkCut(t *testing.T) {
	l := Require(t)
	cfg := l.SaramaWestViaProxy()
	cfg.Net.DialTimeout = 2 * time.Second
	cfg.Metadata.Retry.Max = 0
	probe := func() error {
		c, err := sarama.NewClient(l.KafkaWest, cfg)
		if err != nil {
			return err
		}
		defer c.Close()
		return c.RefreshMetadata()
	}
	if err := probe(); err != nil {
		t.Fatalf("through the proxy before the cut: %v", err)
	}
	l.CutLink(t, "kafka-west")
	defer l.RestoreLink(t, "kafka-west")
	if err := probe(); err == nil {
		t.Fatal("west's Kafka answered through a cut link")
	}
	l.RestoreLink(t, "kafka-west")
	Eventually(t, 10*time.Second, "link restored", func(context.Context) bool { return probe() == nil })
}

// TestLabLinkEtcdNATS: east's paths to west's etcd member and to NATS go
// through toxiproxy; a slowed link still serves, a cut one does not, a
// restored one serves again.
func TestLabLinkEtcdNATS(t *testing.T) {
	l := Require(t)
	etcdProbe := func() error {
		cli := l.Etcd(t, l.ProxyEtcdWest)
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		_, err := cli.Status(ctx, l.ProxyEtcdWest)
		return err
	}
	natsProbe := func() error {
		nc, err := nats.Connect(l.ProxyNATSWest, nats.Timeout(2*time.Second), nats.MaxReconnects(0))
		if err != nil {
			return err
		}
		defer nc.Close()
		return nc.FlushTimeout(3 * time.Second)
	}
	for _, c := range []struct {
		proxy string
		probe func() error
	}{{"etcd-west", etcdProbe}, {"nats-west", natsProbe}} {
		t.Run(c.proxy, func(t *testing.T) {
			if err := c.probe(); err != nil {
				t.Fatalf("through the proxy before any fault: %v", err)
			}
			defer l.RestoreLink(t, c.proxy)
			l.SlowLink(t, c.proxy, 100*time.Millisecond)
			start := time.Now()
			if err := c.probe(); err != nil {
				t.Fatalf("through a slowed link: %v", err)
			}
			t.Logf("probe over the slowed link took %s", time.Since(start).Round(time.Millisecond))
			l.RestoreLink(t, c.proxy)
			l.CutLink(t, c.proxy)
			if err := c.probe(); err == nil {
				t.Fatalf("%s answered through a cut link", c.proxy)
			}
			l.RestoreLink(t, c.proxy)
			Eventually(t, 10*time.Second, "link restored", func(context.Context) bool { return c.probe() == nil })
		})
	}
}
