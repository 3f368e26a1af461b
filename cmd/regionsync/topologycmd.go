package main

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/regionsync/regionsync/internal/clients"
	"github.com/regionsync/regionsync/internal/config"
	"github.com/regionsync/regionsync/topology"
)

type topologyOptions struct {
	configPath string
	region     string
	expect     int64
	timeout    time.Duration
}

func newTopologyCmd() *cobra.Command {
	o := &topologyOptions{}
	cmd := &cobra.Command{
		Use:   "topology",
		Short: "Show or change the region registry, workers and leaders in etcd",
	}
	pf := cmd.PersistentFlags()
	pf.StringVarP(&o.configPath, "config", "c", "", "path of the YAML config (required)")
	pf.StringVar(&o.region, "region", "", "region whose etcd endpoints and credentials to use (default: the first region)")
	pf.DurationVar(&o.timeout, "timeout", 10*time.Second, "overall deadline")
	_ = cmd.MarkPersistentFlagRequired("config")

	show := &cobra.Command{
		Use:   "show",
		Short: "Print regions, roles, workers, leaders and etcd member health",
		Long: `show reads regionsync's keys linearizably (falling back to a serializable
read, marked STALE, when quorum is lost) and checks every etcd member's
status from the chosen region.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cli, cfg, region, err := o.connect()
			if err != nil {
				return err
			}
			defer cli.Close()
			ctx, cancel := context.WithTimeout(cmd.Context(), o.timeout)
			defer cancel()
			t, err := topology.Show(ctx, cli, cfg.EtcdPrefix, topology.ShowOptions{Observer: region})
			if err != nil {
				return err
			}
			return t.WriteText(cmd.OutOrStdout())
		},
	}
	apply := &cobra.Command{
		Use:   "apply FILE",
		Short: "Write region specs to etcd (compare-and-swap on the registry's revision)",
		Long: `apply validates FILE (every problem is reported, nothing is written on
error) and writes its region specs in one transaction. With
--expect-revision N (from "topology show") the write happens only if no
region key changed after revision N; -1 writes unconditionally.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			specs, err := topology.LoadSpecFile(args[0])
			if err != nil {
				return err
			}
			cli, cfg, _, err := o.connect()
			if err != nil {
				return err
			}
			defer cli.Close()
			ctx, cancel := context.WithTimeout(cmd.Context(), o.timeout)
			defer cancel()
			rev, err := topology.Apply(ctx, cli, cfg.EtcdPrefix, specs, o.expect)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "applied %d region spec(s) at revision %d\n", len(specs), rev)
			return nil
		},
	}
	apply.Flags().Int64Var(&o.expect, "expect-revision", topology.AnyRevision, "registry revision the write is conditioned on (-1: none)")
	cmd.AddCommand(show, apply)
	return cmd
}

// connect loads the config and opens an etcd client with the chosen
// region's endpoints, TLS and credentials.
func (o *topologyOptions) connect() (*clientv3.Client, *config.Config, string, error) {
	cfg, err := config.Load(o.configPath)
	if err != nil {
		return nil, nil, "", err
	}
	if len(cfg.Regions) == 0 {
		return nil, nil, "", fmt.Errorf("%s: no regions", o.configPath)
	}
	r := cfg.Regions[0]
	if o.region != "" {
		var ok bool
		if r, ok = cfg.Region(o.region); !ok {
			return nil, nil, "", fmt.Errorf("--region %q: not in %s (regions: %v)", o.region, o.configPath, regionNames(cfg))
		}
	}
	ec, err := clients.Etcd(r.Name, r.Etcd)
	if err != nil {
		return nil, nil, "", err
	}
	cli, err := clientv3.New(ec)
	if err != nil {
		return nil, nil, "", fmt.Errorf("region %q: etcd %v: %w", r.Name, r.Etcd.Endpoints, err)
	}
	return cli, cfg, r.Name, nil
}
