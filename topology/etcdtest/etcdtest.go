// Package etcdtest runs a real etcd cluster inside a test process
// (go.etcd.io/etcd/server/v3/embed), one embed.Etcd per member on loopback
// ports, for fast tests of code that talks to etcd. Members can be stopped and
// restarted with their data, so tests can take a member away from a client
// pinned to it. Everything is closed in t.Cleanup. Members log errors to a
// file in the test's temporary directory; ETCDTEST_LOG=1 sends their
// warnings to stderr instead.
package etcdtest

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
)

// Cluster is a running embedded etcd cluster.
type Cluster struct {
	// Endpoints are the client URLs of the members, in member order.
	Endpoints []string

	mu      sync.Mutex
	members []*member
}

type member struct {
	name string
	cfg  *embed.Config
	e    *embed.Etcd // nil while stopped
}

// startTimeout bounds how long a member may take to become ready; generous
// because tests share two cores with other work.
const startTimeout = 60 * time.Second

// Options of a cluster.
type Options struct {
	// CertFile and KeyFile, when set, make the client URLs https:// with
	// this server certificate (see SelfSignedTLS). Peers stay plain.
	CertFile, KeyFile string
}

// Start starts an n-member cluster (members m0, m1, ...) with etcd's default
// timing (100 ms heartbeat, 1 s election timeout, so the smallest lease TTL
// the server grants is 2 s) and waits until every member is ready. The
// cluster is closed when the test ends. A failure to start fails the test.
func Start(t testing.TB, n int) *Cluster {
	t.Helper()
	return StartWith(t, n, Options{})
}

// StartWith is Start with options.
func StartWith(t testing.TB, n int, o Options) *Cluster {
	t.Helper()
	ports, err := freePorts(2 * n)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	names := make([]string, n)
	initial := make([]string, n)
	for i := range n {
		names[i] = fmt.Sprintf("m%d", i)
		initial[i] = fmt.Sprintf("%s=http://127.0.0.1:%d", names[i], ports[2*i+1])
	}
	c := &Cluster{}
	t.Cleanup(c.close)
	for i, name := range names {
		cfg := embed.NewConfig()
		cfg.Name = name
		cfg.Dir = filepath.Join(dir, name)
		client := url.URL{Scheme: "http", Host: fmt.Sprintf("127.0.0.1:%d", ports[2*i])}
		if o.CertFile != "" {
			client.Scheme = "https"
			cfg.ClientTLSInfo = transport.TLSInfo{CertFile: o.CertFile, KeyFile: o.KeyFile}
		}
		peer := url.URL{Scheme: "http", Host: fmt.Sprintf("127.0.0.1:%d", ports[2*i+1])}
		cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{client}, []url.URL{client}
		cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{peer}, []url.URL{peer}
		cfg.InitialCluster = strings.Join(initial, ",")
		cfg.InitialClusterToken = "regionsync-etcdtest"
		cfg.LogLevel = "error"
		cfg.Logger = "zap"
		cfg.LogOutputs = []string{filepath.Join(dir, name+".log")}
		if os.Getenv("ETCDTEST_LOG") == "1" { // members' warnings on stderr, for debugging
			cfg.LogLevel, cfg.LogOutputs = "warn", []string{"stderr"}
		}
		m := &member{name: name, cfg: cfg}
		c.members = append(c.members, m)
		c.Endpoints = append(c.Endpoints, client.String())
		e, err := embed.StartEtcd(cfg)
		if err != nil {
			t.Fatalf("etcdtest: start member %s (client %s, peer %s): %v", name, client.Host, peer.Host, err)
		}
		m.e = e
	}
	for _, m := range c.members {
		if err := waitReady(m); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

func waitReady(m *member) error {
	select {
	case <-m.e.Server.ReadyNotify():
		return nil
	case err := <-m.e.Err():
		return fmt.Errorf("etcdtest: member %s: %w", m.name, err)
	case <-time.After(startTimeout):
		return fmt.Errorf("etcdtest: member %s not ready after %s", m.name, startTimeout)
	}
}

// Stop stops member i (its client and peer ports close; its data stays). A
// stopped leader hands leadership to a peer first, as etcd does on a graceful
// stop. Stopping a stopped member does nothing.
func (c *Cluster) Stop(t testing.TB, i int) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	m := c.members[i]
	if m.e != nil {
		m.e.Close()
		m.e = nil
	}
}

// Restart starts stopped member i again with its data directory and waits
// until it is ready (it rejoins the cluster). Restarting a running member
// does nothing.
func (c *Cluster) Restart(t testing.TB, i int) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	m := c.members[i]
	if m.e != nil {
		return
	}
	m.cfg.ClusterState = embed.ClusterStateFlagExisting
	e, err := embed.StartEtcd(m.cfg)
	if err != nil {
		t.Fatalf("etcdtest: restart member %s: %v", m.name, err)
	}
	m.e = e
	if err := waitReady(m); err != nil {
		t.Fatal(err)
	}
}

// ClientConfig returns a client config for the given endpoints (all members
// when none are given) with a silent logger.
func (c *Cluster) ClientConfig(endpoints ...string) clientv3.Config {
	if len(endpoints) == 0 {
		endpoints = c.Endpoints
	}
	return clientv3.Config{Endpoints: endpoints, DialTimeout: 5 * time.Second, Logger: zap.NewNop()}
}

// Client returns a client of the given endpoints (all members when none are
// given), closed when the test ends.
func (c *Cluster) Client(t testing.TB, endpoints ...string) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(c.ClientConfig(endpoints...))
	if err != nil {
		t.Fatalf("etcdtest: client of %v: %v", endpoints, err)
	}
	t.Cleanup(func() { _ = cli.Close() })
	return cli
}

// WaitLeader polls the running members until all of them report the same
// leader, or fails the test after timeout. It returns the leader's index.
func (c *Cluster) WaitLeader(t testing.TB, timeout time.Duration) int {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if i, ok := c.leader(); ok {
			return i
		}
		if time.Now().After(deadline) {
			t.Fatalf("etcdtest: no agreed leader after %s", timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (c *Cluster) leader() (int, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	lead, idx := uint64(0), -1
	for i, m := range c.members {
		if m.e == nil {
			continue
		}
		l := uint64(m.e.Server.Leader())
		if l == 0 || (lead != 0 && l != lead) {
			return -1, false
		}
		lead = l
		if uint64(m.e.Server.MemberID()) == l {
			idx = i
		}
	}
	return idx, idx >= 0
}

// Compact compacts the cluster's history up to the current revision and
// returns that revision.
func (c *Cluster) Compact(t testing.TB, cli *clientv3.Client) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := cli.Get(ctx, "etcdtest-compact-probe")
	if err != nil {
		t.Fatalf("etcdtest: read revision: %v", err)
	}
	rev := resp.Header.Revision
	if _, err := cli.Compact(ctx, rev, clientv3.WithCompactPhysical()); err != nil {
		t.Fatalf("etcdtest: compact at %d: %v", rev, err)
	}
	return rev
}

func (c *Cluster) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, m := range c.members {
		if m.e != nil {
			m.e.Close()
			m.e = nil
		}
	}
}

// freePorts reserves n distinct loopback TCP ports by listening on port 0 and
// releases them for the caller. Another process could take one in between;
// a member that then fails to bind reports the port in its error.
func freePorts(n int) ([]int, error) {
	lns := make([]net.Listener, 0, n)
	defer func() {
		for _, ln := range lns {
			_ = ln.Close()
		}
	}()
	ports := make([]int, 0, n)
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("etcdtest: reserve a loopback port: %w", err)
		}
		lns = append(lns, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}
