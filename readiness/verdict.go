package readiness

import (
	"time"

	"github.com/regionsync/regionsync/replicate"
)

// State of a region as a failover target.
type State string

// States. Only READY allows traffic to move to the region; routers treat an
// expired, missing or (when keys are configured) unsigned verdict as
// NOT_READY.
const (
	// Ready: every check passes and has passed for the hold period.
	Ready State = "READY"
	// Degraded: no check fails, some are near their budget (warn). The
	// region serves but is not a failover target.
	Degraded State = "DEGRADED"
	// NotReady: a check fails, or all pass but not yet for the hold period.
	NotReady State = "NOT_READY"
	// Unknown: no check fails but some could not be measured (for example no
	// live worker in the region, or no observer has a fresh verdict).
	Unknown State = "UNKNOWN"
)

// rank orders states from best to worst.
func (s State) rank() int {
	switch s {
	case Ready:
		return 0
	case Degraded:
		return 1
	case Unknown:
		return 2
	default:
		return 3
	}
}

// SchemaVersion of Verdict and Aggregate as written by this build.
const SchemaVersion = 1

// Check is one judged figure; the same shape as replicate's.
type Check = replicate.Check

// Verdict is one observer region's judgement of one region at one instant
// (schemas/verdict.schema.json). Observer O writes its verdict on region R
// to etcd at <prefix>/readiness/R/O, bound to O's leader lease.
type Verdict struct {
	SchemaVersion int    `json:"schemaVersion"`
	Region        string `json:"region"`
	Observer      string `json:"observer"`
	State         State  `json:"state"`
	// Reason summarises why the state is what it is, for humans.
	Reason string  `json:"reason"`
	Checks []Check `json:"checks"`
	// RPOSeconds: the worst data-loss window across stores replicating
	// into the region (null: unknown).
	RPOSeconds replicate.Figure `json:"rpoSeconds"`
	ObservedAt time.Time        `json:"observedAt"`
	ExpiresAt  time.Time        `json:"expiresAt"`
	// PassingSince is when every check last started passing (absent while
	// one fails or is unknown); READY needs it ≥ the hold period ago.
	PassingSince *time.Time `json:"passingSince,omitempty"`
	// Revision increases with every verdict of this observer on this region.
	Revision int64 `json:"revision"`
	// KeyID names the ed25519 key that signed the verdict; Signature is the
	// base64 signature of the verdict's canonical JSON (RFC 8785) without
	// the signature field. Both empty when no key is configured.
	KeyID     string `json:"keyId,omitempty"`
	Signature string `json:"signature,omitempty"`
}

// Expired reports whether v is past its expiry at now.
func (v Verdict) Expired(now time.Time) bool { return !now.Before(v.ExpiresAt) }

// Vote is one observer's verdict as counted in an aggregate.
type Vote struct {
	Observer   string    `json:"observer"`
	State      State     `json:"state"`
	Revision   int64     `json:"revision"`
	ObservedAt time.Time `json:"observedAt"`
	ExpiresAt  time.Time `json:"expiresAt"`
}

// Aggregate is the verdict routers use: region R is READY only if a
// majority of the live observers (those with an unexpired verdict) say
// READY. It is what the JetStream KV bucket holds under key R
// (schemas/aggregate.schema.json).
type Aggregate struct {
	SchemaVersion int    `json:"schemaVersion"`
	Region        string `json:"region"`
	State         State  `json:"state"`
	Reason        string `json:"reason"`
	// Votes of the live observers, sorted by observer.
	Votes []Vote `json:"votes"`
	// Verdicts are the full verdicts counted, each signed by its observer.
	Verdicts []Verdict `json:"verdicts"`
	// RPOSeconds is the worst of the counted verdicts (null: unknown).
	RPOSeconds replicate.Figure `json:"rpoSeconds"`
	ObservedAt time.Time        `json:"observedAt"`
	// ExpiresAt is the earliest expiry of the counted verdicts: after it, the
	// aggregate is NOT_READY whatever it says.
	ExpiresAt time.Time `json:"expiresAt"`
	// Revision is the etcd revision the aggregate was computed at; a newer
	// aggregate of a region always has a higher one.
	Revision int64 `json:"revision"`
	// PublishedBy is the observer region whose leader published it.
	PublishedBy string `json:"publishedBy"`
	KeyID       string `json:"keyId,omitempty"`
	Signature   string `json:"signature,omitempty"`
}

// Expired reports whether a is past its expiry at now.
func (a Aggregate) Expired(now time.Time) bool { return !now.Before(a.ExpiresAt) }

// EffectiveState is the state a router must act on at now: NOT_READY once
// the aggregate expired.
func (a Aggregate) EffectiveState(now time.Time) State {
	if a.Expired(now) {
		return NotReady
	}
	return a.State
}
