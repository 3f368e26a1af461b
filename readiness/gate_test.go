package readiness

import (
	"strings"
	"testing"
	"time"
)

func agg(region string, s State, now time.Time) Aggregate {
	return Aggregate{SchemaVersion: SchemaVersion, Region: region, State: s, Reason: "test", ObservedAt: now, ExpiresAt: now.Add(10 * time.Second), Revision: 7}
}

type gateCase struct {
	name    string
	v       View
	from    string
	to      string
	allowed bool
	reason  string
}

func TestDecide(t *testing.T) {
	now := time.Now()
	rules := Rules{MinFlipInterval: 5 * time.Minute}
	view := func(east, west State) View {
		return View{Aggregates: map[string]Aggregate{"east": agg("east", east, now), "west": agg("west", west, now)}, Overrides: map[string]*Override{}}
	}
	cases := []gateCase{
		{"target READY", view(Ready, Ready), "east", "west", true, "target west is READY"},
		{"target NOT_READY", view(Ready, NotReady), "east", "west", false, "target west is NOT_READY"},
		{"target DEGRADED", view(Ready, Degraded), "east", "west", false, "target west is DEGRADED"},
		{"last serving region", view(Ready, NotReady), "east", "west", false, "would drain the last serving region"},
		{"missing target", View{Aggregates: map[string]Aggregate{"east": agg("east", Ready, now)}}, "east", "west", false, "no verdict on west"},
		{"same region", view(Ready, Ready), "west", "west", false, "two different regions"},
	}
	expired := view(Ready, Ready)
	a := expired.Aggregates["west"]
	a.ExpiresAt = now.Add(-time.Second)
	expired.Aggregates["west"] = a
	cases = append(cases, gateCase{"expired verdict", expired, "east", "west", false, "expired"})
	flipped := view(Ready, Ready)
	flipped.LastFlip = &Flip{From: "west", To: "east", At: now.Add(-time.Minute)}
	cases = append(cases, gateCase{"wait period", flipped, "east", "west", false, "less than 5m0s ago"})
	forced := view(Ready, NotReady)
	forced.Overrides["west"] = &Override{Region: "west", State: Ready, By: "oncall", Reason: "drill", CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
	cases = append(cases, gateCase{"override READY", forced, "east", "west", true, "override by oncall"})
	blocked := view(Ready, Ready)
	blocked.Overrides["west"] = &Override{Region: "west", State: NotReady, By: "oncall", Reason: "maintenance", CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
	cases = append(cases, gateCase{"override NOT_READY", blocked, "east", "west", false, "maintenance"})
	stale := view(Ready, NotReady)
	stale.Overrides["west"] = &Override{Region: "west", State: Ready, By: "oncall", Reason: "old", CreatedAt: now.Add(-2 * time.Hour), ExpiresAt: now.Add(-time.Hour)}
	cases = append(cases, gateCase{"expired override ignored", stale, "east", "west", false, "target west is NOT_READY"})
	for _, c := range cases {
		d := Decide(c.from, c.to, c.v, rules, now)
		if d.Allowed != c.allowed || !strings.Contains(strings.Join(d.Reasons, "; "), c.reason) {
			t.Errorf("%s: allowed=%v reasons %q; want allowed=%v with %q", c.name, d.Allowed, d.Reasons, c.allowed, c.reason)
		}
	}
}

func TestOverrideValidate(t *testing.T) {
	now := time.Now()
	good := Override{Region: "west", State: Ready, By: "a", Reason: "b", CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
	if err := good.Validate(24 * time.Hour); err != nil {
		t.Fatal(err)
	}
	for name, o := range map[string]Override{
		"state":  {Region: "west", State: Degraded, By: "a", Reason: "b", CreatedAt: now, ExpiresAt: now.Add(time.Hour)},
		"by":     {Region: "west", State: Ready, Reason: "b", CreatedAt: now, ExpiresAt: now.Add(time.Hour)},
		"expiry": {Region: "west", State: Ready, By: "a", Reason: "b", CreatedAt: now, ExpiresAt: now},
		"long":   {Region: "west", State: Ready, By: "a", Reason: "b", CreatedAt: now, ExpiresAt: now.Add(48 * time.Hour)},
	} {
		if err := o.Validate(24 * time.Hour); err == nil {
			t.Errorf("%s: invalid override accepted", name)
		}
	}
}
