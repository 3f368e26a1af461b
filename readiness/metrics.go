package readiness

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
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
	m.verdict.g = registerOrReuse(reg, m.verdict.g)
	m.aggregate.g = registerOrReuse(reg, m.aggregate.g)
	m.errors = registerOrReuse(reg, m.errors)
	m.stepSeconds = registerOrReuse(reg, m.stepSeconds)
	return m
}

// registerOrReuse registers c, or returns the identical collector another
// publisher of the process (dev runs one per region) registered first.
func registerOrReuse[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
		panic(err)
	}
	return c
}
