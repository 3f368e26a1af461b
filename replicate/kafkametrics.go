package replicate

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// kafkaMetrics export the Kafka observer's figures. Unknown figures are
// exported as NaN, which Prometheus stores and alert rules can test.
type kafkaMetrics struct {
	lagRecords       *prometheus.GaugeVec
	partLagRecords   *prometheus.GaugeVec
	partLagSeconds   *prometheus.GaugeVec
	lagSeconds       *prometheus.GaugeVec
	recordLagSeconds *prometheus.GaugeVec
	heartbeatAge     *prometheus.GaugeVec
	checkpointAge    *prometheus.GaugeVec
	staleCheckpoints *prometheus.GaugeVec
	*statusMetrics
	sampleErrors  *prometheus.CounterVec
	sampleSeconds *prometheus.HistogramVec
}

func newKafkaMetrics(reg prometheus.Registerer) *kafkaMetrics {
	flow := []string{"flow", "source", "target"}
	part := []string{"flow", "topic", "partition"}
	g := func(name, help string, labels []string) *prometheus.GaugeVec {
		return prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "regionsync", Subsystem: "replication", Name: name, Help: help}, labels)
	}
	m := &kafkaMetrics{
		lagRecords:       g("kafka_lag_records", "Source records not yet on the target, per flow (observed from the clusters).", flow),
		partLagRecords:   g("kafka_partition_lag_records", "Source records not yet on the target, per source partition.", part),
		partLagSeconds:   g("kafka_partition_lag_seconds", "Age of the oldest source record not yet on the target, per source partition.", part),
		lagSeconds:       g("kafka_lag_seconds", "The flow's data-loss window: max of record lag and heartbeat age (NaN: unknown).", flow),
		recordLagSeconds: g("kafka_record_lag_seconds", "Age of the oldest source record not yet on the target, per flow.", flow),
		heartbeatAge:     g("kafka_heartbeat_age_seconds", "Age of the newest heartbeat of the flow found on the target.", flow),
		checkpointAge:    g("kafka_checkpoint_age_seconds", "How long the oldest stale translated consumer offset has been stale on the target.", flow),
		staleCheckpoints: g("kafka_stale_checkpoints", "Consumer-group partitions whose translated offset is missing or behind on the target.", flow),
		statusMetrics:    newStatusMetrics(reg),
		sampleErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "regionsync", Subsystem: "replication",
			Name: "kafka_sample_errors_total", Help: "Samples of a flow with some figure unknown because of an error."}, []string{"flow"}),
		sampleSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: "regionsync", Subsystem: "replication",
			Name: "kafka_sample_duration_seconds", Help: "Time to measure one flow.", Buckets: prometheus.ExponentialBuckets(0.005, 2, 12)}, []string{"flow"}),
	}
	reg.MustRegister(m.lagRecords, m.partLagRecords, m.partLagSeconds, m.lagSeconds, m.recordLagSeconds,
		m.heartbeatAge, m.checkpointAge, m.staleCheckpoints, m.sampleErrors, m.sampleSeconds)
	return m
}

func (m *kafkaMetrics) observeFlow(f KafkaFlow, ff FlowFigures, took time.Duration) {
	l := prometheus.Labels{"flow": f.Name, "source": f.Source, "target": f.Target}
	m.lagRecords.With(l).Set(float64(ff.LagRecords))
	m.lagSeconds.With(l).Set(float64(ff.LagSeconds))
	m.recordLagSeconds.With(l).Set(float64(ff.RecordLagSeconds))
	m.heartbeatAge.With(l).Set(float64(ff.HeartbeatAgeSeconds))
	m.checkpointAge.With(l).Set(float64(ff.CheckpointAgeSeconds))
	m.staleCheckpoints.With(l).Set(float64(ff.StaleCheckpoints))
	for _, p := range ff.Partitions {
		pl := prometheus.Labels{"flow": f.Name, "topic": p.Topic, "partition": strconv.Itoa(int(p.Partition))}
		m.partLagRecords.With(pl).Set(float64(p.LagRecords))
		m.partLagSeconds.With(pl).Set(float64(p.LagSeconds))
	}
	if ff.Error != "" {
		m.sampleErrors.WithLabelValues(f.Name).Inc()
	}
	m.sampleSeconds.WithLabelValues(f.Name).Observe(took.Seconds())
}
