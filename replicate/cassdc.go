package replicate

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"
)

// CassandraDC is one region's Cassandra data center as the observer reaches
// it: a cluster config whose host filter keeps every query in DC (see
// internal/clients.Cassandra), so a LOCAL_* probe never lands elsewhere.
type CassandraDC struct {
	Region    string
	DC        string
	Cluster   *gocql.ClusterConfig
	Keyspaces []string
}

// NodeFigures are one node's liveness as the observer sees it.
type NodeFigures struct {
	HostID  string `json:"hostId"`
	Address string `json:"address"`
	DC      string `json:"dc"`
	Up      bool   `json:"up"`
	// DownSince is when the observer first saw the node down.
	DownSince *time.Time `json:"downSince,omitempty"`
	// Reason the node counts as down: the probe's error, the driver's or
	// gossip's view.
	Reason       string `json:"reason,omitempty"`
	ProbeSeconds Figure `json:"probeSeconds"`
	// SchemaVersion the node answered with (empty when down).
	SchemaVersion string `json:"schemaVersion,omitempty"`
}

// HintFigures are the hints the nodes of one DC hold for the nodes of
// another, from system_views.pending_hints on each node.
type HintFigures struct {
	Files int `json:"files"`
	// Bytes when the server reports total_size (Cassandra 5.1+), else unknown.
	Bytes Figure `json:"bytes"`
	// OldestAgeSeconds: age of the oldest pending hint, 0 with none.
	OldestAgeSeconds Figure `json:"oldestAgeSeconds"`
	// HostsAsked answered the query; HostsFailed did not.
	HostsAsked  int `json:"hostsAsked"`
	HostsFailed int `json:"hostsFailed"`
}

// dcView is what one sample learned from one DC's session.
type dcView struct {
	err    error // the DC could not be reached at all
	nodes  []NodeFigures
	hints  map[string]*HintFigures // target DC → hints held here for it
	gossip map[string]string       // host ID → gossip STATUS, as this DC's nodes see every node
	ring   *ring
	ks     map[string]map[string]int // keyspace → dc → rf
	ksErr  map[string]string         // keyspace → why its replication is unknown
}

// dcSession keeps one DC's session and the nodes' down-since times.
type dcSession struct {
	dc           CassandraDC
	probeTimeout time.Duration

	mu        sync.Mutex
	sess      *gocql.Session
	downSince map[string]time.Time
}

func (d *dcSession) session() (*gocql.Session, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.sess != nil && !d.sess.Closed() {
		return d.sess, nil
	}
	s, err := d.dc.Cluster.CreateSession()
	if err != nil {
		return nil, fmt.Errorf("dc %s (region %s, contact points %v): %w", d.dc.DC, d.dc.Region, d.dc.Cluster.Hosts, err)
	}
	d.sess = s
	return s, nil
}

func (d *dcSession) close() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.sess != nil {
		d.sess.Close()
		d.sess = nil
	}
}

// sample probes every node of the DC the driver knows, reads the ring and
// keyspaces from a node that answered (the ring adds the DC's nodes the
// driver never connected to, as down), pending hints on each node that
// answered, and the gossip view.
func (d *dcSession) sample(ctx context.Context, now time.Time) dcView {
	v := dcView{}
	s, err := d.session()
	if err != nil {
		v.err = err
		return v
	}
	known := map[string]*gocql.HostInfo{}
	for _, h := range s.GetHosts() {
		if h.DataCenter() == d.dc.DC {
			known[h.HostID()] = h
		}
	}
	if len(known) == 0 {
		v.err = fmt.Errorf("dc %s: the driver knows no node of the DC (contact points %v)", d.dc.DC, d.dc.Cluster.Hosts)
		return v
	}
	v.nodes = d.probeAll(ctx, s, known)
	for _, n := range v.nodes {
		if !n.Up {
			continue
		}
		if r, ks, ksErr, err := readRing(ctx, s, n.HostID, 2*d.probeTimeout); err == nil {
			v.ring, v.ks, v.ksErr = r, ks, ksErr
			break
		}
	}
	if v.ring != nil {
		for _, rn := range v.ring.nodes {
			if _, ok := known[rn.HostID]; !ok && rn.DC == d.dc.DC {
				v.nodes = append(v.nodes, NodeFigures{HostID: rn.HostID, Address: rn.Address, DC: d.dc.DC, ProbeSeconds: UnknownFigure(),
					Reason: "in the ring but unknown to the driver (never connected)"})
			}
		}
	}
	d.markDown(v.nodes, now)
	v.hints = d.readHints(ctx, s, v.nodes, now)
	v.gossip = readGossip(ctx, s, v.nodes, d.probeTimeout)
	return v
}

