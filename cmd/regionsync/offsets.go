package main

import (
	"fmt"
	"io"
	"log/slog"
	"text/tabwriter"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"

	"github.com/regionsync/regionsync/internal/config"
	"github.com/regionsync/regionsync/mirror"
)

func newOffsetsCmd() *cobra.Command {
	var configPath, group, from, to string
	cmd := &cobra.Command{
		Use:   "offsets",
		Short: "Consumer-group offset translation between mirrored clusters",
	}
	tr := &cobra.Command{
		Use:   "translate --config FILE --group G --from east --to west",
		Short: "Print where consumer group G would resume on --to, partition by partition",
		Long: `translate reads group G's committed offsets on the --from cluster and maps
each mirrored partition through the flow's offset-sync topic on the --to
cluster. The mapping is exact: the target offset is that of the first
mirrored record at or after the committed one. A partition the mirror has
not yet copied up to the committed offset prints "not yet mirrored".`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Load(configPath)
			if err != nil {
				return err
			}
			fc, err := flowBetween(cfg, from, to)
			if err != nil {
				return err
			}
			f, err := newFlow(cfg, fc, mirror.NewMetrics(prometheus.NewRegistry()), &app{log: slog.New(slog.DiscardHandler)})
			if err != nil {
				return err
			}
			ms, err := f.TranslateGroup(cmd.Context(), group)
			if err != nil {
				return err
			}
			return printMappings(cmd.OutOrStdout(), fc.Name, group, ms)
		},
	}
	f := tr.Flags()
	f.StringVarP(&configPath, "config", "c", "", "path of the YAML config (required)")
	f.StringVar(&group, "group", "", "consumer group (required)")
	f.StringVar(&from, "from", "", "source region of the flow (required)")
	f.StringVar(&to, "to", "", "target region of the flow (required)")
	for _, n := range []string{"config", "group", "from", "to"} {
		_ = tr.MarkFlagRequired(n)
	}
	cmd.AddCommand(tr)
	return cmd
}

func flowBetween(cfg *config.Config, from, to string) (config.Flow, error) {
	for _, fc := range cfg.Flows {
		if fc.Source == from && fc.Target == to {
			return fc, nil
		}
	}
	return config.Flow{}, fmt.Errorf("no flow from %q to %q in the config", from, to)
}

func printMappings(w io.Writer, flow, group string, ms []mirror.Mapping) error {
	fmt.Fprintf(w, "flow %s, group %s\n", flow, group)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TOPIC\tPARTITION\tSOURCE OFFSET\tTARGET TOPIC\tTARGET OFFSET")
	for _, m := range ms {
		target := fmt.Sprint(m.TargetOffset)
		if !m.Translated {
			target = "not yet mirrored"
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\n", m.Topic, m.Partition, m.SourceOffset, m.RemoteTopic, target)
	}
	if len(ms) == 0 {
		fmt.Fprintln(tw, "(no committed offsets on mirrored topics)")
	}
	return tw.Flush()
}
