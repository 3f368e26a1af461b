package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strings"
	"time"

	"github.com/IBM/sarama"
	"github.com/spf13/cobra"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/regionsync/regionsync/consistency"
	"github.com/regionsync/regionsync/internal/config"
	"github.com/regionsync/regionsync/mirror"
	"github.com/regionsync/regionsync/replicate"
	"github.com/regionsync/regionsync/topology"
)

type reconcileOptions struct {
	configPath, flow string
	window, settle   time.Duration
	follow, json     bool
}

func newReconcileCmd() *cobra.Command {
	o := &reconcileOptions{}
	run := &cobra.Command{
		Use:   "run --config FILE --flow NAME [--follow]",
		Short: "Audit a flow's mirrored topics: missing, duplicated and reordered records per time window",
		Long: `run compares every selected source topic of the flow with its copy on the
target, partition by partition, over closed windows of record time: counts,
an order-independent and an order-dependent checksum of key, value and
headers (the provenance header left out), and every record that differs,
by offset. Windows that ended less than --settle ago and that the mirror
has not passed yet are not judged. Exit 0 when every judged window is an
exact copy, 3 when some are not.

With --follow it keeps auditing as records are written (each record read
once per side), prints one line per judged window, and stops on Ctrl-C.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Load(o.configPath)
			if err != nil {
				return err
			}
			f, err := observedFlow(cfg, o.flow)
			if err != nil {
				return err
			}
			if o.follow {
				return followAudit(cmd.Context(), cmd.OutOrStdout(), f, o)
			}
			r, err := auditOnce(cmd.Context(), f, o)
			if err != nil {
				return err
			}
			if o.json {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				if err := enc.Encode(r); err != nil {
					return err
				}
			} else {
				writeAudit(cmd.OutOrStdout(), r)
			}
			if !r.Clean() {
				return exitError{3}
			}
			return nil
		},
	}
	f := run.Flags()
	f.StringVarP(&o.configPath, "config", "c", "", "path of the YAML config (required)")
	f.StringVar(&o.flow, "flow", "", "flow to audit (required)")
	f.DurationVar(&o.window, "window", time.Minute, "audit window (by record timestamp)")
	f.DurationVar(&o.settle, "settle", 2*time.Minute, "judge a window this long after it ends even if the mirror seems behind")
	f.BoolVar(&o.follow, "follow", false, "keep auditing new records until interrupted")
	f.BoolVar(&o.json, "json", false, "print the report as JSON")
	_ = run.MarkFlagRequired("config")
	_ = run.MarkFlagRequired("flow")
	cmd := &cobra.Command{Use: "reconcile", Short: "Find divergence between regions: Kafka mirror audit, Cassandra cross-DC diff"}
	diff := &cobra.Command{Use: "diff", Short: "Compare a store between regions without changing it"}
	diff.AddCommand(newCassandraDiffCmd())
	cmd.AddCommand(run, newReconcileStatusCmd(), diff)
	return cmd
}

func newReconcileStatusCmd() *cobra.Command {
	o := &topologyOptions{}
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status --config FILE [--region R] [--json]",
		Short: "Print the latest reconcile report of every flow (from etcd)",
		Long: `status reads the latest report each region leader's reconcile jobs stored in
etcd (reconcile/kafka-audit/<flow>) and prints one line per flow with its
verdict, counts and the divergent windows. Exit 0 when every report is
clean, 3 when some show divergence readiness fails on.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cli, cfg, _, err := o.connect()
			if err != nil {
				return err
			}
			defer cli.Close()
			ctx, cancel := context.WithTimeout(cmd.Context(), 10*time.Second)
			defer cancel()
			resp, err := cli.Get(ctx, consistency.ReportPrefix(topology.NewKeys(cfg.EtcdPrefix)), clientv3.WithPrefix())
			if err != nil {
				return fmt.Errorf("etcd: %w", err)
			}
			var reports []consistency.KafkaAuditReport
			for _, kv := range resp.Kvs {
				var r consistency.KafkaAuditReport
				if err := json.Unmarshal(kv.Value, &r); err != nil {
					fmt.Fprintf(cmd.ErrOrStderr(), "%s (revision %d): malformed report: %v\n", kv.Key, kv.ModRevision, err)
					continue
				}
				reports = append(reports, r)
			}
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(reports)
			}
			if len(reports) == 0 {
				fmt.Fprintln(cmd.OutOrStdout(), "no reconcile report yet")
				return nil
			}
			divergent := false
			for _, r := range reports {
				writeAudit(cmd.OutOrStdout(), r)
				if bad, why := consistency.Divergence(r); bad {
					divergent = true
					fmt.Fprintf(cmd.OutOrStdout(), "  readiness: %s\n", why)
				}
			}
			if divergent {
				return exitError{3}
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&o.configPath, "config", "c", "", "path of the YAML config (required)")
	cmd.Flags().StringVar(&o.region, "region", "", "whose etcd endpoints to use (default: the first region)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the reports as JSON")
	_ = cmd.MarkFlagRequired("config")
	return cmd
}

