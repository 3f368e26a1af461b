// Command regionsync is the single regionsync binary: it parses flags and
// config and starts components; the logic lives in the concept folders.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

// exitError carries a process exit code through cobra.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newRootCmd(os.Stdout, os.Stderr).ExecuteContext(ctx)
	stop()
	var ee exitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		os.Exit(ee.code)
	default:
		fmt.Fprintln(os.Stderr, "regionsync:", err)
		os.Exit(1)
	}
}

// globalFlags are the flags every subcommand shares.
type globalFlags struct {
	logFormat string
	logLevel  string
	pprof     bool
}

func newRootCmd(stdout, stderr io.Writer) *cobra.Command {
	g := &globalFlags{}
	root := &cobra.Command{
		Use:   "regionsync",
		Short: "Mirror Kafka across regions and tell routers when a region can take traffic",
		Long: `regionsync mirrors Kafka topics between data centers, watches the cross-DC
etcd cluster and Cassandra's multi-DC replication, reconciles divergence, and
publishes signed, expiring region-readiness verdicts that gate failover.

Start with "regionsync dev" to see everything run in one process on embedded
defaults, or "regionsync run --config FILE" for the worker of one region.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.PersistentFlags().StringVar(&g.logFormat, "log-format", "text", "log format: text or json")
	root.PersistentFlags().StringVar(&g.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	root.PersistentFlags().BoolVar(&g.pprof, "pprof", false, "also serve Go's profiler at /debug/pprof/ on the metrics listener (off by default: profiles reveal internals)")
	root.AddCommand(
		newVersionCmd(),
		newConfigCmd(),
		newRunCmd(g),
		newDevCmd(g),
		newOffsetsCmd(),
		newTopologyCmd(),
		newStatusCmd(),
		newGateCmd(),
		newKeysCmd(),
		newReconcileCmd(),
	)
	return root
}
