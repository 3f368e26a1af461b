package replicate

import (
	"github.com/prometheus/client_golang/prometheus"
)

// cassMetrics export the Cassandra observer's figures. Unknown figures are
// exported as NaN.
type cassMetrics struct {
	*statusMetrics
	nodeUp            *prometheus.GaugeVec
	probeSeconds      *prometheus.GaugeVec
	replication       *prometheus.GaugeVec
	quorumUnavailable *prometheus.GaugeVec
	oneUnavailable    *prometheus.GaugeVec
	sinceRepair       *prometheus.GaugeVec
	schemaVersions    prometheus.Gauge
	hintFiles         *prometheus.GaugeVec
	hintBytes         *prometheus.GaugeVec
	hintAge           *prometheus.GaugeVec
	dcReachable       *prometheus.GaugeVec
	sampleSeconds     prometheus.Histogram
}

func newCassMetrics(reg prometheus.Registerer) *cassMetrics {
	g := func(name, help string, labels ...string) *prometheus.GaugeVec {
		return prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "regionsync", Subsystem: "replication", Name: "cassandra_" + name, Help: help}, labels)
	}
	m := &cassMetrics{
		statusMetrics:     newStatusMetrics(reg),
		nodeUp:            g("node_up", "1 when the node answered the observer's probe within the probe timeout (and gossip says NORMAL).", "dc", "host_id", "address"),
		probeSeconds:      g("probe_duration_seconds", "Duration of the last probe of the node (NaN: no answer).", "dc", "host_id", "address"),
		replication:       g("replication_factor", "Replicas of the keyspace in the DC (NetworkTopologyStrategy).", "keyspace", "dc"),
		quorumUnavailable: g("local_quorum_unavailable_ranges", "Token ranges of the keyspace that cannot be served at LOCAL_QUORUM in the DC.", "keyspace", "dc"),
		oneUnavailable:    g("local_one_unavailable_ranges", "Token ranges of the keyspace with no replica up in the DC.", "keyspace", "dc"),
		sinceRepair:       g("since_repair_seconds", "Age of the keyspace's last successful repair (+Inf: never; NaN: unknown).", "keyspace"),
		schemaVersions: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "regionsync", Subsystem: "replication",
			Name: "cassandra_schema_versions", Help: "Distinct schema versions among the nodes that answer (1: agreement)."}),
		hintFiles:   g("pending_hint_files", "Hint files the source DC's nodes hold for the target DC's nodes.", "source_dc", "target_dc"),
		hintBytes:   g("pending_hint_bytes", "Bytes of hints the source DC holds for the target DC (NaN: the server does not report sizes).", "source_dc", "target_dc"),
		hintAge:     g("oldest_pending_hint_age_seconds", "Age of the oldest hint the source DC holds for the target DC.", "source_dc", "target_dc"),
		dcReachable: g("dc_reachable", "1 when the observer's session to the DC is connected.", "dc"),
		sampleSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "regionsync", Subsystem: "replication",
			Name: "cassandra_sample_duration_seconds", Help: "Time to sample every DC once.", Buckets: prometheus.ExponentialBuckets(0.005, 2, 12)}),
	}
	reg.MustRegister(m.nodeUp, m.probeSeconds, m.replication, m.quorumUnavailable, m.oneUnavailable, m.sinceRepair,
		m.schemaVersions, m.hintFiles, m.hintBytes, m.hintAge, m.dcReachable, m.sampleSeconds)
	return m
}

func boolGauge(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// observeWorld exports what is not per pair: nodes, keyspaces, schema.
func (m *cassMetrics) observeWorld(w world, views []dcView, dcs []*dcSession) {
	for i, v := range views {
		dc := dcs[i].dc.DC
		m.dcReachable.WithLabelValues(dc).Set(boolGauge(v.err == nil))
		for _, n := range v.nodes {
			m.nodeUp.WithLabelValues(dc, n.HostID, n.Address).Set(boolGauge(n.Up))
			m.probeSeconds.WithLabelValues(dc, n.HostID, n.Address).Set(float64(n.ProbeSeconds))
		}
	}
	m.schemaVersions.Set(float64(len(w.schema.Versions)))
}

// observePair exports a pair's hint and keyspace figures.
func (m *cassMetrics) observePair(s Status) {
	m.observeStatus(s)
	f := s.Cassandra
	if f == nil || f.Error != "" {
		return
	}
	m.hintFiles.WithLabelValues(f.SourceDC, f.TargetDC).Set(float64(f.Hints.Files))
	m.hintBytes.WithLabelValues(f.SourceDC, f.TargetDC).Set(float64(f.Hints.Bytes))
	m.hintAge.WithLabelValues(f.SourceDC, f.TargetDC).Set(float64(f.Hints.OldestAgeSeconds))
	for _, k := range f.Keyspaces {
		m.sinceRepair.WithLabelValues(k.Keyspace).Set(float64(k.SinceRepairSeconds))
		if k.Error != "" {
			continue
		}
		m.replication.WithLabelValues(k.Keyspace, k.DC).Set(float64(k.ReplicationFactor))
		m.quorumUnavailable.WithLabelValues(k.Keyspace, k.DC).Set(float64(k.QuorumUnavailable))
		m.oneUnavailable.WithLabelValues(k.Keyspace, k.DC).Set(float64(k.OneUnavailable))
	}
}
