package consistency

import (
	"sync"

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

	cass cassMetrics
}

// cassMetrics are the Cassandra diff jobs'.
type cassMetrics struct {
	mu          sync.Mutex
	lastRows    map[[2]string]int64 // job, table → rows counted so far
	rangesDone  *prometheus.GaugeVec
	rangesTotal *prometheus.GaugeVec
	eta         *prometheus.GaugeVec
	rows        *prometheus.CounterVec
	runs        *prometheus.CounterVec
	resumed     *prometheus.CounterVec
	divRows     *prometheus.GaugeVec
	repaired    *prometheus.GaugeVec
	lastReport  *prometheus.GaugeVec
	unrepaired  *prometheus.GaugeVec
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
		cass: cassMetrics{
			lastRows:    map[[2]string]int64{},
			rangesDone:  g("cassandra_ranges_done", "Token ranges of the table the job has completed in its current run.", "job", "table"),
			rangesTotal: g("cassandra_ranges", "Token ranges of the table in the job's current run.", "job", "table"),
			eta:         g("cassandra_table_eta_seconds", "Estimated time until the job finishes the table it is on.", "job", "table"),
			rows:        c("cassandra_rows_compared_total", "Rows read and compared by the job (both DCs).", "job"),
			runs:        c("cassandra_runs_total", "Finished runs of the job, by result (clean, divergent, error).", "job", "result"),
			resumed:     c("cassandra_resumed_total", "Runs that resumed the saved progress of an interrupted run.", "job"),
			divRows:     g("cassandra_divergent_rows", "Divergent rows in the job's latest report, by kind (missing_in_a, missing_in_b, cells).", "job", "kind"),
			repaired:    g("cassandra_repaired_rows", "Rows the job's latest run repaired.", "job"),
			lastReport:  g("cassandra_last_report_timestamp_seconds", "When the job's latest report was made (Unix time).", "job"),
			unrepaired:  g("cassandra_unrepaired_divergence", "1 when the job's latest report shows unrepaired divergence or errors.", "job"),
		},
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

func (m *Metrics) cassStarted(job string, resumed bool) {
	if m == nil || !resumed {
		return
	}
	m.cass.resumed.WithLabelValues(job).Inc()
}

func (m *Metrics) cassRange(job string, r *TableDiffReport) {
	if m == nil {
		return
	}
	c := &m.cass
	c.rangesDone.WithLabelValues(job, r.Table).Set(float64(r.Next))
	c.rangesTotal.WithLabelValues(job, r.Table).Set(float64(r.Ranges))
	if done := r.Next - r.RangesResumed; done > 0 {
		per := r.Took.Seconds() / float64(r.Next) // Took spans the earlier processes too
		c.eta.WithLabelValues(job, r.Table).Set(per * float64(r.Ranges-r.Next))
	}
	c.mu.Lock()
	k := [2]string{job, r.Table}
	rows := r.RowsA + r.RowsB
	if d := rows - c.lastRows[k]; d > 0 {
		c.rows.WithLabelValues(job).Add(float64(d))
	}
	c.lastRows[k] = rows
	c.mu.Unlock()
}

// cassSeed counts a resumed table's earlier rows as already counted.
func (m *Metrics) cassSeed(job string, r *TableDiffReport) {
	if m == nil || r == nil {
		return
	}
	m.cass.mu.Lock()
	m.cass.lastRows[[2]string{job, r.Table}] = r.RowsA + r.RowsB
	m.cass.mu.Unlock()
}

func (m *Metrics) cassFinished(job, result string) {
	if m == nil {
		return
	}
	m.cass.runs.WithLabelValues(job, result).Inc()
}

func (m *Metrics) cassReport(r CassandraReport) {
	if m == nil {
		return
	}
	c := &m.cass
	var ma, mb, cells, rep int
	for _, t := range r.Tables {
		ma, mb, cells, rep = ma+t.MissingInA, mb+t.MissingInB, cells+t.CellRows, rep+t.Repaired
	}
	c.divRows.WithLabelValues(r.Job, "missing_in_a").Set(float64(ma))
	c.divRows.WithLabelValues(r.Job, "missing_in_b").Set(float64(mb))
	c.divRows.WithLabelValues(r.Job, "cells").Set(float64(cells))
	c.repaired.WithLabelValues(r.Job).Set(float64(rep))
	c.lastReport.WithLabelValues(r.Job).Set(float64(r.FinishedAt.Unix()))
	bad, _ := CassandraDivergence(r)
	result, v := "clean", 0.0
	if bad {
		result, v = "divergent", 1
	}
	c.unrepaired.WithLabelValues(r.Job).Set(v)
	c.runs.WithLabelValues(r.Job, result).Inc()
	c.mu.Lock()
	for k := range c.lastRows {
		if k[0] == r.Job {
			delete(c.lastRows, k)
		}
	}
	c.mu.Unlock()
}
