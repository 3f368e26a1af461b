package readiness

import (
	"fmt"
	"sort"
	"time"

	"github.com/regionsync/regionsync/replicate"
)

// AggregateVerdicts combines the observers' verdicts on region at now.
// Live observers are those with an unexpired verdict on region. The
// aggregate is READY only if more than half of the live observers say
// READY; otherwise it takes the worst state any live observer reports
// (UNKNOWN when there is no live observer). Its expiry is the earliest of
// the counted verdicts' (now + ttl when none is counted). rev is the etcd
// revision the verdicts were read at.
func AggregateVerdicts(region string, verdicts []Verdict, now time.Time, rev int64, publishedBy string, ttl time.Duration) Aggregate {
	a := Aggregate{SchemaVersion: SchemaVersion, Region: region, ObservedAt: now, Revision: rev,
		PublishedBy: publishedBy, RPOSeconds: replicate.UnknownFigure()}
	var live []Verdict
	for _, v := range verdicts {
		if v.Region == region && !v.Expired(now) {
			live = append(live, v)
		}
	}
	sort.Slice(live, func(i, j int) bool { return live[i].Observer < live[j].Observer })
	if len(live) == 0 {
		a.State, a.Reason, a.ExpiresAt = Unknown, "no observer has a fresh verdict on "+region, now.Add(ttl)
		a.Verdicts, a.Votes = []Verdict{}, []Vote{}
		return a
	}
	ready, worst := 0, Ready
	a.ExpiresAt = live[0].ExpiresAt
	a.RPOSeconds = live[0].RPOSeconds
	for _, v := range live {
		a.Votes = append(a.Votes, Vote{Observer: v.Observer, State: v.State, Revision: v.Revision, ObservedAt: v.ObservedAt, ExpiresAt: v.ExpiresAt})
		if v.State == Ready {
			ready++
		}
		if v.State.rank() > worst.rank() {
			worst = v.State
		}
		if v.ExpiresAt.Before(a.ExpiresAt) {
			a.ExpiresAt = v.ExpiresAt
		}
		if !v.RPOSeconds.Known() || !a.RPOSeconds.Known() {
			a.RPOSeconds = replicate.UnknownFigure()
		} else {
			a.RPOSeconds = max(a.RPOSeconds, v.RPOSeconds)
		}
	}
	a.Verdicts = live
	if 2*ready > len(live) {
		a.State = Ready
		a.Reason = fmt.Sprintf("%d of %d live observers say READY", ready, len(live))
		return a
	}
	a.State = worst
	a.Reason = fmt.Sprintf("%d of %d live observers say READY (majority needed)", ready, len(live))
	for _, v := range live {
		if v.State == worst {
			a.Reason += fmt.Sprintf("; %s says %s: %s", v.Observer, v.State, v.Reason)
			break
		}
	}
	return a
}
