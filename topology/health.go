package topology

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Health is the etcd cluster as seen from one process (one region).
type Health struct {
	// Observer is the region this view is from.
	Observer string
	// CheckedAt is when the newest probe result arrived (zero before any).
	CheckedAt time.Time
	// QuorumReachable: a linearizable read through at least one endpoint,
	// started within the last Timeout+2*Interval, succeeded, and it is the
	// newest finished read of that endpoint. It needs a leader and a quorum
	// that this process can reach.
	QuorumReachable bool
	// QuorumSince is when QuorumReachable last changed (zero before the first
	// verdict).
	QuorumSince time.Time
	// QuorumError is why no read succeeded, when QuorumReachable is false.
	QuorumError string
	// ClusterID from the newest Status answer.
	ClusterID uint64
	// Leader is the raft leader's member id reported by the answering
	// member with the highest raft term; 0 when none reports one.
	Leader uint64
	// LeaderName is the leader's member name when the member list has it.
	LeaderName string
	// MembersError is why the member list could not be read (empty when it
	// could, or before the first attempt).
	MembersError string
	// Members: one per member of the member list, plus one per configured
	// endpoint that did not answer as any listed member. Sorted by name, then
	// endpoint.
	Members []MemberHealth
}

// MemberHealth is one etcd member as seen through one endpoint.
type MemberHealth struct {
	ID         uint64
	Name       string
	ClientURLs []string
	IsLearner  bool
	// Endpoint is the configured endpoint this member answers at; empty when
	// the member is not among this process's endpoints (then it is not
	// probed, and Up is false with Error saying so).
	Endpoint string
	// Up: the newest Maintenance.Status call to Endpoint succeeded.
	Up            bool
	Error         string // of the newest Status call, when not Up
	StatusLatency time.Duration
	// IsLeader: the member said it is the raft leader.
	IsLeader         bool
	RaftTerm         uint64
	RaftIndex        uint64
	RaftAppliedIndex uint64
	DBSize           int64
	Version          string
	// Alarms the member reported (e.g. NOSPACE).
	Alarms []string
	// ReadOK: the newest linearizable read through this endpoint succeeded.
	ReadOK      bool
	ReadError   string
	ReadLatency time.Duration
	CheckedAt   time.Time
}

// HealthOptions tune a HealthMonitor. Zero values mean the defaults.
type HealthOptions struct {
	// Region observing, for metrics labels and Health.Observer.
	Region string
	// Interval between probes of each endpoint. Probes start on this
	// schedule even while earlier ones are still waiting, so a recovery shows
	// within about Interval. Default 250 ms.
	Interval time.Duration
	// Timeout of each probe. A lost quorum shows within about
	// Interval+Timeout. Default 1 s.
	Timeout time.Duration
	// MemberListInterval: how often the member list is read (serializable,
	// so it works without a quorum). Default 5 s.
	MemberListInterval time.Duration
	// ReadKey is read linearizably (count only) to test the quorum. Default
	// DefaultPrefix+"health".
	ReadKey string
}

func (o *HealthOptions) defaults() {
	if o.Interval <= 0 {
		o.Interval = 250 * time.Millisecond
	}
	if o.Timeout <= 0 {
		o.Timeout = time.Second
	}
	if o.MemberListInterval <= 0 {
		o.MemberListInterval = 5 * time.Second
	}
	if o.ReadKey == "" {
		o.ReadKey = DefaultPrefix + "health"
	}
}

// HealthMonitor probes every endpoint of a client: Maintenance.Status (member
// id, leader, raft term and index, latency) and a linearizable read (is the
// quorum reachable through it), each over its own connection to that one
// endpoint, every Interval; and the member list every MemberListInterval.
// Results are exported as metrics and as Health.
type HealthMonitor struct {
	cli  *clientv3.Client
	opts HealthOptions
	m    *Metrics
	log  *slog.Logger

	started atomic.Bool
	mu      sync.Mutex
	eps     map[string]*endpointState
	members []memberInfo
	memErr  string
	quorum  bool
	since   time.Time
	checked time.Time
	qErr    string
}

type memberInfo struct {
	id         uint64
	name       string
	clientURLs []string
	learner    bool
}

type endpointState struct {
	status, read probeResult
}

type probeResult struct {
	start   time.Time // when the probe began; newer starts win
	end     time.Time
	latency time.Duration
	err     error
	status  *clientv3.StatusResponse
}

