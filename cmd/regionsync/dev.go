package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"

	"github.com/regionsync/regionsync/internal/config"
	"github.com/regionsync/regionsync/internal/devstack"
)

type devOptions struct {
	listen         string
	rate           int
	statusInterval time.Duration
	dataDir        string
}

func newDevCmd(g *globalFlags) *cobra.Command {
	o := &devOptions{}
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run two regions (east, west) and all their infrastructure in this process",
		Long: `dev starts, in one process and with nothing installed but Go:
  - per region (east, west) an in-process Kafka cluster (franz-go kfake),
  - one real 3-member etcd cluster (members east, west, witness),
  - a real NATS server with JetStream,
  - a synthetic producer writing keyed records with headers to orders,
    payments and inventory in east,
  - the regionsync workers of both regions,
and serves /metrics, /healthz and /readyz. It prints where everything listens,
then one status line per region every --status-interval. Ctrl-C stops it all.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runDev(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr(), g, o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.listen, "listen", "127.0.0.1:9464", "address of the metrics/health HTTP server (port 0 picks one)")
	f.IntVar(&o.rate, "rate", 200, "synthetic records per second written to east")
	f.DurationVar(&o.statusInterval, "status-interval", 5*time.Second, "how often to print the status lines")
	f.StringVar(&o.dataDir, "data-dir", "", "where etcd and JetStream keep data (default: a temporary directory removed on exit)")
	return cmd
}

// runDev runs the dev stack and the region workers until ctx is cancelled.
func runDev(ctx context.Context, stdout, stderr io.Writer, g *globalFlags, o *devOptions) error {
	a, err := newApp(stderr, g, o.listen)
	if err != nil {
		return err
	}
	stack := devstack.New(devstack.Options{Dir: o.dataDir}, a.log)
	eg, ctx := errgroup.WithContext(ctx)
	eg.Go(func() error { return stack.Run(ctx) })
	eg.Go(func() error {
		select {
		case <-stack.Ready():
		case <-ctx.Done():
			return nil
		}
		cfg := devConfig(stack.Endpoints())
		cfgPath := filepath.Join(stack.Endpoints().Dir, "regionsync.yaml")
		if err := os.WriteFile(cfgPath, []byte(cfg.String()), 0o600); err != nil {
			return fmt.Errorf("dev: write the effective config: %w", err)
		}
		for _, r := range cfg.Regions {
			if err := a.addRegion(cfg, r); err != nil {
				return err
			}
			if err := a.addNode(cfg, r, fmt.Sprintf("dev-%s-%d", r.Name, os.Getpid())); err != nil {
				return err
			}
		}
		if err := a.addFlows(cfg, ""); err != nil {
			return err
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
		if err := a.addGate(cfg, "west"); err != nil { // one NATS serves both regions in dev
			return err
		}
		producer := devstack.NewProducer("east", stack.Brokers("east"), []string{"orders", "payments", "inventory"}, o.rate, a.reg, a.log)
		status := &statusPrinter{a: a, out: stdout, every: o.statusInterval, regions: regionNames(cfg),
			extra: map[string]func() string{
				"east": func() string {
					return a.topologyStatus("east") + fmt.Sprintf(" produced=%d ", producer.Acked()) + a.readinessStatus("east")
				},
				"west": func() string {
					return a.topologyStatus("west") + " " + a.flowStatus("west") + " " + a.replicationStatus("west") + " " + a.readinessStatus("west")
				},
			}}
		return a.run(ctx, producer, status, runFunc(func(ctx context.Context) error {
			addr, err := a.server.Addr(ctx)
			if err != nil {
				return nil
			}
			printDevBanner(stdout, addr.String(), cfgPath, stack.Endpoints())
			return nil
		}))
	})
	return eg.Wait()
}

// devConfig is config.Dev with the addresses of the running stack.
func devConfig(ep devstack.Endpoints) *config.Config {
	cfg := config.Dev()
	for i := range cfg.Regions {
		r := &cfg.Regions[i]
		r.Kafka.Brokers = ep.Kafka[r.Name]
		r.Etcd.Endpoints = ep.Etcd
		r.NATS.URL = ep.NATS
	}
	return cfg
}

func regionNames(cfg *config.Config) []string {
	var out []string
	for _, r := range cfg.Regions {
		out = append(out, r.Name)
	}
	return out
}

func printDevBanner(w io.Writer, httpAddr, cfgPath string, ep devstack.Endpoints) {
	var b strings.Builder
	fmt.Fprintf(&b, "regionsync dev: running\n")
	fmt.Fprintf(&b, "  metrics:  http://%s/metrics  (health: /healthz, /readyz)\n", httpAddr)
	fmt.Fprintf(&b, "  config:   %s  (try: regionsync status --config %s)\n", cfgPath, cfgPath)
	fmt.Fprintf(&b, "  nats:     %s\n", ep.NATS)
	fmt.Fprintf(&b, "  etcd:     %s\n", strings.Join(ep.Etcd, ","))
	for _, r := range sortedKeys(ep.Kafka) {
		fmt.Fprintf(&b, "  kafka %-4s %s\n", r+":", strings.Join(ep.Kafka[r], ","))
	}
	fmt.Fprintf(&b, "  Ctrl-C stops everything.\n")
	_, _ = io.WriteString(w, b.String())
}

// runFunc adapts a function to runnable. A runFunc that returns early leaves
// the others running.
type runFunc func(ctx context.Context) error

func (f runFunc) Run(ctx context.Context) error { return f(ctx) }

// statusPrinter prints one status line per region every interval.
type statusPrinter struct {
	a       *app
	out     io.Writer
	every   time.Duration
	regions []string
	extra   map[string]func() string // region → more status
}

func (p *statusPrinter) Run(ctx context.Context) error {
	t := time.NewTicker(p.every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			rs := p.a.checker.Results()
			for _, r := range p.regions {
				line := statusLine(r, rs)
				if f, ok := p.extra[r]; ok {
					line += " " + f()
				}
				fmt.Fprintf(p.out, "%s %s\n", time.Now().Format("15:04:05"), line)
			}
		}
	}
}