func observedFlow(cfg *config.Config, name string) (replicate.KafkaFlow, error) {
	flows, err := observedFlows(cfg)
	if err != nil {
		return replicate.KafkaFlow{}, err
	}
	var names []string
	for _, f := range flows {
		if f.Name == name {
			return f, nil
		}
		names = append(names, f.Name)
	}
	return replicate.KafkaFlow{}, fmt.Errorf("--flow %q: not in the config (flows: %s)", name, strings.Join(names, ", "))
}

// auditOnce audits every selected source topic of f.
func auditOnce(ctx context.Context, f replicate.KafkaFlow, o *reconcileOptions) (consistency.KafkaAuditReport, error) {
	r := consistency.KafkaAuditReport{SchemaVersion: 1, Kind: "kafka-audit", Flow: f.Name, Source: f.Source, Target: f.Target,
		StartedAt: time.Now().UTC(), Divergent: []consistency.WindowResult{}, Errors: []string{}}
	sc, tc := *f.SourceConfig, *f.TargetConfig
	sc.Consumer.IsolationLevel, tc.Consumer.IsolationLevel = sarama.ReadCommitted, sarama.ReadCommitted
	src, err := sarama.NewClient(f.SourceBrokers, &sc)
	if err != nil {
		return r, fmt.Errorf("source %v: %w", f.SourceBrokers, err)
	}
	defer src.Close()
	dst, err := sarama.NewClient(f.TargetBrokers, &tc)
	if err != nil {
		return r, fmt.Errorf("target %v: %w", f.TargetBrokers, err)
	}
	defer dst.Close()
	topics, err := src.Topics()
	if err != nil {
		return r, err
	}
	sort.Strings(topics)
	for _, t := range topics {
		if t == mirror.HeartbeatTopic || !f.Selector.Match(t) || f.Naming.FromCluster(f.Target, t) {
			continue
		}
		r.Topics = append(r.Topics, t)
		ws, pending, err := consistency.AuditTopic(ctx, src, dst, consistency.AuditOptions{Topic: t, RemoteTopic: f.Naming.Remote(f.Source, t),
			Window: o.window, Settle: o.settle})
		if err != nil {
			r.Errors = append(r.Errors, fmt.Sprintf("%s: %v", t, err))
		}
		r.Add(ws, pending)
	}
	r.FinishedAt = time.Now().UTC()
	return r, nil
}

func writeAudit(w io.Writer, r consistency.KafkaAuditReport) {
	verdict := "CLEAN"
	if !r.Clean() {
		verdict = "DIVERGENT"
	}
	fmt.Fprintf(w, "kafka audit of flow %s (%s → %s): %s — %d records in %d windows, %d clean, %d pending; missing %d, duplicated %d, reordered %d, unexpected %d (%s)\n",
		r.Flow, r.Source, r.Target, verdict, r.RecordsCompared, r.WindowsJudged, r.WindowsClean, r.WindowsPending,
		r.Missing, r.Duplicated, r.Reordered, r.Unexpected, r.FinishedAt.Sub(r.StartedAt).Round(time.Millisecond))
	for _, d := range r.Divergent {
		writeWindow(w, d)
	}
	for _, e := range r.Errors {
		fmt.Fprintf(w, "  error: %s\n", e)
	}
}

func writeWindow(w io.Writer, d consistency.WindowResult) {
	fmt.Fprintf(w, "  %s/%d %s–%s: source %d, target %d records", d.Topic, d.Partition, d.Start.Format("15:04:05"), d.End.Format("15:04:05"), d.Source.Records, d.Target.Records)
	for _, x := range []struct {
		what string
		offs []int64
	}{{"missing (source offsets)", d.Missing}, {"duplicated (target offsets)", d.Duplicated}, {"reordered (target offsets)", d.Reordered}, {"unexpected (target offsets)", d.Unexpected}} {
		if len(x.offs) > 0 {
			fmt.Fprintf(w, "; %s %v", x.what, x.offs)
		}
	}
	fmt.Fprintln(w)
}

// followAudit runs the continuous auditor until ctx ends.
func followAudit(ctx context.Context, w io.Writer, f replicate.KafkaFlow, o *reconcileOptions) error {
	var r consistency.KafkaAuditReport
	a, err := consistency.NewAuditor(consistency.AuditorOptions{Flow: f.Name, Source: f.Source, Target: f.Target,
		SourceConfig: f.SourceConfig, TargetConfig: f.TargetConfig, SourceBrokers: f.SourceBrokers, TargetBrokers: f.TargetBrokers,
		Selector: f.Selector, Naming: f.Naming, Window: o.window, Settle: o.settle,
		OnWindow: func(d consistency.WindowResult) {
			r.Add([]consistency.WindowResult{d}, 0)
			if d.Clean() {
				fmt.Fprintf(w, "%s/%d %s: clean (%d records)\n", d.Topic, d.Partition, d.Start.Format("15:04:05"), d.Source.Records)
			} else {
				writeWindow(w, d)
			}
		}}, slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}
	err = a.Run(ctx)
	fmt.Fprintf(w, "total: %d records in %d windows, %d clean; missing %d, duplicated %d, reordered %d, unexpected %d\n",
		r.RecordsCompared, r.WindowsJudged, r.WindowsClean, r.Missing, r.Duplicated, r.Reordered, r.Unexpected)
	return err
}