// probeAll asks every node for its schema version, in parallel, each with
// the probe timeout.
func (d *dcSession) probeAll(ctx context.Context, s *gocql.Session, known map[string]*gocql.HostInfo) []NodeFigures {
	out := make([]NodeFigures, 0, len(known))
	var (
		mu sync.Mutex
		wg sync.WaitGroup
	)
	for id, h := range known {
		wg.Add(1)
		go func() {
			defer wg.Done()
			nf := NodeFigures{HostID: id, Address: h.ConnectAddress().String(), DC: d.dc.DC, ProbeSeconds: UnknownFigure()}
			start := time.Now()
			pctx, cancel := context.WithTimeout(ctx, d.probeTimeout)
			var schema gocql.UUID
			err := s.Query("SELECT schema_version FROM system.local").SetHostID(id).
				Consistency(gocql.One).RetryPolicy(nil).ScanContext(pctx, &schema)
			cancel()
			if err != nil {
				nf.Reason = "probe failed: " + probeError(err, d.probeTimeout)
				if !h.IsUp() {
					nf.Reason += " (the driver marks it down)"
				}
			} else {
				nf.Up, nf.ProbeSeconds, nf.SchemaVersion = true, Figure(time.Since(start).Seconds()), schema.String()
			}
			mu.Lock()
			out = append(out, nf)
			mu.Unlock()
		}()
	}
	wg.Wait()
	sort.Slice(out, func(i, j int) bool { return out[i].Address < out[j].Address })
	return out
}

// markDown sets DownSince: when this observer first saw each node down.
func (d *dcSession) markDown(nodes []NodeFigures, now time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.downSince == nil {
		d.downSince = map[string]time.Time{}
	}
	for i := range nodes {
		n := &nodes[i]
		if n.Up {
			delete(d.downSince, n.HostID)
			continue
		}
		since, ok := d.downSince[n.HostID]
		if !ok {
			since = now
			d.downSince[n.HostID] = since
		}
		n.DownSince = &since
	}
}

func probeError(err error, timeout time.Duration) string {
	if errors.Is(err, context.DeadlineExceeded) {
		return "no answer within " + timeout.String()
	}
	return err.Error()
}

// readRing reads the ring (system.local and system.peers_v2 of host) and
// the replication of every keyspace.
func readRing(ctx context.Context, s *gocql.Session, host string, timeout time.Duration) (*ring, map[string]map[string]int, map[string]string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var (
		nodes       []ringNode
		partitioner string
		n           ringNode
		id          gocql.UUID
		ip          net.IP
	)
	q := s.Query("SELECT host_id, data_center, rack, tokens, partitioner, broadcast_address FROM system.local").SetHostID(host).Consistency(gocql.One)
	if err := q.ScanContext(ctx, &id, &n.DC, &n.Rack, &n.Tokens, &partitioner, &ip); err != nil {
		return nil, nil, nil, fmt.Errorf("system.local: %w", err)
	}
	n.HostID, n.Address = id.String(), ip.String()
	nodes = append(nodes, n)
	if !supportedPartitioner(partitioner) {
		return nil, nil, nil, fmt.Errorf("partitioner %s is not supported (Murmur3 or Random)", partitioner)
	}
	iter := s.Query("SELECT host_id, data_center, rack, tokens, peer FROM system.peers_v2").SetHostID(host).Consistency(gocql.One).IterContext(ctx)
	for {
		var p ringNode
		if !iter.Scan(&id, &p.DC, &p.Rack, &p.Tokens, &ip) {
			break
		}
		p.HostID, p.Address = id.String(), ip.String()
		nodes = append(nodes, p)
	}
	if err := iter.Close(); err != nil {
		return nil, nil, nil, fmt.Errorf("system.peers_v2: %w", err)
	}
	r, err := newRing(nodes)
	if err != nil {
		return nil, nil, nil, err
	}
	ks, ksErr := map[string]map[string]int{}, map[string]string{}
	iter = s.Query("SELECT keyspace_name, replication FROM system_schema.keyspaces").SetHostID(host).Consistency(gocql.One).IterContext(ctx)
	var (
		name string
		repl map[string]string
	)
	for iter.Scan(&name, &repl) {
		m, err := parseReplication(repl)
		if err != nil {
			ksErr[name] = err.Error()
		} else {
			ks[name] = m
		}
		repl = nil
	}
	if err := iter.Close(); err != nil {
		return nil, nil, nil, fmt.Errorf("system_schema.keyspaces: %w", err)
	}
	return r, ks, ksErr, nil
}

