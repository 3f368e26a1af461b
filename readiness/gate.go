package readiness

import (
	"fmt"
	"sort"
	"time"
)

// Override is an operator's manual decision on a region, written to etcd at
// <prefix>/gate/overrides/<region> (schemas/override.schema.json) and
// audited on NATS. Until it expires it replaces the observers' verdict on
// the region in gate decisions: READY lets traffic move there whatever the
// verdicts say, NOT_READY keeps it away.
type Override struct {
	SchemaVersion int       `json:"schemaVersion"`
	Region        string    `json:"region"`
	State         State     `json:"state"`
	By            string    `json:"by"`
	Reason        string    `json:"reason"`
	CreatedAt     time.Time `json:"createdAt"`
	ExpiresAt     time.Time `json:"expiresAt"`
}

// Active reports whether o applies at now.
func (o *Override) Active(now time.Time) bool { return o != nil && now.Before(o.ExpiresAt) }

// Validate checks an override before it is written.
func (o Override) Validate(maxDuration time.Duration) error {
	switch {
	case o.Region == "":
		return fmt.Errorf("override: region is required")
	case o.State != Ready && o.State != NotReady:
		return fmt.Errorf("override of %s: state must be READY or NOT_READY, got %q", o.Region, o.State)
	case o.By == "" || o.Reason == "":
		return fmt.Errorf("override of %s: who (by) and why (reason) are required", o.Region)
	case !o.ExpiresAt.After(o.CreatedAt):
		return fmt.Errorf("override of %s: expiry %s is not after creation %s", o.Region, o.ExpiresAt.Format(time.RFC3339), o.CreatedAt.Format(time.RFC3339))
	case maxDuration > 0 && o.ExpiresAt.Sub(o.CreatedAt) > maxDuration:
		return fmt.Errorf("override of %s: lasts %s, longer than the allowed %s", o.Region, o.ExpiresAt.Sub(o.CreatedAt), maxDuration)
	}
	return nil
}

// Flip records the last time the gate allowed traffic to move (KV key
// FlipKey), so every gate and client applies the wait period.
type Flip struct {
	From string    `json:"from"`
	To   string    `json:"to"`
	At   time.Time `json:"at"`
	By   string    `json:"by,omitempty"`
}

// FlipKey is the KV key of the last allowed flip (not a region name: region
// names cannot contain dots).
const FlipKey = "gate.last_flip"

// Rules are the gate's safety rules.
type Rules struct {
	// MinFlipInterval: no second move of traffic this soon after the last.
	MinFlipInterval time.Duration
	// RequireSigned: unsigned aggregates count as missing.
	RequireSigned bool
}

// Decision is the gate's answer to "may traffic move from From to To now?"
// (schemas/gate-decision.schema.json).
type Decision struct {
	From    string `json:"from"`
	To      string `json:"to"`
	Allowed bool   `json:"allowed"`
	// Reasons: every rule that denied, or why it is allowed.
	Reasons []string `json:"reasons"`
	// TargetState is the state the decision used for To (an override's
	// when one is active).
	TargetState State     `json:"targetState"`
	Override    *Override `json:"override,omitempty"`
	// Revision of the aggregate on To that was used (0: none).
	Revision  int64     `json:"revision"`
	DecidedAt time.Time `json:"decidedAt"`
}

// View is what a gate knows: the latest aggregate per region (already
// verified), the active overrides and the last flip.
type View struct {
	Aggregates map[string]Aggregate
	Overrides  map[string]*Override
	LastFlip   *Flip
}

// state is region's effective state at now: an active override, else the
// aggregate (NOT_READY once expired), else NOT_READY (missing).
func (v View) state(region string, now time.Time) (State, *Override, int64, string) {
	if o := v.Overrides[region]; o.Active(now) {
		return o.State, o, v.Aggregates[region].Revision, fmt.Sprintf("override by %s until %s: %s", o.By, o.ExpiresAt.UTC().Format(time.RFC3339), o.Reason)
	}
	a, ok := v.Aggregates[region]
	switch {
	case !ok:
		return NotReady, nil, 0, "no verdict on " + region
	case a.Expired(now):
		return NotReady, nil, a.Revision, fmt.Sprintf("the verdict on %s expired at %s", region, a.ExpiresAt.UTC().Format(time.RFC3339))
	}
	return a.State, nil, a.Revision, a.Reason
}

// Decide applies the rules, modelled on Route 53 ARC's safety rules: the
// target must be READY (by majority of live observers, unexpired, or by an
// active override); moving away from From must leave a serving region;
// no move within MinFlipInterval of the last one.
func Decide(from, to string, v View, r Rules, now time.Time) Decision {
	d := Decision{From: from, To: to, DecidedAt: now}
	if from == to || to == "" {
		d.Reasons = append(d.Reasons, fmt.Sprintf("from %q and to %q must name two different regions", from, to))
		return d
	}
	st, o, rev, why := v.state(to, now)
	d.TargetState, d.Override, d.Revision = st, o, rev
	if st != Ready {
		d.Reasons = append(d.Reasons, fmt.Sprintf("target %s is %s: %s", to, st, why))
	}
	var serving []string
	for region := range v.Aggregates {
		if region == from {
			continue
		}
		if s, _, _, _ := v.state(region, now); s == Ready {
			serving = append(serving, region)
		}
	}
	for region, ov := range v.Overrides {
		if _, seen := v.Aggregates[region]; !seen && region != from && ov.Active(now) && ov.State == Ready {
			serving = append(serving, region)
		}
	}
	sort.Strings(serving)
	if len(serving) == 0 {
		d.Reasons = append(d.Reasons, fmt.Sprintf("moving traffic away from %s would drain the last serving region: no other region is READY", from))
	}
	if f := v.LastFlip; f != nil && r.MinFlipInterval > 0 && now.Sub(f.At) < r.MinFlipInterval {
		d.Reasons = append(d.Reasons, fmt.Sprintf("the last move (%s→%s at %s) was less than %s ago; next move allowed at %s",
			f.From, f.To, f.At.UTC().Format(time.RFC3339), r.MinFlipInterval, f.At.Add(r.MinFlipInterval).UTC().Format(time.RFC3339)))
	}
	if len(d.Reasons) == 0 {
		d.Allowed = true
		d.Reasons = []string{fmt.Sprintf("target %s is READY (%s)", to, why)}
	}
	return d
}

// OverrideKeyPrefix is followed by the region in the KV bucket: the
// publisher mirrors etcd's active overrides there for gate clients.
const OverrideKeyPrefix = "override."
