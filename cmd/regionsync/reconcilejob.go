package main

import (
	"context"

	"github.com/google/uuid"

	"github.com/regionsync/regionsync/consistency"
	"github.com/regionsync/regionsync/internal/config"
	"github.com/regionsync/regionsync/readiness"
	"github.com/regionsync/regionsync/topology"
)

// addReconcile gives every topology node a Kafka audit of the flows into its
// region, run while it leads; reports go to etcd (readiness reads them) and
// to NATS.
func (a *app) addReconcile(cfg *config.Config) error {
	ka := cfg.Reconcile.KafkaAudit
	if ka.Disabled {
		return nil
	}
	flows, err := observedFlows(cfg)
	if err != nil {
		return err
	}
	eos := map[string]bool{}
	for _, fc := range cfg.Flows {
		eos[fc.Name] = fc.ExactlyOnce
	}
	m := consistency.NewMetrics(a.reg)
	for region, n := range a.nodes {
		var opts []consistency.AuditorOptions
		for _, f := range flows {
			if f.Target != region {
				continue
			}
			opts = append(opts, consistency.AuditorOptions{Flow: f.Name, Source: f.Source, Target: f.Target,
				SourceConfig: f.SourceConfig, TargetConfig: f.TargetConfig, SourceBrokers: f.SourceBrokers, TargetBrokers: f.TargetBrokers,
				Selector: f.Selector, Naming: f.Naming, Window: ka.Window.Std(), Settle: ka.Settle.Std()})
		}
		if len(opts) == 0 {
			continue
		}
		job := &consistency.AuditJob{Flows: opts, ExactlyOnce: eos, Keys: topology.NewKeys(cfg.EtcdPrefix),
			Interval: ka.Interval.Std(), Jitter: ka.Jitter.Std(), Metrics: m, Log: a.log,
			Publish: func(ctx context.Context, r consistency.KafkaAuditReport) {
				bus := a.bus(region)
				if bus == nil {
					return
				}
				ev, err := readiness.NewEvent(uuid.NewString(), "regionsync://"+region+"/reconcile", readiness.TypeReconcile, r.Flow,
					"reconcile-report.schema.json", r, r.FinishedAt)
				if err == nil {
					err = bus.Publish(ctx, readiness.SubjectReconcile+"."+r.Flow, ev)
				}
				if err != nil {
					a.log.Warn("reconcile: report not published", "flow", r.Flow, "err", err)
				}
			}}
		n.AddLeaderTask("kafka-audit", job.Task)
	}
	return nil
}
