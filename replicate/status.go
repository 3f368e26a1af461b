package replicate

import (
	"encoding/json"
	"fmt"
	"math"
	"time"
)

// Figure is a measured number that may be unknown: NaN in Go, null in JSON
// (JSON has no NaN).
type Figure float64

// Unknown figure.
func UnknownFigure() Figure { return Figure(math.NaN()) }

// Known reports whether f was measured.
func (f Figure) Known() bool { return !math.IsNaN(float64(f)) }

// MarshalJSON writes null for an unknown figure.
func (f Figure) MarshalJSON() ([]byte, error) {
	if !f.Known() || math.IsInf(float64(f), 0) {
		return []byte("null"), nil
	}
	return json.Marshal(float64(f))
}

// UnmarshalJSON reads null as unknown.
func (f *Figure) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*f = UnknownFigure()
		return nil
	}
	var v float64
	if err := json.Unmarshal(b, &v); err != nil {
		return fmt.Errorf("figure: %w", err)
	}
	*f = Figure(v)
	return nil
}

// Store names used in Status.Store and Check.Store.
const (
	StoreKafka     = "kafka"
	StoreCassandra = "cassandra"
)

// Result of one check against its budget.
type Result string

// Results, from best to worst. Unknown means the figure could not be
// measured; readiness treats it as failing.
const (
	Pass    Result = "pass"
	Warn    Result = "warn"
	Fail    Result = "fail"
	Unknown Result = "unknown"
)

// rank orders results so the worst can be picked.
func (r Result) rank() int {
	switch r {
	case Pass:
		return 0
	case Warn:
		return 1
	case Fail:
		return 3
	default:
		return 2
	}
}

// Worse returns the worse of a and b (fail > unknown > warn > pass).
func Worse(a, b Result) Result {
	if b.rank() > a.rank() {
		return b
	}
	return a
}

// WarnFraction of a budget at or above which an upper-bound check warns.
const WarnFraction = 0.75

// Check is one figure judged against its budget.
type Check struct {
	// Name in snake_case, e.g. "lag_seconds", "local_quorum".
	Name string `json:"name"`
	// Store is StoreKafka or StoreCassandra.
	Store string `json:"store"`
	// Subject narrows the check: a flow, topic, keyspace or DC.
	Subject   string  `json:"subject,omitempty"`
	Value     float64 `json:"value"`
	Threshold float64 `json:"threshold"`
	// Unit of Value and Threshold: "seconds", "records", "hints", "ranges", "bool".
	Unit   string `json:"unit"`
	Result Result `json:"result"`
	// Reason is a sentence for humans, always set when Result is not Pass.
	Reason string `json:"reason,omitempty"`
}

// UpperBound judges value ≤ threshold: pass below WarnFraction of the
// threshold, warn from there to the threshold, fail above it. A NaN value is
// Unknown. A threshold ≤ 0 disables the budget (always pass).
func UpperBound(name, store, subject string, value, threshold float64, unit string) Check {
	c := Check{Name: name, Store: store, Subject: subject, Value: value, Threshold: threshold, Unit: unit, Result: Pass}
	switch {
	case math.IsNaN(value):
		c.Value, c.Result, c.Reason = 0, Unknown, fmt.Sprintf("%s of %s could not be measured", name, subject)
	case threshold <= 0:
	case value > threshold:
		c.Result, c.Reason = Fail, fmt.Sprintf("%s of %s is %s %s, over the budget of %s", name, subject, fmtNum(value), unit, fmtNum(threshold))
	case value >= WarnFraction*threshold:
		c.Result, c.Reason = Warn, fmt.Sprintf("%s of %s is %s %s, %.0f%% of the budget of %s", name, subject, fmtNum(value), unit, 100*value/threshold, fmtNum(threshold))
	}
	return c
}

// Bool is a check that passes when ok; reason explains a failure.
func Bool(name, store, subject string, ok bool, reason string) Check {
	c := Check{Name: name, Store: store, Subject: subject, Threshold: 1, Unit: "bool", Result: Pass}
	if ok {
		c.Value = 1
	} else {
		c.Result, c.Reason = Fail, reason
	}
	return c
}

func fmtNum(v float64) string {
	if v == math.Trunc(v) && math.Abs(v) < 1e15 {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.2f", v)
}

// Status is the replication health of one store from a source region to a
// target region, as measured by one observer at ObservedAt.
type Status struct {
	Store      string    `json:"store"`
	Source     string    `json:"source"`
	Target     string    `json:"target"`
	ObservedAt time.Time `json:"observedAt"`
	// RPOSeconds is the worst-case data-loss window if Source were lost now,
	// NaN when unknown (no measurement yet or the store cannot say).
	RPOSeconds Figure `json:"rpoSeconds"`
	// Checks, each judged against the budgets.
	Checks []Check `json:"checks"`
	// Kafka figures when Store is StoreKafka, else nil.
	Kafka *KafkaFigures `json:"kafka,omitempty"`
	// Cassandra figures when Store is StoreCassandra, else nil.
	Cassandra *CassandraFigures `json:"cassandra,omitempty"`
}

// Result is the worst result of the status's checks (Unknown when it has none).
func (s Status) Result() Result {
	if len(s.Checks) == 0 {
		return Unknown
	}
	r := Pass
	for _, c := range s.Checks {
		r = Worse(r, c.Result)
	}
	return r
}

// Failing returns the checks that did not pass.
func (s Status) Failing() []Check {
	var out []Check
	for _, c := range s.Checks {
		if c.Result != Pass {
			out = append(out, c)
		}
	}
	return out
}

// Pair names a source → target region pair.
type Pair struct{ Source, Target string }

func (p Pair) String() string { return p.Source + "→" + p.Target }
