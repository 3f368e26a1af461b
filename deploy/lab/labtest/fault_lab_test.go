//go:build lab

package labtest

import (
	"context"
	"regexp"
	"testing"
	"time"

	"github.com/IBM/sarama"
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
	took := Eventually(t, 30*time.Second, "etcd-west healthy again", func(ctx context.Context) bool {
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
	took := Eventually(t, 30*time.Second, "dc-east sees 127.0.0.2 down", func(context.Context) bool {
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
