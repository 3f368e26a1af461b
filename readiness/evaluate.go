package readiness

import (
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/regionsync/regionsync/internal/config"
	"github.com/regionsync/regionsync/replicate"
)

// Store names of checks that are not a replicated store's: regionsync's own
// coordination (etcd, workers) and the reconcile jobs.
const (
	StoreTopology    = "topology"
	StoreConsistency = "consistency"
)

// Inputs are what an observer knows about one region at one instant.
type Inputs struct {
	Region string
	Now    time.Time
	// Statuses of every store replicating into Region (Target == Region).
	Statuses []replicate.Status
	// ExpectedStores lists stores that must report a status into Region
	// (for example "kafka" when a flow targets it); a missing one is an
	// unknown check.
	ExpectedStores []string
	// EtcdQuorum is whether the observer can reach etcd's quorum; without
	// it the observer's view of workers and leaders may be stale.
	EtcdQuorum    bool
	EtcdQuorumErr string
	// Workers is the number of live regionsync workers registered in Region.
	Workers int
	// Extra checks from other sources (for example the latest reconcile).
	Extra []Check
}

// Evaluator turns inputs into verdicts with fail-safe hysteresis: any
// failing check makes the verdict NOT_READY at once, and READY returns only
// after every check passed (or warned) for the region's hold period. It
// keeps that history per region; it is safe for concurrent use.
type Evaluator struct {
	observer string
	budgets  func(region string) config.Budgets

	mu    sync.Mutex
	state map[string]*history
}

type history struct {
	passingSince time.Time // zero while a check fails or is unknown
	revision     int64
}

// NewEvaluator returns an evaluator for observer (the region whose leader
// runs it) judging against budgets.
func NewEvaluator(observer string, budgets func(region string) config.Budgets) *Evaluator {
	return &Evaluator{observer: observer, budgets: budgets, state: map[string]*history{}}
}

// Evaluate judges in.Region from in and returns the verdict (unsigned).
func (e *Evaluator) Evaluate(in Inputs) Verdict {
	b := e.budgets(in.Region)
	checks := collectChecks(in)
	rpo := rpoOf(in.Statuses)
	e.mu.Lock()
	h := e.state[in.Region]
	if h == nil {
		h = &history{}
		e.state[in.Region] = h
	}
	worst := worstResult(checks)
	switch {
	case worst == replicate.Fail || worst == replicate.Unknown:
		h.passingSince = time.Time{}
	case h.passingSince.IsZero():
		h.passingSince = in.Now
	}
	h.revision = max(h.revision+1, in.Now.UnixMilli())
	v := Verdict{SchemaVersion: SchemaVersion, Region: in.Region, Observer: e.observer, Checks: checks,
		RPOSeconds: rpo, ObservedAt: in.Now, ExpiresAt: in.Now.Add(b.VerdictTTL.Std()), Revision: h.revision}
	if !h.passingSince.IsZero() {
		ps := h.passingSince
		v.PassingSince = &ps
	}
	e.mu.Unlock()
	v.State, v.Reason = decide(worst, checks, v.PassingSince, b.HoldPeriod.Std(), in.Now)
	return v
}

// Reset forgets every region's history: a new leadership term starts with
// no claim that anything passed before it.
func (e *Evaluator) Reset() {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, h := range e.state {
		h.passingSince = time.Time{}
	}
}

// Failed records that region could not be judged (the observer lost etcd,
// say): READY then returns only after a full hold period again.
func (e *Evaluator) Failed(region string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if h := e.state[region]; h != nil {
		h.passingSince = time.Time{}
	}
}

// decide maps the worst check result and the hold period to a state.
func decide(worst replicate.Result, checks []Check, passingSince *time.Time, hold time.Duration, now time.Time) (State, string) {
	switch worst {
	case replicate.Fail:
		return NotReady, summarize(checks, replicate.Fail)
	case replicate.Unknown:
		return Unknown, summarize(checks, replicate.Unknown)
	}
	if held := now.Sub(*passingSince); held < hold {
		return NotReady, fmt.Sprintf("all checks pass since %s; READY after the hold period of %s, at %s",
			passingSince.UTC().Format(time.RFC3339), hold, passingSince.Add(hold).UTC().Format(time.RFC3339))
	}
	if worst == replicate.Warn {
		return Degraded, summarize(checks, replicate.Warn)
	}
	return Ready, "all checks pass"
}

// collectChecks gathers every store's checks and the topology checks.
func collectChecks(in Inputs) []Check {
	var checks []Check
	seen := map[string]bool{}
	for _, s := range in.Statuses {
		if s.Target != in.Region {
			continue
		}
		seen[s.Store] = true
		for _, c := range s.Checks {
			if c.Subject == "" {
				c.Subject = s.Source + "→" + s.Target
			}
			checks = append(checks, c)
		}
	}
	for _, st := range in.ExpectedStores {
		if !seen[st] {
			checks = append(checks, Check{Name: "status", Store: st, Subject: in.Region, Unit: "bool", Threshold: 1,
				Result: replicate.Unknown, Reason: fmt.Sprintf("no %s replication status into %s yet", st, in.Region)})
		}
	}
	q := replicate.Bool("etcd_quorum", StoreTopology, "observer", in.EtcdQuorum,
		"the observer cannot reach etcd's quorum: "+in.EtcdQuorumErr)
	checks = append(checks, q)
	w := Check{Name: "workers", Store: StoreTopology, Subject: in.Region, Value: float64(in.Workers), Threshold: 1,
		Unit: "workers", Result: replicate.Pass}
	if in.Workers < 1 {
		w.Result, w.Reason = replicate.Unknown, "no live regionsync worker registered in "+in.Region
	}
	checks = append(checks, w)
	checks = append(checks, in.Extra...)
	sort.SliceStable(checks, func(i, j int) bool {
		if checks[i].Store != checks[j].Store {
			return checks[i].Store < checks[j].Store
		}
		return checks[i].Name < checks[j].Name
	})
	return checks
}

func worstResult(checks []Check) replicate.Result {
	r := replicate.Pass
	for _, c := range checks {
		r = replicate.Worse(r, c.Result)
	}
	return r
}

// summarize lists the reasons of the checks with result r.
func summarize(checks []Check, r replicate.Result) string {
	var reasons []string
	for _, c := range checks {
		if c.Result == r {
			reasons = append(reasons, fmt.Sprintf("%s %s: %s", c.Store, c.Name, c.Reason))
		}
	}
	return strings.Join(reasons, "; ")
}

// rpoOf is the worst RPO of the statuses; unknown when any is unknown or
// there is none.
func rpoOf(statuses []replicate.Status) replicate.Figure {
	if len(statuses) == 0 {
		return replicate.UnknownFigure()
	}
	worst := replicate.Figure(0)
	for _, s := range statuses {
		if s.Store != replicate.StoreKafka && !s.RPOSeconds.Known() {
			continue // a store that cannot tell a data-loss window
		}
		if !s.RPOSeconds.Known() {
			return replicate.UnknownFigure()
		}
		worst = max(worst, s.RPOSeconds)
	}
	return worst
}
