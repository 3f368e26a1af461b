package topology

import (
	"fmt"
	"strings"
)

// DefaultPrefix is the etcd prefix of every regionsync key unless the config
// says otherwise (config.DefaultEtcdPrefix).
const DefaultPrefix = "/regionsync/"

// Keys is the key layout of DESIGN.md ("Data in etcd") under one prefix:
//
//	regions/<region>               region spec (RegionSpec as JSON)
//	workers/<region>/<worker-id>   presence (WorkerInfo as JSON), bound to the worker's lease
//	leaders/<region>/<lease-hex>   concurrency.Election keys; value is the worker id
//	readiness/<region>/<observer>  verdict on region by observer's leader, bound to its lease
//	gate/overrides/<region>        manual gate override
type Keys struct {
	Prefix string // ends with "/"
}

// NewKeys returns the layout under prefix; an empty prefix means
// DefaultPrefix and a missing trailing slash is added.
func NewKeys(prefix string) Keys {
	if prefix == "" {
		prefix = DefaultPrefix
	}
	if !strings.HasSuffix(prefix, "/") {
		prefix += "/"
	}
	return Keys{Prefix: prefix}
}

// Regions is the prefix of all region specs.
func (k Keys) Regions() string { return k.Prefix + "regions/" }

// Region is the key of one region's spec.
func (k Keys) Region(region string) string { return k.Regions() + region }

// Workers is the prefix of all presence keys.
func (k Keys) Workers() string { return k.Prefix + "workers/" }

// Worker is the presence key of one worker.
func (k Keys) Worker(region, id string) string { return k.Workers() + region + "/" + id }

// Leaders is the prefix of all election prefixes.
func (k Keys) Leaders() string { return k.Prefix + "leaders/" }

// Election is the concurrency.Election prefix of one region (without the
// trailing slash concurrency.NewElection adds).
func (k Keys) Election(region string) string { return k.Leaders() + region }

// Readiness is the prefix of all verdicts.
func (k Keys) Readiness() string { return k.Prefix + "readiness/" }

// Verdict is the key of observer's verdict on region.
func (k Keys) Verdict(region, observer string) string { return k.Readiness() + region + "/" + observer }

// Overrides is the prefix of the gate's manual overrides.
func (k Keys) Overrides() string { return k.Prefix + "gate/overrides/" }

// Override is the key of region's override.
func (k Keys) Override(region string) string { return k.Overrides() + region }

// splitRel splits a key relative to a watched prefix into its region and
// the rest ("east/w1" → "east", "w1").
func splitRel(rel string) (region, rest string, err error) {
	region, rest, ok := strings.Cut(rel, "/")
	if !ok || region == "" || rest == "" || strings.Contains(rest, "/") {
		return "", "", fmt.Errorf("key does not have the form <region>/<name>")
	}
	return region, rest, nil
}
