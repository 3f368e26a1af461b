package consistency

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/regionsync/regionsync/internal/promutil"
)

// Metrics of the reconcile jobs.
type Metrics struct {
	windows    *prometheus.CounterVec
	records    *prometheus.CounterVec
	divergence *prometheus.CounterVec
	lastReport *prometheus.GaugeVec
	divergent  *prometheus.GaugeVec
}

// NewMetrics registers the reconcile metrics on reg (once per registry).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	c := func(name, help string, labels ...string) *prometheus.CounterVec {
		return promutil.RegisterOrReuse(reg, prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "regionsync", Subsystem: "reconcile", Name: name, Help: help}, labels))
	}
	g := func(name, help string, labels ...string) *prometheus.GaugeVec {
		return promutil.RegisterOrReuse(reg, prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "regionsync", Subsystem: "reconcile", Name: name, Help: help}, labels))
	}
	return &Metrics{
		windows:    c("kafka_audit_windows_total", "Audit windows judged, by result (clean, divergent).", "flow", "result"),
		records:    c("kafka_audit_records_total", "Source records compared by the audit.", "flow"),
		divergence: c("kafka_audit_divergent_records_total", "Records found missing, duplicated, reordered or unexpected on the target.", "flow", "kind"),
		lastReport: g("kafka_audit_last_report_timestamp_seconds", "When the flow's latest audit report was made (Unix time).", "flow"),
		divergent:  g("kafka_audit_unrepaired_divergence", "1 when the flow's latest audit report shows divergence readiness fails on.", "flow"),
	}
}

func (m *Metrics) observe(r KafkaAuditReport) {
	if m == nil {
		return
	}
	m.windows.WithLabelValues(r.Flow, "clean").Add(float64(r.WindowsClean))
	m.windows.WithLabelValues(r.Flow, "divergent").Add(float64(r.WindowsJudged - r.WindowsClean))
	m.records.WithLabelValues(r.Flow).Add(float64(r.RecordsCompared))
	for kind, n := range map[string]int{"missing": r.Missing, "duplicated": r.Duplicated, "reordered": r.Reordered, "unexpected": r.Unexpected} {
		m.divergence.WithLabelValues(r.Flow, kind).Add(float64(n))
	}
	m.lastReport.WithLabelValues(r.Flow).Set(float64(r.FinishedAt.Unix()))
	bad, _ := Divergence(r)
	v := 0.0
	if bad {
		v = 1
	}
	m.divergent.WithLabelValues(r.Flow).Set(v)
}
