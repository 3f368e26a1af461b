package main

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/regionsync/regionsync/internal/clients"
	"github.com/regionsync/regionsync/internal/config"
	"github.com/regionsync/regionsync/mirror"
	"github.com/regionsync/regionsync/replicate"
)

// observedFlows describes every flow of cfg for the replication observer:
// each worker measures all flows, whoever runs them, so any region can
// judge any other.
func observedFlows(cfg *config.Config) ([]replicate.KafkaFlow, error) {
	var out []replicate.KafkaFlow
	for i, fc := range cfg.Flows {
		src, _ := cfg.Region(fc.Source)
		dst, _ := cfg.Region(fc.Target)
		sc, err := clients.Kafka(src.Name, src.Kafka)
		if err != nil {
			return nil, fmt.Errorf("flows[%d] %q: %w", i, fc.Name, err)
		}
		tc, err := clients.Kafka(dst.Name, dst.Kafka)
		if err != nil {
			return nil, fmt.Errorf("flows[%d] %q: %w", i, fc.Name, err)
		}
		sel, err := mirror.NewSelector(fc.Topics.Include, fc.Topics.Exclude)
		if err != nil {
			return nil, fmt.Errorf("flows[%d] %q: %w", i, fc.Name, err)
		}
		naming, err := mirror.NewNaming(fc.Naming)
		if err != nil {
			return nil, fmt.Errorf("flows[%d] %q: %w", i, fc.Name, err)
		}
		out = append(out, replicate.KafkaFlow{Name: fc.Name, Source: src.Name, Target: dst.Name,
			SourceConfig: sc, TargetConfig: tc, SourceBrokers: src.Kafka.Brokers, TargetBrokers: dst.Kafka.Brokers,
			Selector: sel, Naming: naming})
	}
	return out, nil
}

// newKafkaObserver builds the Kafka replication observer of cfg's flows.
func newKafkaObserver(cfg *config.Config, a *app) (*replicate.Kafka, error) {
	flows, err := observedFlows(cfg)
	if err != nil {
		return nil, err
	}
	return replicate.NewKafka(replicate.KafkaOptions{Flows: flows, Budgets: cfg.BudgetsFor,
		Interval: cfg.Readiness.Defaults.EvaluateInterval.Std()}, a.reg, a.log)
}

// observedDCs describes every region's Cassandra DC of cfg (regions
// without contact points have none), each with a DC-filtered cluster
// config.
func observedDCs(cfg *config.Config) ([]replicate.CassandraDC, error) {
	var out []replicate.CassandraDC
	for _, r := range cfg.Regions {
		if len(r.Cassandra.ContactPoints) == 0 {
			continue
		}
		cc, err := clients.Cassandra(r.Name, r.Cassandra)
		if err != nil {
			return nil, err
		}
		out = append(out, replicate.CassandraDC{Region: r.Name, DC: r.Cassandra.LocalDC, Cluster: cc, Keyspaces: r.Cassandra.Keyspaces})
	}
	return out, nil
}

// newCassandraObserver builds the Cassandra observer of cfg's DCs, or nil
// when no region has Cassandra.
func newCassandraObserver(cfg *config.Config, a *app) (*replicate.Cassandra, error) {
	dcs, err := observedDCs(cfg)
	if err != nil || len(dcs) == 0 {
		return nil, err
	}
	probe := time.Duration(0)
	for _, r := range cfg.Regions {
		probe = max(probe, r.Cassandra.ProbeTimeout.Std())
	}
	return replicate.NewCassandra(replicate.CassandraOptions{DCs: dcs, Budgets: cfg.BudgetsFor,
		Interval: cfg.Readiness.Defaults.EvaluateInterval.Std(), ProbeTimeout: probe}, a.reg, a.log)
}

// addReplication adds the replication observers to the app.
func (a *app) addReplication(cfg *config.Config) error {
	k, err := newKafkaObserver(cfg, a)
	if err != nil {
		return err
	}
	c, err := newCassandraObserver(cfg, a)
	if err != nil {
		return err
	}
	a.kafkaObs, a.cassObs = k, c
	return nil
}

// replicationStatus summarises replication into region for the console:
// "lag east→west=0.4s" per source region, then "cassandra=not-configured"
// or "cassandra east→west=pass" per source DC.
func (a *app) replicationStatus(region string) string {
	var parts []string
	if a.kafkaObs != nil {
		for _, s := range a.kafkaObs.Statuses() {
			if s.Target == region {
				parts = append(parts, fmt.Sprintf("lag %s→%s=%s", s.Source, s.Target, fmtSeconds(s.RPOSeconds)))
			}
		}
	}
	if a.cassObs == nil {
		return strings.Join(append(parts, "cassandra=not-configured"), " ")
	}
	for _, s := range a.cassObs.Statuses() {
		if s.Target == region {
			parts = append(parts, fmt.Sprintf("cassandra %s→%s=%s", s.Source, s.Target, s.Result()))
		}
	}
	return strings.Join(parts, " ")
}

// fmtSeconds renders a figure in seconds, "?" when unknown, "never" for
// +Inf (an age since something that never happened).
func fmtSeconds(f replicate.Figure) string {
	switch {
	case math.IsInf(float64(f), 1):
		return "never"
	case !f.Known() || math.IsInf(float64(f), 0):
		return "?"
	}
	return fmt.Sprintf("%.1fs", float64(f))
}
