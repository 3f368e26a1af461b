package readiness

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/regionsync/regionsync/internal/promutil"
)

// publisherMetrics export verdicts and aggregates.
type publisherMetrics struct {
	verdict     stateGauge
	aggregate   stateGauge
	errors      *prometheus.CounterVec
	stepSeconds prometheus.Histogram
}

// stateGauge is 1 for a region's current state and 0 for the others.
type stateGauge struct{ g *prometheus.GaugeVec }

func (s stateGauge) observe(region, observer string, st State) {
	for _, x := range []State{Ready, Degraded, NotReady, Unknown} {
		v := 0.0
		if x == st {
			v = 1
		}
		if observer == "" {
			s.g.WithLabelValues(region, string(x)).Set(v)
		} else {
			s.g.WithLabelValues(region, observer, string(x)).Set(v)
		}
	}
}

func newPublisherMetrics(reg prometheus.Registerer) *publisherMetrics {
	m := &publisherMetrics{
		verdict: stateGauge{prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "regionsync", Subsystem: "readiness",
			Name: "verdict_state", Help: "1 for the state this observer's latest verdict gives the region."}, []string{"region", "observer", "state"})},
		aggregate: stateGauge{prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "regionsync", Subsystem: "readiness",
			Name: "state", Help: "1 for the region's aggregated state (majority of live observers) as this process last computed it."}, []string{"region", "state"})},
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "regionsync", Subsystem: "readiness",
			Name: "errors_total", Help: "Publishing errors by kind (step, kv, event, alert, verdict_rejected)."}, []string{"kind"}),
		stepSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "regionsync", Subsystem: "readiness",
			Name: "step_duration_seconds", Help: "Time to evaluate, write, aggregate and publish every region once.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14)}),
	}
	m.verdict.g = promutil.RegisterOrReuse(reg, m.verdict.g)
	m.aggregate.g = promutil.RegisterOrReuse(reg, m.aggregate.g)
	m.errors = promutil.RegisterOrReuse(reg, m.errors)
	m.stepSeconds = promutil.RegisterOrReuse(reg, m.stepSeconds)
	return m
}