// NewHealthMonitor returns a monitor of cli's endpoints (as configured when
// Run starts); it does no I/O. The client stays the caller's to close,
// after Run returned. A nil m or log means no metrics or logs.
func NewHealthMonitor(cli *clientv3.Client, o HealthOptions, m *Metrics, log *slog.Logger) *HealthMonitor {
	o.defaults()
	return &HealthMonitor{cli: cli, opts: o, m: orNewMetrics(m), log: orDiscard(log).With("region", o.Region), eps: map[string]*endpointState{}}
}

// Run probes until ctx is cancelled, then closes its connections, waits for
// in-flight probes (each bounded by Timeout) and returns nil. Probe failures
// are results, not errors; the only error is calling Run twice or failing to
// set up a connection.
func (h *HealthMonitor) Run(ctx context.Context) error {
	if !h.started.CompareAndSwap(false, true) {
		return fmt.Errorf("topology: health monitor of region %q: Run called twice", h.opts.Region)
	}
	eps := h.cli.Endpoints()
	var wg sync.WaitGroup
	defer wg.Wait()
	for _, ep := range eps {
		conn, err := h.cli.Dial(ep)
		if err != nil {
			return fmt.Errorf("topology: health: dial %s: %w", ep, err)
		}
		h.mu.Lock()
		h.eps[ep] = &endpointState{}
		h.mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer conn.Close()
			h.probeLoop(ctx, ep, pb.NewMaintenanceClient(conn), pb.NewKVClient(conn), conn.ResetConnectBackoff)
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(h.opts.MemberListInterval)
		defer t.Stop()
		for {
			h.listMembers(ctx)
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	t := time.NewTicker(h.opts.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			h.evaluate(time.Now()) // a quorum verdict ages even when no probe finishes
		}
	}
}

// probeLoop starts a status and a read probe of ep every Interval, without
// waiting for earlier ones, at most Timeout/Interval+2 at a time.
func (h *HealthMonitor) probeLoop(ctx context.Context, ep string, mt pb.MaintenanceClient, kv pb.KVClient, resetBackoff func()) {
	maxInFlight := int32(h.opts.Timeout/h.opts.Interval) + 2
	var inFlight atomic.Int32
	var wg sync.WaitGroup
	defer wg.Wait()
	t := time.NewTicker(h.opts.Interval)
	defer t.Stop()
	for {
		if inFlight.Load() < maxInFlight {
			inFlight.Add(1)
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer inFlight.Add(-1)
				if !h.probe(ctx, ep, mt, kv) {
					resetBackoff() // reconnect at the next probe, not after gRPC's growing backoff
				}
			}()
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// probe runs one status and one read of ep concurrently and records them;
// it reports whether both succeeded.
func (h *HealthMonitor) probe(ctx context.Context, ep string, mt pb.MaintenanceClient, kv pb.KVClient) bool {
	pctx, cancel := context.WithTimeout(ctx, h.opts.Timeout)
	defer cancel()
	start := time.Now()
	var st, rd probeResult
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		st = probeResult{start: start}
		resp, err := mt.Status(pctx, &pb.StatusRequest{})
		st.end, st.err = time.Now(), err
		if err == nil {
			st.status = (*clientv3.StatusResponse)(resp)
		}
	}()
	go func() {
		defer wg.Done()
		rd = probeResult{start: start}
		_, err := kv.Range(pctx, &pb.RangeRequest{Key: []byte(h.opts.ReadKey), CountOnly: true})
		rd.end, rd.err = time.Now(), err
	}()
	wg.Wait()
	if ctx.Err() != nil {
		return true // shutting down: not a result
	}
	st.latency, rd.latency = st.end.Sub(start), rd.end.Sub(start)
	h.record(ep, st, rd)
	return st.err == nil && rd.err == nil
}

func (h *HealthMonitor) record(ep string, st, rd probeResult) {
	r := h.opts.Region
	for _, x := range []struct {
		op  string
		res probeResult
	}{{"status", st}, {"read", rd}} {
		if x.res.err != nil {
			h.m.endpointErrors.WithLabelValues(r, ep, x.op).Inc()
		} else {
			h.m.endpointLatency.WithLabelValues(r, ep, x.op).Observe(x.res.latency.Seconds())
		}
	}
	h.mu.Lock()
	s := h.eps[ep]
	if st.start.After(s.status.start) {
		s.status = st
		h.m.memberUp.WithLabelValues(r, ep).Set(b2f(st.err == nil))
		if st.status != nil {
			h.m.memberIsLeader.WithLabelValues(r, ep).Set(b2f(st.status.Leader != 0 && st.status.Leader == st.status.Header.MemberId))
			h.m.raftTerm.WithLabelValues(r, ep).Set(float64(st.status.RaftTerm))
			h.m.raftIndex.WithLabelValues(r, ep).Set(float64(st.status.RaftIndex))
			h.m.raftApplied.WithLabelValues(r, ep).Set(float64(st.status.RaftAppliedIndex))
		} else {
			h.m.memberIsLeader.WithLabelValues(r, ep).Set(0)
		}
	}
	if rd.start.After(s.read.start) {
		s.read = rd
	}
	h.mu.Unlock()
	h.evaluate(time.Now())
}

// evaluate recomputes the quorum verdict at now.
func (h *HealthMonitor) evaluate(now time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	fresh := now.Add(-(h.opts.Timeout + 2*h.opts.Interval))
	ok, checked, leader := false, time.Time{}, false
	var whys []string
	for _, ep := range sortedKeys(h.eps) {
		if st := h.eps[ep].status; st.status != nil && st.status.Leader != 0 && st.start.After(fresh) {
			leader = true
		}
		rd := h.eps[ep].read
		if rd.end.After(checked) {
			checked = rd.end
		}
		switch {
		case rd.start.IsZero():
		case rd.err == nil && rd.start.After(fresh):
			ok = true
		case rd.err != nil:
			whys = append(whys, fmt.Sprintf("via %s: %v", ep, rd.err))
		default:
			whys = append(whys, fmt.Sprintf("via %s: no answer since %s", ep, rd.end.Format(time.RFC3339Nano)))
		}
	}
	why := "no linearizable read finished yet"
	if len(whys) > 0 {
		why = "no linearizable read succeeded: " + strings.Join(whys, "; ")
	}
	if checked.IsZero() {
		return
	}
	h.checked = checked
	if ok != h.quorum || h.since.IsZero() {
		if !h.since.IsZero() || !ok {
			h.log.Warn("topology: etcd quorum reachability changed", "reachable", ok, "reason", why)
		}
		h.quorum, h.since = ok, now
	}
	h.qErr = ""
	if !ok {
		h.qErr = why
	}
	h.m.quorum.WithLabelValues(h.opts.Region).Set(b2f(ok))
	h.m.hasLeader.WithLabelValues(h.opts.Region).Set(b2f(leader))
}

// listMembers reads the member list serializably (it answers without a
// quorum).
func (h *HealthMonitor) listMembers(ctx context.Context) {
	lctx, cancel := context.WithTimeout(ctx, h.opts.Timeout)
	defer cancel()
	resp, err := h.cli.MemberList(lctx, clientv3.WithSerializable())
	h.mu.Lock()
	defer h.mu.Unlock()
	if err != nil {
		if ctx.Err() == nil {
			h.memErr = err.Error()
		}
		return
	}
	h.memErr = ""
	h.members = h.members[:0]
	for _, m := range resp.Members {
		h.members = append(h.members, memberInfo{id: m.ID, name: m.Name, clientURLs: m.ClientURLs, learner: m.IsLearner})
	}
	h.m.members.WithLabelValues(h.opts.Region).Set(float64(len(resp.Members)))
}

// Health returns the current view. Safe for concurrent use.
func (h *HealthMonitor) Health() Health {
	h.mu.Lock()
	defer h.mu.Unlock()
	hl := Health{Observer: h.opts.Region, CheckedAt: h.checked, QuorumReachable: h.quorum, QuorumSince: h.since,
		QuorumError: h.qErr, MembersError: h.memErr}
	byID := map[uint64]*MemberHealth{}
	for _, m := range h.members {
		mh := &MemberHealth{ID: m.id, Name: m.name, ClientURLs: m.clientURLs, IsLearner: m.learner,
			Error: "not among this process's etcd endpoints"}
		byID[m.id] = mh
	}
	var extra []*MemberHealth
	var bestTerm uint64
	for _, ep := range sortedKeys(h.eps) {
		s := h.eps[ep]
		var mh *MemberHealth
		if st := s.status.status; st != nil {
			if st.Header.ClusterId != 0 {
				hl.ClusterID = st.Header.ClusterId
			}
			if st.Leader != 0 && st.RaftTerm >= bestTerm {
				hl.Leader, bestTerm = st.Leader, st.RaftTerm
			}
			mh = byID[st.Header.MemberId]
			if mh == nil {
				mh = &MemberHealth{ID: st.Header.MemberId}
				byID[st.Header.MemberId] = mh
			}
		} else {
			mh = matchEndpoint(byID, ep)
		}
		if mh == nil {
			mh = &MemberHealth{}
			extra = append(extra, mh)
		}
		mh.Endpoint = ep
		mh.Up, mh.Error, mh.StatusLatency, mh.CheckedAt = s.status.err == nil && s.status.status != nil, errString(s.status.err), s.status.latency, s.status.end
		if s.status.start.IsZero() {
			mh.Error = "not probed yet"
		}
		if st := s.status.status; st != nil {
			mh.IsLeader = st.Leader != 0 && st.Leader == st.Header.MemberId
			mh.RaftTerm, mh.RaftIndex, mh.RaftAppliedIndex = st.RaftTerm, st.RaftIndex, st.RaftAppliedIndex
			mh.DBSize, mh.Version, mh.Alarms = st.DbSize, st.Version, st.Errors
			mh.IsLearner = mh.IsLearner || st.IsLearner
		}
		mh.ReadOK, mh.ReadError, mh.ReadLatency = s.read.err == nil && !s.read.start.IsZero(), errString(s.read.err), s.read.latency
	}
	for _, mh := range byID {
		if mh.ID == hl.Leader && hl.Leader != 0 {
			hl.LeaderName = mh.Name
		}
		hl.Members = append(hl.Members, *mh)
	}
	for _, mh := range extra {
		hl.Members = append(hl.Members, *mh)
	}
	sort.Slice(hl.Members, func(i, j int) bool {
		a, b := hl.Members[i], hl.Members[j]
		if a.Name != b.Name {
			return a.Name < b.Name
		}
		return a.Endpoint < b.Endpoint
	})
	return hl
}

// matchEndpoint finds the listed member whose client URLs include ep.
func matchEndpoint(byID map[uint64]*MemberHealth, ep string) *MemberHealth {
	for _, mh := range byID {
		for _, u := range mh.ClientURLs {
			if u == ep {
				return mh
			}
		}
	}
	return nil
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// CheckHealth probes cli's endpoints once (status and linearizable read,
// each bounded by timeout, all at once) and reads the member list, and
// returns the result; for one-shot use such as `regionsync topology show`.
// It never fails: what did not answer is described in the Health.
func CheckHealth(ctx context.Context, cli *clientv3.Client, observer string, timeout time.Duration, m *Metrics, log *slog.Logger) Health {
	h := NewHealthMonitor(cli, HealthOptions{Region: observer, Timeout: timeout}, m, log)
	var wg sync.WaitGroup
	for _, ep := range cli.Endpoints() {
		conn, err := cli.Dial(ep)
		h.mu.Lock()
		h.eps[ep] = &endpointState{}
		h.mu.Unlock()
		if err != nil {
			now := time.Now()
			h.record(ep, probeResult{start: now, end: now, err: err}, probeResult{start: now, end: now, err: err})
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer conn.Close()
			h.probe(ctx, ep, pb.NewMaintenanceClient(conn), pb.NewKVClient(conn))
		}()
	}
	h.listMembers(ctx)
	wg.Wait()
	h.evaluate(time.Now())
	return h.Health()
}

// Summary is one line about etcd for status output: "quorum ok, leader
// etcd-east, 3/3 members up" or "QUORUM LOST (...)".
func (h Health) Summary() string {
	up := 0
	for _, m := range h.Members {
		if m.Up {
			up++
		}
	}
	if h.CheckedAt.IsZero() {
		return "etcd not checked yet"
	}
	leader := h.LeaderName
	if leader == "" && h.Leader != 0 {
		leader = fmt.Sprintf("%x", h.Leader)
	}
	if leader == "" {
		leader = "none"
	}
	if !h.QuorumReachable {
		return fmt.Sprintf("etcd QUORUM LOST (%s), leader %s, %d/%d members up", h.QuorumError, leader, up, len(h.Members))
	}
	return fmt.Sprintf("etcd quorum ok, leader %s, %d/%d members up", leader, up, len(h.Members))
}
