package replicate

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/regionsync/regionsync/internal/promutil"
)

// statusMetrics export every store's Status: its RPO and its checks by
// result. The Kafka and Cassandra observers share them.
type statusMetrics struct {
	rpo    *prometheus.GaugeVec
	checks *prometheus.GaugeVec
}

func newStatusMetrics(reg prometheus.Registerer) *statusMetrics {
	g := func(name, help string, labels []string) *prometheus.GaugeVec {
		return prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "regionsync", Subsystem: "replication", Name: name, Help: help}, labels)
	}
	return &statusMetrics{
		rpo:    promutil.RegisterOrReuse(reg, g("rpo_seconds", "Worst-case data-loss window if the source region were lost now (NaN: unknown).", []string{"store", "source", "target"})),
		checks: promutil.RegisterOrReuse(reg, g("checks", "Checks of a region pair by result.", []string{"store", "source", "target", "result"})),
	}
}

func (m *statusMetrics) observeStatus(s Status) {
	m.rpo.WithLabelValues(s.Store, s.Source, s.Target).Set(float64(s.RPOSeconds))
	counts := map[Result]int{Pass: 0, Warn: 0, Fail: 0, Unknown: 0}
	for _, c := range s.Checks {
		counts[c.Result]++
	}
	for r, n := range counts {
		m.checks.WithLabelValues(s.Store, s.Source, s.Target, string(r)).Set(float64(n))
	}
}
