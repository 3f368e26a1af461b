package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"runtime/debug"

	"github.com/spf13/cobra"

	"github.com/regionsync/regionsync/internal/config"
)

type runOptions struct {
	configPath string
	region     string
	listen     string
	runFlows   bool
	workerID   string
}

func newRunCmd(g *globalFlags) *cobra.Command {
	o := &runOptions{}
	cmd := &cobra.Command{
		Use:   "run --config FILE --region NAME",
		Short: "Run the long-lived worker of one region",
		Long: `run is the worker of one region. It loads and validates the config (any
problem stops it before it connects to anything), connects to the region's
Kafka, etcd, NATS and (if configured) Cassandra with their TLS and
authentication settings, probes them every 2 s, and serves /metrics,
/healthz and /readyz (503 until every dependency answers). SIGINT or SIGTERM
stops it gracefully.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Load(o.configPath)
			if err != nil {
				return err
			}
			// Config settings apply unless the flags were given.
			if !cmd.Flags().Changed("log-format") {
				g.logFormat = cfg.Server.LogFormat
			}
			if !cmd.Flags().Changed("log-level") {
				g.logLevel = cfg.Server.LogLevel
			}
			if cfg.Server.MemoryLimitMiB > 0 && os.Getenv("GOMEMLIMIT") == "" {
				debug.SetMemoryLimit(int64(cfg.Server.MemoryLimitMiB) << 20)
			}
			return runWorker(cmd.Context(), cmd.ErrOrStderr(), g, o, cfg)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.configPath, "config", "c", "", "path of the YAML config (required)")
	f.StringVar(&o.region, "region", "", "name of the region this worker runs in (required)")
	f.StringVar(&o.listen, "listen", "", "override server.listen from the config")
	f.BoolVar(&o.runFlows, "run-flows", true, "run the flows whose target is this region (false: an observer-only worker)")
	f.StringVar(&o.workerID, "worker-id", "", "worker id, unique in the deployment (default <hostname>-<pid>)")
	_ = cmd.MarkFlagRequired("config")
	_ = cmd.MarkFlagRequired("region")
	return cmd
}

func runWorker(ctx context.Context, stderr io.Writer, g *globalFlags, o *runOptions, cfg *config.Config) error {
	region, ok := cfg.Region(o.region)
	if !ok {
		return fmt.Errorf("--region %q: not in %s (regions: %v)", o.region, o.configPath, regionNames(cfg))
	}
	listen := cfg.Server.Listen
	if o.listen != "" {
		listen = o.listen
	}
	a, err := newApp(stderr, g, listen)
	if err != nil {
		return err
	}
	if err := a.addRegion(cfg, region); err != nil {
		return err
	}
	if err := a.addNode(cfg, region, o.workerID); err != nil {
		return err
	}
	if o.runFlows {
		if err := a.addFlows(cfg, region.Name); err != nil {
			return err
		}
	}
	if err := a.addReplication(cfg); err != nil {
		return err
	}
	if err := a.addReadiness(cfg); err != nil {
		return err
	}
	if err := a.addReconcile(cfg); err != nil {
		return err
	}
	if err := a.addGate(cfg, region.Name); err != nil {
		return err
	}
	memLimit := "none"
	if lim := debug.SetMemoryLimit(-1); lim != math.MaxInt64 {
		memLimit = fmt.Sprintf("%d MiB", lim>>20)
	}
	a.log.Info("regionsync worker starting", "region", region.Name, "version", buildVersion(), "config", o.configPath, "memory_limit", memLimit)
	return a.run(ctx)
}
