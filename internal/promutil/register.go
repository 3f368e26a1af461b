// Package promutil holds Prometheus plumbing shared by several folders.
package promutil

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// RegisterOrReuse registers c, or returns the identical collector that
// another component of the process registered first (several observers or
// publishers share one registry); any other registration error panics, as
// MustRegister does.
func RegisterOrReuse[C prometheus.Collector](reg prometheus.Registerer, c C) C {
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
