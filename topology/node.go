package topology

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"golang.org/x/sync/errgroup"
)

// NodeOptions configure a Node: one worker's whole view of the topology.
type NodeOptions struct {
	// Etcd is the client config, built by internal/clients.Etcd (TLS,
	// user/password). Required: at least one endpoint.
	Etcd clientv3.Config
	// Prefix of regionsync's keys (config etcd_prefix). Default DefaultPrefix.
	Prefix string
	// Region this worker runs in. Required.
	Region string
	// WorkerID, unique across the deployment. Default "<hostname>-<pid>".
	WorkerID string
	// Version of regionsync, recorded in the presence value.
	Version string
	// SessionTTL of the worker's lease. Default 5 s (see MemberOptions).
	SessionTTL time.Duration
	// Observer: register presence, watch and check health, never lead.
	Observer bool
	// Health probing; Region and ReadKey are filled in.
	Health HealthOptions
	// Watch tuning for the three watches; Name and Region are filled in.
	Watch WatchOptions
}

// Node is what a regionsync worker runs for topology: it connects to etcd,
// registers the worker and campaigns for its region (Member), keeps live
// views of the registry, the workers and the leaders (three Watchers), and
// monitors etcd's health (HealthMonitor), all until its context ends.
type Node struct {
	opts NodeOptions
	m    *Metrics
	base *slog.Logger // for the components, which add their own attributes
	log  *slog.Logger

	started atomic.Bool
	mu      sync.Mutex
	tasks   []leaderTask
	member  *Member
	regions *Watcher[RegionSpec]
	workers *Watcher[Worker]
	leaders *Watcher[Candidate]
	health  *HealthMonitor
}

// NewNode checks the options and returns a node; it does no I/O. A nil m or
// log means no metrics or logs.
func NewNode(o NodeOptions, m *Metrics, log *slog.Logger) (*Node, error) {
	if len(o.Etcd.Endpoints) == 0 {
		return nil, errors.New("topology: node: no etcd endpoints")
	}
	mo := MemberOptions{Prefix: o.Prefix, Region: o.Region, WorkerID: o.WorkerID, SessionTTL: o.SessionTTL}
	if err := mo.defaults(); err != nil {
		return nil, fmt.Errorf("topology: node options: %w", err)
	}
	o.WorkerID, o.SessionTTL = mo.WorkerID, mo.SessionTTL
	o.Prefix = NewKeys(o.Prefix).Prefix
	o.Health.Region = o.Region
	if o.Health.ReadKey == "" {
		o.Health.ReadKey = o.Prefix + "health"
	}
	o.Watch.Region = o.Region
	base := orDiscard(log)
	return &Node{opts: o, m: orNewMetrics(m), base: base, log: base.With("region", o.Region, "worker", o.WorkerID)}, nil
}

// WorkerID is this worker's id (after defaults).
func (n *Node) WorkerID() string { return n.opts.WorkerID }

// AddLeaderTask adds leader-only work (see LeaderFunc). Call it before Run;
// tasks added later start with the next leadership term.
func (n *Node) AddLeaderTask(name string, fn LeaderFunc) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.tasks = append(n.tasks, leaderTask{name, fn})
	if n.member != nil {
		n.member.AddLeaderTask(name, fn)
	}
}

// Run connects to etcd (retrying with a backoff of up to 5 s while the
// connection or authentication fails), runs the member, the watches and
// the health monitor until ctx ends, then closes the client and returns nil.
// It returns an error only if a component does (which they do only on
// misuse, e.g. Run called twice).
func (n *Node) Run(ctx context.Context) error {
	if !n.started.CompareAndSwap(false, true) {
		return fmt.Errorf("topology: node %q: Run called twice", n.opts.WorkerID)
	}
	cli, err := n.connect(ctx)
	if err != nil {
		return nil // ctx ended
	}
	defer cli.Close()
	member, err := NewMember(cli, MemberOptions{Prefix: n.opts.Prefix, Region: n.opts.Region, WorkerID: n.opts.WorkerID,
		Version: n.opts.Version, SessionTTL: n.opts.SessionTTL, Observer: n.opts.Observer}, n.m, n.base)
	if err != nil {
		return err
	}
	n.mu.Lock()
	for _, t := range n.tasks {
		member.AddLeaderTask(t.name, t.fn)
	}
	n.member = member
	n.regions = NewRegionWatcher(cli, n.opts.Prefix, n.opts.Watch, n.m, n.base)
	n.workers = NewWorkerWatcher(cli, n.opts.Prefix, n.opts.Watch, n.m, n.base)
	n.leaders = NewLeaderWatcher(cli, n.opts.Prefix, n.opts.Watch, n.m, n.base)
	n.health = NewHealthMonitor(cli, n.opts.Health, n.m, n.base)
	parts := []interface{ Run(context.Context) error }{n.member, n.regions, n.workers, n.leaders, n.health}
	n.mu.Unlock()
	g, gctx := errgroup.WithContext(ctx)
	for _, p := range parts {
		g.Go(func() error { return p.Run(gctx) })
	}
	return g.Wait()
}

func (n *Node) connect(ctx context.Context) (*clientv3.Client, error) {
	bo := backoff{min: 200 * time.Millisecond, max: 5 * time.Second}
	for {
		cfg := n.opts.Etcd
		cli, err := clientv3.New(cfg)
		if err == nil {
			return cli, nil
		}
		n.log.Warn("topology: etcd client failed to start; retrying", "endpoints", cfg.Endpoints, "err", err)
		if !sleep(ctx, bo.next()) {
			return nil, ctx.Err()
		}
	}
}

// Topology returns the live view: registry, workers and leaders as last
// watched, and etcd's health. Before Run has read anything it is empty
// (Revision 0).
func (n *Node) Topology() Topology {
	n.mu.Lock()
	rw, ww, lw, hm := n.regions, n.workers, n.leaders, n.health
	n.mu.Unlock()
	if rw == nil {
		return Topology{Prefix: n.opts.Prefix}
	}
	rs, _ := rw.Current()
	ws, _ := ww.Current()
	ls, _ := lw.Current()
	errs := append(append(append([]ValueError(nil), rs.Errors...), ws.Errors...), ls.Errors...)
	t := build(n.opts.Prefix, max(rs.Revision, ws.Revision, ls.Revision), rs.Items, ws.Items, ls.Items, errs)
	h := hm.Health()
	t.Health = &h
	return t
}

// Health returns etcd's health as seen from this node (zero before Run).
func (n *Node) Health() Health {
	n.mu.Lock()
	hm := n.health
	n.mu.Unlock()
	if hm == nil {
		return Health{Observer: n.opts.Region}
	}
	return hm.Health()
}

// Leader returns the current term's handle, or nil when this worker does not
// lead its region.
func (n *Node) Leader() *Leader {
	n.mu.Lock()
	mb := n.member
	n.mu.Unlock()
	if mb == nil {
		return nil
	}
	return mb.Leader()
}

// IsLeader says whether this worker leads its region now.
func (n *Node) IsLeader() bool { return n.Leader() != nil }
