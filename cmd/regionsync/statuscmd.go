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
source's offsets, the target's offset-sync and heartbeat topics), judges
each figure against the readiness budgets of the target region and prints
one table per region pair: lag in records and seconds, heartbeat and
checkpoint age, the RPO estimate and every check that did not pass.
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
			st := k.Sample(ctx)
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
		_, err := fmt.Fprintln(w, "no flows configured")
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
		for _, c := range s.Failing() {
			if _, err := fmt.Fprintf(w, "  %s %s[%s]: %s\n", strings.ToUpper(string(c.Result)), c.Name, c.Subject, c.Reason); err != nil {
				return err
			}
		}
	}
	return nil
}
