package main

import (
	"context"
	"encoding/json"
	"errors"
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
	// a configured Cassandra job instead of a flow
	cassandra, region string
	cass              cassRunOptions
}

func newReconcileCmd() *cobra.Command {
	o := &reconcileOptions{}
	run := &cobra.Command{
		Use:   "run --config FILE (--flow NAME [--follow] | --cassandra JOB [--repair|--dry-run])",
		Short: "Audit a flow's mirrored topics, or run a Cassandra diff job once",
		Long: `run --flow compares every selected source topic of the flow with its copy on the
target, partition by partition, over closed windows of record time: counts,
an order-independent and an order-dependent checksum of key, value and
headers (the provenance header left out), and every record that differs,
by offset. Windows that ended less than --settle ago and that the mirror
has not passed yet are not judged. Exit 0 when every judged window is an
exact copy, 3 when some are not.

With --follow it keeps auditing as records are written (each record read
once per side), prints one line per judged window, and stops on Ctrl-C.

run --cassandra runs the configured job (reconcile.cassandra) once, as the
region leader's schedule does: under the job's etcd lock (refused while
another run holds it), saving its progress after every token range and
resuming the progress an interrupted run left, storing the report in etcd
(reconcile/cassandra/<job>, which readiness reads). --repair or --dry-run
override the job's mode, --rate its rate limit (rows/s per DC, -1: none).
A progress bar per table goes to stderr when it is a terminal. Exit 0 when
both DCs agree (or every divergent row was repaired), 3 when not.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if (o.flow == "") == (o.cassandra == "") {
				return errors.New("give one of --flow (Kafka audit) or --cassandra (Cassandra job)")
			}
			if o.cassandra != "" {
				return runCassandraJob(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr(), o, slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: slog.LevelWarn})))
			}
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
	f.StringVar(&o.flow, "flow", "", "flow to audit")
	f.StringVar(&o.cassandra, "cassandra", "", "configured Cassandra job to run once")
	f.BoolVar(&o.cass.repair, "repair", false, "with --cassandra: repair the divergent rows (overrides the job's mode)")
	f.BoolVar(&o.cass.dryRun, "dry-run", false, "with --cassandra: only report (overrides the job's mode)")
	f.IntVar(&o.cass.rate, "rate", 0, "with --cassandra: rows/s read per DC (-1: no limit; default: the job's)")
	f.StringVar(&o.region, "region", "", "with --cassandra: whose etcd endpoints to use (default: the first region)")
	f.DurationVar(&o.window, "window", time.Minute, "audit window (by record timestamp)")
	f.DurationVar(&o.settle, "settle", 2*time.Minute, "judge a window this long after it ends even if the mirror seems behind")
	f.BoolVar(&o.follow, "follow", false, "keep auditing new records until interrupted")
	f.BoolVar(&o.json, "json", false, "print the report as JSON")
	_ = run.MarkFlagRequired("config")
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
			var raw []json.RawMessage
			var reports []any
			for _, kv := range resp.Kvs {
				r, err := consistency.DecodeReport(kv.Value)
				if err != nil {
					fmt.Fprintf(cmd.ErrOrStderr(), "%s (revision %d): malformed report: %v\n", kv.Key, kv.ModRevision, err)
					continue
				}
				raw, reports = append(raw, kv.Value), append(reports, r)
			}
			running, err := cli.Get(ctx, consistency.CassandraStatePrefix(topology.NewKeys(cfg.EtcdPrefix)), clientv3.WithPrefix())
			if err != nil {
				return fmt.Errorf("etcd: %w", err)
			}
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(raw)
			}
			if len(reports) == 0 {
				fmt.Fprintln(cmd.OutOrStdout(), "no reconcile report yet")
			}
			divergent := false
			for _, r := range reports {
				var bad bool
				var why string
				switch r := r.(type) {
				case consistency.KafkaAuditReport:
					writeAudit(cmd.OutOrStdout(), r)
					bad, why = consistency.Divergence(r)
				case consistency.CassandraReport:
					writeCassandraReport(cmd.OutOrStdout(), r)
					bad, _ = consistency.CassandraDivergence(r)
				}
				if why != "" {
					fmt.Fprintf(cmd.OutOrStdout(), "  readiness: %s\n", why)
				}
				divergent = divergent || bad
			}
			for _, kv := range running.Kvs {
				var p consistency.CassandraProgress
				if !strings.HasSuffix(string(kv.Key), "/progress") || json.Unmarshal(kv.Value, &p) != nil {
					continue
				}
				done := len(p.Report.Tables)
				at := ""
				if p.Current != nil {
					at = fmt.Sprintf(", %s at range %d of %d", p.Current.Table, p.Current.Next, p.Current.Ranges)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "cassandra job %s: unfinished run (%s, started %s): %d of %d tables done%s; the next run resumes it\n",
					p.Report.Job, p.Report.Mode, p.Report.StartedAt.Format(time.RFC3339), done, len(p.Tables), at)
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
