package main

import (
	"fmt"

	"github.com/regionsync/regionsync/internal/clients"
	"github.com/regionsync/regionsync/internal/config"
	"github.com/regionsync/regionsync/mirror"
)

// addFlows creates the mirror flows that run in region: those whose target
// it is (consume remotely, produce locally, as MirrorMaker 2 advises). An
// empty region means every flow (dev mode, one process for all regions).
func (a *app) addFlows(cfg *config.Config, region string) error {
	for i, fc := range cfg.Flows {
		if region != "" && fc.Target != region {
			continue
		}
		if a.mirrorMetrics == nil {
			a.mirrorMetrics = mirror.NewMetrics(a.reg)
		}
		f, err := newFlow(cfg, fc, a.mirrorMetrics, a)
		if err != nil {
			return fmt.Errorf("flows[%d] %q: %w", i, fc.Name, err)
		}
		a.flows = append(a.flows, f)
	}
	return nil
}

func newFlow(cfg *config.Config, fc config.Flow, m *mirror.Metrics, a *app) (*mirror.Flow, error) {
	src, _ := cfg.Region(fc.Source)
	dst, _ := cfg.Region(fc.Target)
	sc, err := clients.Kafka(src.Name, src.Kafka)
	if err != nil {
		return nil, err
	}
	tc, err := clients.Kafka(dst.Name, dst.Kafka)
	if err != nil {
		return nil, err
	}
	sel, err := mirror.NewSelector(fc.Topics.Include, fc.Topics.Exclude)
	if err != nil {
		return nil, err
	}
	naming, err := mirror.NewNaming(fc.Naming)
	if err != nil {
		return nil, err
	}
	return mirror.New(mirror.Options{
		Name: fc.Name, SourceAlias: src.Name, TargetAlias: dst.Name,
		Source: sc, Target: tc, SourceBrokers: src.Kafka.Brokers, TargetBrokers: dst.Kafka.Brokers,
		Selector: sel, Naming: naming, DeadLetterTopic: fc.DeadLetterTopic, ExactlyOnce: fc.ExactlyOnce,
		HeartbeatInterval: fc.HeartbeatInterval.Std(), CheckpointInterval: fc.CheckpointInterval.Std(),
	}, m, a.log)
}

// flowStatus summarises the flows into region for the console.
func (a *app) flowStatus(region string) string {
	s := ""
	for _, f := range a.flows {
		if f.Target() != region {
			continue
		}
		st := f.Stats()
		s += fmt.Sprintf("mirror[%s] copied=%d lag=%d", f.Name(), st.Copied, st.LagRecords)
		if st.Stopped > 0 {
			s += fmt.Sprintf(" STOPPED-PARTITIONS=%d", st.Stopped)
		}
	}
	return s
}
