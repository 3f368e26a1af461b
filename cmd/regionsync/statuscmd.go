package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"

	"github.com/regionsync/regionsync/internal/config"
	"github.com/regionsync/regionsync/replicate"
)

type statusOptions struct {
	configPath string
	timeout    time.Duration
	json       bool
}

func newStatusCmd() *cobra.Command {
	o := &statusOptions{}
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Measure replication health per region pair now and print it",
		Long: `status measures every flow of the config from the clusters themselves (the
source's offsets, the target's offset-sync and heartbeat topics) and every
region's Cassandra DC (node probes, token ranges per keyspace, hints,
schema agreement, repair history), judges each figure against the
readiness budgets of the target region and prints one table per store and
region pair: lag in records and seconds, heartbeat and checkpoint age;
nodes up, ranges without LOCAL_QUORUM/LOCAL_ONE, pending hints; the RPO
estimate and every check that did not pass.
It needs no running worker. Exit status 0 whatever the verdicts; 1 on
errors.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Load(o.configPath)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), o.timeout)
			defer cancel()
			a := &app{log: slog.New(slog.DiscardHandler), reg: prometheus.NewRegistry()}
			k, err := newKafkaObserver(cfg, a)
			if err != nil {
				return err
			}
			c, err := newCassandraObserver(cfg, a)
			if err != nil {
				return err
			}
			var cst []replicate.Status
			done := make(chan struct{})
			go func() {
				defer close(done)
				if c != nil {
					cst = c.Sample(ctx)
				}
			}()
			st := k.Sample(ctx)
			<-done
			st = append(st, cst...)
			if o.json {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(st)
			}
			return writeStatus(cmd.OutOrStdout(), st)
		},
	}
	cmd.Flags().StringVarP(&o.configPath, "config", "c", "", "path of the YAML config (required)")
	cmd.Flags().DurationVar(&o.timeout, "timeout", 30*time.Second, "overall deadline")
	cmd.Flags().BoolVar(&o.json, "json", false, "print the statuses as JSON")
	_ = cmd.MarkFlagRequired("config")
	return cmd
}

// writeStatus prints one block per status: a header with the pair, result
// and RPO, a row per flow, then the checks that did not pass.
func writeStatus(w io.Writer, statuses []replicate.Status) error {
	if len(statuses) == 0 {
		_, err := fmt.Fprintln(w, "no flows and no Cassandra configured")
		return err
	}
	for i, s := range statuses {
		if i > 0 {
			fmt.Fprintln(w)
		}
		fmt.Fprintf(w, "%s %s → %s: %s (RPO %s, observed %s)\n", s.Store, s.Source, s.Target,
			strings.ToUpper(string(s.Result())), fmtSeconds(s.RPOSeconds), s.ObservedAt.Format(time.RFC3339))
		if s.Kafka != nil {
			tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "  FLOW\tLAG RECORDS\tLAG\tRECORD LAG\tHEARTBEAT AGE\tCHECKPOINT AGE\tSTALE OFFSETS")
			for _, f := range s.Kafka.Flows {
				fmt.Fprintf(tw, "  %s\t%d\t%s\t%s\t%s\t%s\t%d\n", f.Flow, f.LagRecords, fmtSeconds(f.LagSeconds),
					fmtSeconds(f.RecordLagSeconds), fmtSeconds(f.HeartbeatAgeSeconds), fmtSeconds(f.CheckpointAgeSeconds), f.StaleCheckpoints)
			}
			if err := tw.Flush(); err != nil {
				return err
			}
		}
		if s.Cassandra != nil {
			if err := writeCassandra(w, s.Cassandra); err != nil {
				return err
			}
		}
		for _, c := range s.Failing() {
			if _, err := fmt.Fprintf(w, "  %s %s[%s]: %s\n", strings.ToUpper(string(c.Result)), c.Name, c.Subject, c.Reason); err != nil {
				return err
			}
		}
	}
	return nil
}

// writeCassandra prints the target DC's nodes and keyspaces and the hints
// the source DC holds for it.
func writeCassandra(w io.Writer, f *replicate.CassandraFigures) error {
	if f.Error != "" {
		_, err := fmt.Fprintf(w, "  %s → %s: %s\n", f.SourceDC, f.TargetDC, f.Error)
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  NODE\tDC\tSTATE\tPROBE\tDETAIL")
	for _, n := range f.Nodes {
		state := "UP"
		if !n.Up {
			state = "DOWN"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", n.Address, n.DC, state, fmtSeconds(n.ProbeSeconds), n.Reason)
	}
	fmt.Fprintln(tw, "  KEYSPACE\tRF\tRANGES\tNO LOCAL_QUORUM\tNO LOCAL_ONE\tSINCE REPAIR")
	for _, k := range f.Keyspaces {
		if k.Error != "" { // the failing keyspace_replication check below says why
			fmt.Fprintf(tw, "  %s\t-\t-\t-\t-\t-\n", k.Keyspace)
			continue
		}
		fmt.Fprintf(tw, "  %s\t%d\t%d\t%d\t%d\t%s\n", k.Keyspace, k.ReplicationFactor, k.Ranges, k.QuorumUnavailable, k.OneUnavailable, fmtSeconds(k.SinceRepairSeconds))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "  hints %s holds for %s: %d files, oldest %s; schema agreement %v %v\n",
		f.SourceDC, f.TargetDC, f.Hints.Files, fmtSeconds(f.Hints.OldestAgeSeconds), f.Schema.Agreement, f.Schema.Versions)
	return err
}
