package topology

import (
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics of every topology component of a process. Create one per registry
// with NewMetrics and pass it to the constructors; every series carries the
// region the process observes from (label "region"), so the components of
// several regions (regionsync dev) share one Metrics.
type Metrics struct {
	// watches
	snapshots     *prometheus.CounterVec
	resyncs       *prometheus.CounterVec
	restarts      *prometheus.CounterVec
	watchRevision *prometheus.GaugeVec
	malformed     *prometheus.CounterVec
	malformedKeys *prometheus.GaugeVec

	// membership and election
	registered   *prometheus.GaugeVec
	isLeader     *prometheus.GaugeVec
	sessionsLost *prometheus.CounterVec
	terms        *prometheus.CounterVec
	fenced       *prometheus.CounterVec
	taskErrors   *prometheus.CounterVec

	// etcd health
	memberUp        *prometheus.GaugeVec
	memberIsLeader  *prometheus.GaugeVec
	raftTerm        *prometheus.GaugeVec
	raftIndex       *prometheus.GaugeVec
	raftApplied     *prometheus.GaugeVec
	endpointLatency *prometheus.HistogramVec
	endpointErrors  *prometheus.CounterVec
	quorum          *prometheus.GaugeVec
	members         *prometheus.GaugeVec
	hasLeader       *prometheus.GaugeVec
}

// NewMetrics creates the topology metrics and registers them with reg (never
// the global registry). It panics if they are already registered there, as
// prometheus.MustRegister does; call it once per registry.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	gauge := func(name, help string, labels ...string) *prometheus.GaugeVec {
		return prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help}, labels)
	}
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
	}
	m := &Metrics{
		snapshots: counter("regionsync_topology_watch_snapshots_total",
			"Coalesced snapshots a topology watch delivered.", "region", "watch"),
		resyncs: counter("regionsync_topology_watch_resyncs_total",
			"Full re-reads of a watched prefix; reason initial, compacted (the resume revision was compacted) or error.", "region", "watch", "reason"),
		restarts: counter("regionsync_topology_watch_restarts_total",
			"Watches re-established from the last revision + 1 after the stream ended (reason no_leader, closed or error).", "region", "watch", "reason"),
		watchRevision: gauge("regionsync_topology_watch_revision",
			"Revision up to which a topology watch has seen every change (its resume point minus one).", "region", "watch"),
		malformed: counter("regionsync_topology_malformed_values_total",
			"Values that could not be decoded and were ignored for their key; reason malformed (bad JSON or invalid record) or schema_version (unknown version).", "region", "watch", "reason"),
		malformedKeys: gauge("regionsync_topology_malformed_keys",
			"Keys whose current value is malformed (listed in the snapshot's Errors).", "region", "watch"),

		registered: gauge("regionsync_topology_worker_registered",
			"1 while this worker's presence key is written under a live session.", "region", "worker"),
		isLeader: gauge("regionsync_topology_leader",
			"1 while this worker is its region's leader (leader-only work may run).", "region", "worker"),
		sessionsLost: counter("regionsync_topology_sessions_lost_total",
			"Sessions (leases) that ended while the worker was running; it re-registers with a new one.", "region", "worker"),
		terms: counter("regionsync_topology_leader_terms_total",
			"Times this worker won its region's election.", "region", "worker"),
		fenced: counter("regionsync_topology_fenced_writes_rejected_total",
			"Leader-only writes refused because leadership was gone (where: local, before sending; etcd, the fence compare failed).", "region", "worker", "where"),
		taskErrors: counter("regionsync_topology_leader_task_errors_total",
			"Leader-only tasks that returned an error (the worker resigns and campaigns again).", "region", "worker", "task"),

		memberUp: gauge("regionsync_etcd_member_up",
			"1 when the last Status call to the etcd endpoint succeeded.", "region", "endpoint"),
		memberIsLeader: gauge("regionsync_etcd_member_is_leader",
			"1 when the member at the endpoint was the raft leader at its last Status.", "region", "endpoint"),
		raftTerm: gauge("regionsync_etcd_member_raft_term",
			"Raft term reported by the member at the endpoint.", "region", "endpoint"),
		raftIndex: gauge("regionsync_etcd_member_raft_index",
			"Raft index reported by the member at the endpoint.", "region", "endpoint"),
		raftApplied: gauge("regionsync_etcd_member_raft_applied_index",
			"Raft applied index reported by the member at the endpoint.", "region", "endpoint"),
		endpointLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "regionsync_etcd_endpoint_latency_seconds",
			Help:    "Latency of successful probes per etcd endpoint; op status (Maintenance.Status) or read (linearizable Get).",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}, []string{"region", "endpoint", "op"}),
		endpointErrors: counter("regionsync_etcd_endpoint_errors_total",
			"Failed or timed-out probes per etcd endpoint and op.", "region", "endpoint", "op"),
		quorum: gauge("regionsync_etcd_quorum_reachable",
			"1 when a linearizable read through at least one endpoint succeeded recently (the cluster has a leader and a quorum this process can reach).", "region"),
		members: gauge("regionsync_etcd_members",
			"Members in the etcd cluster's member list.", "region"),
		hasLeader: gauge("regionsync_etcd_has_leader",
			"1 when a member answered Status recently (within Timeout+2*Interval) naming a raft leader.", "region"),
	}
	reg.MustRegister(m.snapshots, m.resyncs, m.restarts, m.watchRevision, m.malformed, m.malformedKeys,
		m.registered, m.isLeader, m.sessionsLost, m.terms, m.fenced, m.taskErrors,
		m.memberUp, m.memberIsLeader, m.raftTerm, m.raftIndex, m.raftApplied, m.endpointLatency,
		m.endpointErrors, m.quorum, m.members, m.hasLeader)
	return m
}

// b2f turns a bool into a gauge value.
func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// orNewMetrics returns m, or metrics on a private registry when m is nil
// (one-shot uses such as the CLI, which export nothing).
func orNewMetrics(m *Metrics) *Metrics {
	if m != nil {
		return m
	}
	return NewMetrics(prometheus.NewRegistry())
}

// orDiscard returns log, or a logger that drops everything when log is nil.
func orDiscard(log *slog.Logger) *slog.Logger {
	if log != nil {
		return log
	}
	return slog.New(slog.DiscardHandler)
}
