package topology

import (
	"bytes"
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/regionsync/regionsync/internal/clients"
	"github.com/regionsync/regionsync/internal/config"
	"github.com/regionsync/regionsync/topology/etcdtest"
)

// TestNodesAndShow: three nodes (two in east, one in west) register, elect
// one leader per region, run leader-only work only on the leaders, and
// show the same picture through Node.Topology, Show and WriteText.
func TestNodesAndShow(t *testing.T) {
	c := etcdtest.Start(t, 3)
	cli := c.Client(t)
	prefix := uniquePrefix(t)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	specs, err := LoadSpecFile("testdata/specs-lab.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Apply(ctx, cli, prefix, specs, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Put(ctx, NewKeys(prefix).Region("broken"), "{"); err != nil {
		t.Fatal(err)
	}
	m, _ := testMetrics() // one Metrics shared by all nodes, as in regionsync dev
	var leaderWork [3]atomic.Int32
	nodes := make([]*Node, 3)
	for i, r := range []struct{ region, id string }{{"east", "east-1"}, {"east", "east-2"}, {"west", "west-1"}} {
		n, err := NewNode(NodeOptions{Etcd: c.ClientConfig(), Prefix: prefix, Region: r.region, WorkerID: r.id,
			Version: "test", SessionTTL: 2 * time.Second}, m, testLog())
		if err != nil {
			t.Fatal(err)
		}
		n.AddLeaderTask("count", func(ctx context.Context, l *Leader) error {
			leaderWork[i].Add(1)
			<-ctx.Done()
			return nil
		})
		nodes[i] = n
		start(t, n)
	}
	var topo Topology
	eventually(t, 60*time.Second, "every node sees 3 workers, a leader per region and a reachable quorum", func() bool {
		for _, n := range nodes {
			topo = n.Topology()
			le, err1 := topo.Leader("east")
			lw, err2 := topo.Leader("west")
			if len(topo.Workers) != 3 || len(topo.Regions) != 3 || err1 != nil || err2 != nil ||
				(le.Worker != "east-1" && le.Worker != "east-2") || lw.Worker != "west-1" ||
				topo.Health == nil || !topo.Health.QuorumReachable || len(topo.Errors) != 1 {
				return false
			}
		}
		return true
	})
	eastLeader, _ := topo.Leader("east")
	leaders := 0
	for i, n := range nodes {
		if n.IsLeader() {
			leaders++
		}
		if want := n.IsLeader(); (leaderWork[i].Load() > 0) != want {
			t.Errorf("node %s: leader %v but leader work ran %d times", n.WorkerID(), want, leaderWork[i].Load())
		}
	}
	if leaders != 2 {
		t.Errorf("%d nodes think they lead, want 2 (one per region)", leaders)
	}
	if s := topo.Summary("east"); s != "leader="+eastLeader.Worker+" workers=2 (east-1,east-2) malformed=1" {
		t.Errorf("summary: %q", s)
	}
	t.Logf("status line: east: %s; %s", topo.Summary("east"), topo.Health.Summary())

	shown, err := Show(ctx, cli, prefix, ShowOptions{Observer: "east"})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := shown.WriteText(&buf); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	t.Logf("topology show:\n%s", out)
	for _, want := range []string{
		"(linearizable read)",
		"east     primary    " + eastLeader.Worker,
		"west     secondary  west-1",
		"witness  witness    -",
		`etcd as seen from "east": quorum ok`,
		"m0 ", "m1 ", "m2 ",
		"malformed values (ignored):",
		"regions/broken (revision",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("show output lacks %q", want)
		}
	}
}

// TestNodeOverTLSWithAuth: a node whose client config comes from
// internal/clients.Etcd (TLS with a CA file, user/password) registers,
// leads and monitors health against an etcd with client TLS and auth
// enabled, as a user whose role may only read and write the prefix.
func TestNodeOverTLSWithAuth(t *testing.T) {
	caFile, certFile, keyFile := etcdtest.SelfSignedTLS(t)
	c := etcdtest.StartWith(t, 1, etcdtest.Options{CertFile: certFile, KeyFile: keyFile})
	prefix := uniquePrefix(t)
	tlsCfg := config.TLS{Enabled: true, CAFile: caFile}
	adminCfg, err := clients.Etcd("east", config.Etcd{Endpoints: c.Endpoints, TLS: tlsCfg})
	if err != nil {
		t.Fatal(err)
	}
	admin, err := clientv3.New(adminCfg)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for _, step := range []struct {
		what string
		do   func() error
	}{
		{"add root", func() error { _, err := admin.UserAdd(ctx, "root", "root-pw"); return err }},
		{"grant root", func() error { _, err := admin.UserGrantRole(ctx, "root", "root"); return err }},
		{"add role", func() error { _, err := admin.RoleAdd(ctx, "regionsync"); return err }},
		{"grant prefix", func() error {
			_, err := admin.RoleGrantPermission(ctx, "regionsync", prefix, clientv3.GetPrefixRangeEnd(prefix), clientv3.PermissionType(clientv3.PermReadWrite))
			return err
		}},
		{"add user", func() error { _, err := admin.UserAdd(ctx, "rs", "rs-pw"); return err }},
		{"grant user", func() error { _, err := admin.UserGrantRole(ctx, "rs", "regionsync"); return err }},
		{"enable auth", func() error { _, err := admin.AuthEnable(ctx); return err }},
	} {
		if err := step.do(); err != nil {
			t.Fatalf("%s: %v", step.what, err)
		}
	}

	ecfg, err := clients.Etcd("east", config.Etcd{Endpoints: c.Endpoints, Username: "rs", Password: config.NewSecret("rs-pw"), TLS: tlsCfg})
	if err != nil {
		t.Fatal(err)
	}
	// The default 5 s TTL: with auth on, clientv3 authenticates again for every
	// new stream and etcd applies each Authenticate (bcrypt) through raft;
	// under -race each took 1.3-2.1 s and stalled lease renewals past a 2 s TTL.
	n, err := NewNode(NodeOptions{Etcd: ecfg, Prefix: prefix, Region: "east", WorkerID: "east-tls"}, nil, testLog())
	if err != nil {
		t.Fatal(err)
	}
	wrote := make(chan error, 1)
	n.AddLeaderTask("write", func(ctx context.Context, l *Leader) error {
		_, err := l.Put(ctx, prefix+"leader-only", "x")
		wrote <- err
		return err
	})
	start(t, n)
	select {
	case err := <-wrote:
		if err != nil {
			t.Fatalf("fenced write over TLS with auth: %v", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("no leader-only write within 60 s")
	}
	eventually(t, 30*time.Second, "the node sees itself and a healthy etcd", func() bool {
		topo := n.Topology()
		return len(topo.Workers) == 1 && topo.Health != nil && topo.Health.QuorumReachable &&
			len(topo.Health.Members) == 1 && topo.Health.Members[0].Up && topo.Health.Members[0].ReadOK
	})
	t.Logf("over TLS as user rs: %s; %s", n.Topology().Summary("east"), n.Health().Summary())

	// Without the password the same config is refused.
	bad := ecfg
	bad.Password = "wrong"
	if cli, err := clientv3.New(bad); err == nil {
		cli.Close()
		t.Error("a wrong password was accepted")
	}
}
