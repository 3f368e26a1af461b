package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"
	"github.com/mattn/go-isatty"

	"github.com/regionsync/regionsync/consistency"
	"github.com/regionsync/regionsync/internal/config"
	"github.com/regionsync/regionsync/replicate"
	"github.com/regionsync/regionsync/topology"
)

// parseConsistency accepts the two read levels the diff allows.
func parseConsistency(s string) (gocql.Consistency, error) {
	switch strings.ToUpper(s) {
	case "", "LOCAL_ONE":
		return gocql.LocalOne, nil
	case "LOCAL_QUORUM":
		return gocql.LocalQuorum, nil
	}
	return 0, fmt.Errorf("consistency %q: LOCAL_ONE or LOCAL_QUORUM (ALL and EACH_QUORUM repair what they read)", s)
}

// cassandraJob builds the configured job name; its sessions are opened
// per run.
func cassandraJob(cfg *config.Config, name string, log *slog.Logger) (*consistency.CassandraJob, error) {
	var jc *config.CassandraJob
	var names []string
	for i := range cfg.Reconcile.Cassandra {
		if cfg.Reconcile.Cassandra[i].Name == name {
			jc = &cfg.Reconcile.Cassandra[i]
		}
		names = append(names, cfg.Reconcile.Cassandra[i].Name)
	}
	if jc == nil {
		return nil, fmt.Errorf("cassandra job %q: not in reconcile.cassandra of the config (jobs: %s)", name, strings.Join(names, ", "))
	}
	dcs, err := observedDCs(cfg)
	if err != nil {
		return nil, err
	}
	find := func(region string) (replicate.CassandraDC, error) {
		for _, d := range dcs {
			if d.Region == region {
				return d, nil
			}
		}
		return replicate.CassandraDC{}, fmt.Errorf("cassandra job %s: region %q has no cassandra", name, region)
	}
	a, err := find(jc.Regions[0])
	if err != nil {
		return nil, err
	}
	b, err := find(jc.Regions[1])
	if err != nil {
		return nil, err
	}
	cons, err := parseConsistency(jc.Consistency)
	if err != nil {
		return nil, err
	}
	return &consistency.CassandraJob{Name: jc.Name, Keyspace: jc.Keyspace, Tables: jc.Tables, RegionA: a.Region, RegionB: b.Region,
		A: consistency.DiffDC{Name: a.DC}, B: consistency.DiffDC{Name: b.DC}, Splits: jc.Splits, Consistency: cons, Repair: jc.Repair,
		RateLimit: max(jc.RateLimit, 0), Keys: topology.NewKeys(cfg.EtcdPrefix), Interval: jc.Interval.Std(), Jitter: jc.Jitter.Std(), Log: log,
		Open: func(context.Context) (consistency.DiffDC, consistency.DiffDC, func(), error) {
			sa, err := a.Cluster.CreateSession()
			if err != nil {
				return consistency.DiffDC{}, consistency.DiffDC{}, nil, fmt.Errorf("dc %s: %w", a.DC, err)
			}
			sb, err := b.Cluster.CreateSession()
			if err != nil {
				sa.Close()
				return consistency.DiffDC{}, consistency.DiffDC{}, nil, fmt.Errorf("dc %s: %w", b.DC, err)
			}
			return consistency.DiffDC{Name: a.DC, Session: sa}, consistency.DiffDC{Name: b.DC, Session: sb}, func() { sa.Close(); sb.Close() }, nil
		}}, nil
}

type cassRunOptions struct {
	repair, dryRun bool
	rate           int
}

// runCassandraJob runs a configured job once from the command line: the
// same lock, progress and stored report as the scheduled runs.
func runCassandraJob(ctx context.Context, stdout, stderr io.Writer, o *reconcileOptions, log *slog.Logger) error {
	top := &topologyOptions{configPath: o.configPath, region: o.region}
	cli, cfg, _, err := top.connect()
	if err != nil {
		return err
	}
	defer cli.Close()
	j, err := cassandraJob(cfg, o.cassandra, log)
	if err != nil {
		return err
	}
	switch {
	case o.cass.repair && o.cass.dryRun:
		return errors.New("--repair and --dry-run: choose one")
	case o.cass.repair:
		j.Repair = true
	case o.cass.dryRun:
		j.Repair = false
	}
	if o.cass.rate != 0 {
		j.RateLimit = max(o.cass.rate, 0)
	}
	tty := false
	if f, ok := stderr.(*os.File); ok {
		tty = isatty.IsTerminal(f.Fd())
	}
	started := time.Now()
	var current string
	j.Progress = func(table string, done, total int) {
		if !tty {
			return
		}
		if table != current {
			if current != "" {
				fmt.Fprintln(stderr)
			}
			current, started = table, time.Now()
		}
		progressBar(stderr, j.Keyspace+"."+table, done, total, started)
	}
	r, err := j.RunOnce(ctx, cli)
	if tty && current != "" {
		fmt.Fprintln(stderr)
	}
	if err != nil {
		if errors.Is(err, consistency.ErrJobRunning) {
			return fmt.Errorf("%w (another regionsync holds reconcile-state/cassandra/%s/lock; a killed run's lock expires after 10 s)", err, j.Name)
		}
		return err
	}
	if o.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(r); err != nil {
			return err
		}
	} else {
		writeCassandraReport(stdout, r)
	}
	if bad, _ := consistency.CassandraDivergence(r); bad {
		return exitError{3}
	}
	return nil
}

func writeCassandraReport(w io.Writer, r consistency.CassandraReport) {
	resumed := ""
	if r.Resumed {
		resumed = ", resumed"
	}
	ranges, rows, div, rep := r.Totals()
	fmt.Fprintf(w, "cassandra job %s: %s %s ⇄ %s (%s), %s%s, finished %s — %d ranges, %d rows, %d divergent, %d repaired\n",
		r.Job, r.Keyspace, r.DCA, r.DCB, r.RegionA+"/"+r.RegionB, r.Mode, resumed, r.FinishedAt.Format(time.RFC3339), ranges, rows, div, rep)
	for _, t := range r.Tables {
		writeTableDiff(w, t)
	}
	for _, e := range r.Errors {
		fmt.Fprintf(w, "  error: %s\n", e)
	}
	if bad, why := consistency.CassandraDivergence(r); bad {
		fmt.Fprintf(w, "  readiness: %s\n", why)
	}
}

// addCassandraJobs gives the leader of each job's first region the job.
func (a *app) addCassandraJobs(cfg *config.Config, m *consistency.Metrics) error {
	for _, jc := range cfg.Reconcile.Cassandra {
		n, ok := a.nodes[jc.Regions[0]]
		if !ok {
			continue
		}
		j, err := cassandraJob(cfg, jc.Name, a.log)
		if err != nil {
			return err
		}
		region := jc.Regions[0]
		j.Metrics = m
		j.Publish = func(ctx context.Context, r consistency.CassandraReport) {
			a.publishReport(ctx, region, "cassandra."+r.Job, r.FinishedAt, r)
		}
		n.AddLeaderTask("cassandra-"+jc.Name, j.Task)
	}
	return nil
}