// parseReplication reads a keyspace's replication map: DC → replication
// factor under NetworkTopologyStrategy ("3" or "3/1" with transient
// replicas: the full replicas count). Other strategies are not DC-aware.
func parseReplication(m map[string]string) (map[string]int, error) {
	class := m["class"]
	if !strings.HasSuffix(class, "NetworkTopologyStrategy") {
		return nil, fmt.Errorf("replication class %s is not NetworkTopologyStrategy: replicas per DC are undefined", class)
	}
	out := map[string]int{}
	for k, v := range m {
		if k == "class" {
			continue
		}
		full, _, _ := strings.Cut(v, "/")
		rf, err := strconv.Atoi(full)
		if err != nil {
			return nil, fmt.Errorf("replication factor %q for dc %s: %w", v, k, err)
		}
		out[k] = rf
	}
	return out, nil
}

// readHints asks every node that answered the probe for the hints it holds,
// summed per target DC.
func (d *dcSession) readHints(ctx context.Context, s *gocql.Session, nodes []NodeFigures, now time.Time) map[string]*HintFigures {
	out := map[string]*HintFigures{}
	asked, failed := 0, 0
	type row struct {
		dc     string
		files  int
		size   Figure
		oldest time.Time
	}
	var rows []row
	for _, n := range nodes {
		if !n.Up {
			continue
		}
		asked++
		qctx, cancel := context.WithTimeout(ctx, d.probeTimeout)
		iter := s.Query("SELECT * FROM system_views.pending_hints").SetHostID(n.HostID).Consistency(gocql.One).RetryPolicy(nil).IterContext(qctx)
		for {
			m := map[string]any{}
			if !iter.MapScan(m) {
				break
			}
			r := row{size: UnknownFigure()}
			r.dc, _ = m["dc"].(string)
			r.files, _ = m["files"].(int)
			if sz, ok := m["total_size"].(int64); ok {
				r.size = Figure(sz)
			}
			r.oldest, _ = m["oldest"].(time.Time)
			rows = append(rows, r)
		}
		if iter.Close() != nil {
			failed++
		}
		cancel()
	}
	for _, r := range rows {
		h := out[r.dc]
		if h == nil {
			h = &HintFigures{Bytes: UnknownFigure(), OldestAgeSeconds: 0}
			out[r.dc] = h
		}
		h.Files += r.files
		if r.size.Known() {
			if !h.Bytes.Known() {
				h.Bytes = 0
			}
			h.Bytes += r.size
		}
		if !r.oldest.IsZero() && r.files > 0 {
			h.OldestAgeSeconds = max(h.OldestAgeSeconds, Figure(now.Sub(r.oldest).Seconds()))
		}
	}
	for _, h := range out {
		h.HostsAsked, h.HostsFailed = asked, failed
	}
	// Targets without a row: no hints, as far as the nodes that answered know.
	out[""] = &HintFigures{Bytes: 0, HostsAsked: asked, HostsFailed: failed}
	return out
}

// readGossip reads system_views.gossip_info from the first node that
// answers: every node's gossip STATUS (NORMAL, shutdown, LEAVING, …).
func readGossip(ctx context.Context, s *gocql.Session, nodes []NodeFigures, timeout time.Duration) map[string]string {
	for _, n := range nodes {
		if !n.Up {
			continue
		}
		qctx, cancel := context.WithTimeout(ctx, timeout)
		iter := s.Query("SELECT * FROM system_views.gossip_info").SetHostID(n.HostID).Consistency(gocql.One).RetryPolicy(nil).IterContext(qctx)
		out := map[string]string{}
		for {
			m := map[string]any{}
			if !iter.MapScan(m) {
				break
			}
			st, _ := m["status"].(string)
			st, _, _ = strings.Cut(st, ",") // "NORMAL,<token>"
			switch id := m["host_id"].(type) {
			case gocql.UUID:
				out[id.String()] = st
			case string:
				out[id] = st
			}
		}
		err := iter.Close()
		cancel()
		if err == nil {
			return out
		}
	}
	return nil
}
