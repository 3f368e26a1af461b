package main

import (
	"context"
	"time"

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
	m := consistency.NewMetrics(a.reg)
	if err := a.addCassandraJobs(cfg, m); err != nil {
		return err
	}
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
				a.publishReport(ctx, region, "kafka-audit."+r.Flow, r.FinishedAt, r)
			}}
		n.AddLeaderTask("kafka-audit", job.Task)
	}
	return nil
}

// publishReport sends a reconcile report as a CloudEvent on region's bus,
// subject regionsync.reconcile.<subject>.
func (a *app) publishReport(ctx context.Context, region, subject string, at time.Time, r any) {
	bus := a.bus(region)
	if bus == nil {
		return
	}
	ev, err := readiness.NewEvent(uuid.NewString(), "regionsync://"+region+"/reconcile", readiness.TypeReconcile, subject,
		"reconcile-report.schema.json", r, at)
	if err == nil {
		err = bus.Publish(ctx, readiness.SubjectReconcile+"."+subject, ev)
	}
	if err != nil {
		a.log.Warn("reconcile: report not published", "subject", subject, "err", err)
	}
}
