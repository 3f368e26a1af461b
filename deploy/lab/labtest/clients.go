package labtest

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
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

// SaramaWestViaProxy returns a config whose connections to west's brokers,
// bootstrap and advertised addresses alike, go through the toxiproxy link
// (kafka-west), so CutLink/SlowLink affect them. Use it with l.KafkaWest.
func (l *Lab) SaramaWestViaProxy() *sarama.Config {
	c := l.Sarama()
	c.Net.Proxy.Enable = true
	c.Net.Proxy.Dialer = l.WestDialer()
	return c
}

// WestDialer maps every advertised address of west's Kafka broker(s) to its
// toxiproxy listener; other addresses are dialled as asked. It implements
// golang.org/x/net/proxy.Dialer and ContextDialer (sarama's Net.Proxy.Dialer).
func (l *Lab) WestDialer() *MapDialer {
	m := map[string]string{}
	for _, a := range l.KafkaWest { // the lab's single west broker advertises its client address
		m[a] = l.ProxyKafkaWest
	}
	return &MapDialer{To: m, Dialer: net.Dialer{Timeout: 5 * time.Second}}
}

// MapDialer dials To[addr] instead of addr when present.
type MapDialer struct {
	To     map[string]string
	Dialer net.Dialer
}

// Dial implements proxy.Dialer.
func (d *MapDialer) Dial(network, addr string) (net.Conn, error) {
	return d.DialContext(context.Background(), network, addr)
}

// DialContext implements proxy.ContextDialer.
func (d *MapDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	if a, ok := d.To[addr]; ok {
		addr = a
	}
	return d.Dialer.DialContext(ctx, network, addr)
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

// CassandraCluster returns a gocql config that contacts host and only uses
// the nodes of dc ("dc-east" or "dc-west"): DC host filter, DC-aware
// routing, LOCAL_ONE.
func (l *Lab) CassandraCluster(host, dc string) *gocql.ClusterConfig {
	cc := gocql.NewCluster(host)
	cc.PoolConfig.HostSelectionPolicy = gocql.DCAwareRoundRobinPolicy(dc)
	cc.HostFilter = gocql.DataCenterHostFilter(dc)
	cc.Consistency = gocql.LocalOne
	cc.Timeout = 10 * time.Second
	cc.ConnectTimeout = 10 * time.Second
	return cc
}

// Cassandra returns a session of CassandraCluster(host, dc), closed at test
// end.
func (l *Lab) Cassandra(t testing.TB, host, dc string) *gocql.Session {
	t.Helper()
	s, err := l.CassandraCluster(host, dc).CreateSession()
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
// etcd-west, nats-west) refuse and drop connections until RestoreLink.
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

// CreateKeyspace creates keyspace ks with one replica in each DC through s,
// then runs each table statement (with %[1]s standing for ks), waits for
// schema agreement, and drops the keyspace at test end.
func (l *Lab) CreateKeyspace(t testing.TB, s *gocql.Session, ks string, tables ...string) {
	t.Helper()
	stmts := []string{fmt.Sprintf(`CREATE KEYSPACE %s WITH replication = {'class': 'NetworkTopologyStrategy', 'dc-east': 1, 'dc-west': 1}`, ks)}
	for _, q := range tables {
		stmts = append(stmts, fmt.Sprintf(q, ks))
	}
	for _, q := range stmts {
		if err := s.Query(q).Exec(); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	t.Cleanup(func() { _ = s.Query("DROP KEYSPACE IF EXISTS " + ks).Exec() })
	if err := s.AwaitSchemaAgreement(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// WriteConfig writes a regionsync config for the lab's two regions (east
// and west: Kafka, the etcd cluster, NATS; with cassandra, each region's
// Cassandra DC too) followed by rest (top-level YAML: flows, reconcile,
// server, …) into the test's temporary directory, and returns its path.
func (l *Lab) WriteConfig(t testing.TB, cassandra bool, rest string) string {
	t.Helper()
	etcd := `["` + strings.Join(l.EtcdEndpoints, `", "`) + `"]`
	var b strings.Builder
	b.WriteString("version: 1\nregions:\n")
	for _, r := range []struct{ name, kafka, cass, dc string }{{"east", l.KafkaEast[0], "127.0.0.1", "dc-east"}, {"west", l.KafkaWest[0], "127.0.0.2", "dc-west"}} {
		fmt.Fprintf(&b, "  - name: %s\n    kafka: {brokers: [%q]}\n    etcd: {endpoints: %s}\n    nats: {url: %q}\n", r.name, r.kafka, etcd, l.NATSURL)
		if cassandra {
			fmt.Fprintf(&b, "    cassandra: {contact_points: [%q], local_dc: %s}\n", r.cass, r.dc)
		}
	}
	b.WriteString(rest)
	path := filepath.Join(t.TempDir(), "regionsync.yaml")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
