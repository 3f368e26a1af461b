package labtest

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/IBM/sarama"
	toxiclient "github.com/Shopify/toxiproxy/v2/client"
	gocql "github.com/apache/cassandra-gocql-driver/v2"
	"github.com/nats-io/nats.go"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// Sarama returns a client config for the lab's Kafka clusters.
func (l *Lab) Sarama() *sarama.Config {
	c := sarama.NewConfig()
	c.Version = sarama.V3_6_0_0
	c.Producer.Return.Successes = true
	c.Producer.RequiredAcks = sarama.WaitForAll
	return c
}

// SaramaWestViaProxy returns a config whose connections to west's broker,
// bootstrap and advertised address alike, go through the toxiproxy link, so
// CutLink/SlowLink affect them.
func (l *Lab) SaramaWestViaProxy() *sarama.Config {
	c := l.Sarama()
	c.Net.Proxy.Enable = true
	c.Net.Proxy.Dialer = mapDialer{to: map[string]string{l.KafkaWest[0]: l.ProxyKafkaWest}}
	return c
}

// mapDialer dials a mapped address instead of the requested one.
type mapDialer struct{ to map[string]string }

func (d mapDialer) Dial(network, addr string) (net.Conn, error) {
	if a, ok := d.to[addr]; ok {
		addr = a
	}
	return (&net.Dialer{Timeout: 5 * time.Second}).Dial(network, addr)
}

// Etcd returns a client of the lab's etcd cluster (closed at test end).
func (l *Lab) Etcd(t testing.TB, endpoints ...string) *clientv3.Client {
	t.Helper()
	if len(endpoints) == 0 {
		endpoints = l.EtcdEndpoints
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: endpoints, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cli.Close() })
	return cli
}

// NATS returns a connection to the lab's NATS (closed at test end).
func (l *Lab) NATS(t testing.TB) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(l.NATSURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// Cassandra returns a session whose queries stay in dc ("dc-east" or
// "dc-west"), contacting host (closed at test end).
func (l *Lab) Cassandra(t testing.TB, host, dc string) *gocql.Session {
	t.Helper()
	cc := gocql.NewCluster(host)
	cc.PoolConfig.HostSelectionPolicy = gocql.DCAwareRoundRobinPolicy(dc)
	cc.HostFilter = gocql.DataCenterHostFilter(dc)
	cc.Consistency = gocql.LocalOne
	cc.Timeout = 10 * time.Second
	cc.ConnectTimeout = 10 * time.Second
	s, err := cc.CreateSession()
	if err != nil {
		t.Fatalf("cassandra %s (%s): %v", host, dc, err)
	}
	t.Cleanup(s.Close)
	return s
}

func (l *Lab) toxi(t testing.TB, name string) *toxiclient.Proxy {
	t.Helper()
	p, err := toxiclient.NewClient(l.ToxiproxyURL).Proxy(name)
	if err != nil {
		t.Fatalf("toxiproxy %s: %v", name, err)
	}
	return p
}

// CutLink makes the east→west proxy name (kafka-west, cassandra-west,
// etcd-west) refuse and drop connections until RestoreLink.
func (l *Lab) CutLink(t testing.TB, name string) {
	t.Helper()
	p := l.toxi(t, name)
	p.Enabled = false
	if err := p.Save(); err != nil {
		t.Fatal(err)
	}
}

// SlowLink adds latency to both directions of proxy name.
func (l *Lab) SlowLink(t testing.TB, name string, latency time.Duration) {
	t.Helper()
	p := l.toxi(t, name)
	for _, dir := range []string{"upstream", "downstream"} {
		if _, err := p.AddToxic("latency-"+dir, "latency", dir, 1, toxiclient.Attributes{"latency": latency.Milliseconds()}); err != nil {
			t.Fatal(err)
		}
	}
}

// RestoreLink re-enables proxy name and removes its toxics.
func (l *Lab) RestoreLink(t testing.TB, name string) {
	t.Helper()
	p := l.toxi(t, name)
	toxics, _ := p.Toxics()
	for _, x := range toxics {
		_ = p.RemoveToxic(x.Name)
	}
	p.Enabled = true
	if err := p.Save(); err != nil {
		t.Fatal(err)
	}
}

// Eventually polls cond every 200 ms until it holds or timeout passes, and
// returns how long it took; a timeout fails the test with msg.
func Eventually(t testing.TB, timeout time.Duration, msg string, cond func(context.Context) bool) time.Duration {
	t.Helper()
	start := time.Now()
	for time.Since(start) < timeout {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		ok := cond(ctx)
		cancel()
		if ok {
			return time.Since(start)
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("%s: not true after %s", msg, timeout)
	return 0
}
