package mirror

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics of all flows of a process; every series carries the flow name.
// Register once per registry with NewMetrics.
type Metrics struct {
	records     *prometheus.CounterVec
	bytes       *prometheus.CounterVec
	skipped     *prometheus.CounterVec
	latency     *prometheus.HistogramVec
	readLatency *prometheus.HistogramVec
	lag         *prometheus.GaugeVec
	errors      *prometheus.CounterVec
	stopped     *prometheus.GaugeVec
	dead        *prometheus.CounterVec
	topics      *prometheus.GaugeVec
	rebalnce    *prometheus.CounterVec
	checkpoints *prometheus.CounterVec

	mu    sync.Mutex
	flows []*Flow
}

var (
	lagSecondsDesc = prometheus.NewDesc("regionsync_mirror_lag_seconds",
		"Now minus the timestamp of the oldest record read but not yet acknowledged by the target (partitions owned by this worker).", []string{"flow"}, nil)
	checkpointAgeDesc = prometheus.NewDesc("regionsync_mirror_checkpoint_age_seconds",
		"Time since the last successful consumer-group offset translation pass. Absent before the first.", []string{"flow"}, nil)
	heartbeatAgeDesc = prometheus.NewDesc("regionsync_mirror_heartbeat_age_seconds",
		"Age of the newest heartbeat the target acknowledged; grows while the flow stalls. Absent before the first heartbeat.", []string{"flow"}, nil)
)

// Describe implements prometheus.Collector for the per-flow values computed
// at scrape time.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	ch <- lagSecondsDesc
	ch <- heartbeatAgeDesc
	ch <- checkpointAgeDesc
}

// Collect implements prometheus.Collector.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	m.mu.Lock()
	flows := append([]*Flow(nil), m.flows...)
	m.mu.Unlock()
	for _, f := range flows {
		ch <- prometheus.MustNewConstMetric(lagSecondsDesc, prometheus.GaugeValue, f.LagSeconds(), f.opts.Name)
		if age := f.HeartbeatAge(); age > 0 {
			ch <- prometheus.MustNewConstMetric(heartbeatAgeDesc, prometheus.GaugeValue, age.Seconds(), f.opts.Name)
		}
		if age := f.CheckpointAge(); age > 0 {
			ch <- prometheus.MustNewConstMetric(checkpointAgeDesc, prometheus.GaugeValue, age.Seconds(), f.opts.Name)
		}
	}
}

func (m *Metrics) add(f *Flow) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.flows = append(m.flows, f)
}

// NewMetrics registers the mirror metrics on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	tp := []string{"flow", "topic", "partition"}
	m := &Metrics{
		records: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "regionsync_mirror_records_total", Help: "Records copied and acknowledged by the target.",
		}, tp),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "regionsync_mirror_bytes_total", Help: "Key+value+header bytes copied and acknowledged.",
		}, tp),
		skipped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "regionsync_mirror_loop_skipped_records_total", Help: "Records not copied because their provenance already names the target (loop prevention).",
		}, tp),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "regionsync_mirror_replication_latency_seconds", Help: "Source record timestamp to target acknowledgement.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16),
		}, []string{"flow"}),
		readLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "regionsync_mirror_read_latency_seconds", Help: "Source record timestamp to the flow reading it (the source half of the replication latency).",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16),
		}, []string{"flow"}),
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "regionsync_mirror_lag_records", Help: "Source high-water mark minus the next offset to be acknowledged.",
		}, tp),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "regionsync_mirror_errors_total", Help: "Errors by kind (produce_retriable, produce_permanent, consume, topic_sync, group).",
		}, []string{"flow", "kind"}),
		stopped: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "regionsync_mirror_partition_stopped", Help: "1 while a partition is stopped on a record the target rejects permanently.",
		}, tp),
		dead: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "regionsync_mirror_dead_lettered_records_total", Help: "Records the target rejected permanently, written to the dead-letter topic.",
		}, tp),
		topics: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "regionsync_mirror_topics", Help: "Source topics the flow currently mirrors.",
		}, []string{"flow"}),
		rebalnce: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "regionsync_mirror_group_sessions_total", Help: "Consumer-group sessions started (joins and rejoins).",
		}, []string{"flow"}),
	}
	m.checkpoints = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "regionsync_mirror_checkpointed_offsets_total", Help: "Consumer-group partition offsets translated and committed on the target.",
	}, []string{"flow"})
	reg.MustRegister(m.checkpoints)
	reg.MustRegister(m.records, m.bytes, m.skipped, m.latency, m.readLatency, m.lag, m.errors, m.stopped, m.dead, m.topics, m.rebalnce, m)
	return m
}
