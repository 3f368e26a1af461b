package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/spf13/cobra"

	"github.com/regionsync/regionsync/consistency"
	"github.com/regionsync/regionsync/internal/config"
)

type cassDiffOptions struct {
	configPath, keyspace, table, a, b, consistency string
	splits                                         int
	json                                           bool
}

func newCassandraDiffCmd() *cobra.Command {
	o := &cassDiffOptions{}
	cmd := &cobra.Command{
		Use:   "cassandra --config FILE --keyspace K [--table T] [--a east --b west]",
		Short: "Diff a keyspace's tables between two regions' Cassandra DCs (dry run)",
		Long: `cassandra compares tables DC by DC: the token ring is split into --splits
ranges, each range is read in each DC through a session that only uses that
DC's nodes (LOCAL_ONE or LOCAL_QUORUM; never ALL or EACH_QUORUM, whose read
repair would hide the divergence), values and write times are hashed, and
only ranges whose hashes differ are compared row by row. It lists rows
missing in a DC (never written there, or deleted there later: CQL shows no
tombstones) and rows whose cells differ, with the DC whose write is newer.
It writes nothing. A progress bar goes to stderr when it is a terminal.
Exit 0 when the DCs agree, 3 when they do not.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Load(o.configPath)
			if err != nil {
				return err
			}
			return runCassandraDiff(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr(), cfg, o)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.configPath, "config", "c", "", "path of the YAML config (required)")
	f.StringVar(&o.keyspace, "keyspace", "", "keyspace (required)")
	f.StringVar(&o.table, "table", "", "one table (default: every table of the keyspace)")
	f.StringVar(&o.a, "a", "", "first region (default: the first region with Cassandra)")
	f.StringVar(&o.b, "b", "", "second region (default: the next region with Cassandra)")
	f.StringVar(&o.consistency, "consistency", "LOCAL_ONE", "LOCAL_ONE or LOCAL_QUORUM")
	f.IntVar(&o.splits, "splits", 256, "token ranges")
	f.BoolVar(&o.json, "json", false, "print the reports as JSON")
	_ = cmd.MarkFlagRequired("config")
	_ = cmd.MarkFlagRequired("keyspace")
	return cmd
}

func runCassandraDiff(ctx context.Context, stdout, stderr io.Writer, cfg *config.Config, o *cassDiffOptions) error {
	dcs, err := observedDCs(cfg)
	if err != nil {
		return err
	}
	pick := func(name string, not string) (int, error) {
		for i, d := range dcs {
			if (name == "" && d.Region != not) || d.Region == name {
				return i, nil
			}
		}
		return 0, fmt.Errorf("no region %q with Cassandra in the config", name)
	}
	ia, err := pick(o.a, "")
	if err != nil {
		return err
	}
	ib, err := pick(o.b, dcs[ia].Region)
	if err != nil || ib == ia {
		return fmt.Errorf("need two regions with Cassandra (--a, --b): %v", err)
	}
	cons, err := parseConsistency(o.consistency)
	if err != nil {
		return fmt.Errorf("--consistency: %w", err)
	}
	sa, err := dcs[ia].Cluster.CreateSession()
	if err != nil {
		return fmt.Errorf("dc %s: %w", dcs[ia].DC, err)
	}
	defer sa.Close()
	sb, err := dcs[ib].Cluster.CreateSession()
	if err != nil {
		return fmt.Errorf("dc %s: %w", dcs[ib].DC, err)
	}
	defer sb.Close()
	tables := []string{o.table}
	if o.table == "" {
		if tables, err = consistency.ListTables(ctx, sa, o.keyspace); err != nil {
			return err
		}
	}
	tty := false
	if f, ok := stderr.(*os.File); ok {
		tty = isatty.IsTerminal(f.Fd())
	}
	var reports []consistency.TableDiffReport
	divergent := false
	for _, t := range tables {
		started := time.Now()
		rep, err := consistency.DiffTable(ctx, consistency.TableDiffOptions{Keyspace: o.keyspace, Table: t, Splits: o.splits, Consistency: cons,
			A: consistency.DiffDC{Name: dcs[ia].DC, Session: sa}, B: consistency.DiffDC{Name: dcs[ib].DC, Session: sb},
			Progress: func(done, total int) {
				if tty {
					progressBar(stderr, o.keyspace+"."+t, done, total, started)
				}
			}})
		if tty {
			fmt.Fprintln(stderr)
		}
		if err != nil {
			return err
		}
		reports = append(reports, rep)
		divergent = divergent || len(rep.Divergent) > 0
		if !o.json {
			writeTableDiff(stdout, rep)
		}
	}
	if o.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(reports); err != nil {
			return err
		}
	}
	if divergent {
		return exitError{3}
	}
	return nil
}

// progressBar redraws "[#####.....] 120/256 ranges, ETA 3s" in place.
func progressBar(w io.Writer, what string, done, total int, started time.Time) {
	const width = 30
	n := width * done / max(total, 1)
	eta := "?"
	if done > 0 {
		eta = (time.Since(started) * time.Duration(total-done) / time.Duration(done)).Round(time.Second).String()
	}
	fmt.Fprintf(w, "\r%s [%s%s] %d/%d ranges, ETA %s ", what, strings.Repeat("#", n), strings.Repeat(".", width-n), done, total, eta)
}

func writeTableDiff(w io.Writer, r consistency.TableDiffReport) {
	missing := map[string]int{}
	cells := 0
	for _, d := range r.Divergent {
		if d.Kind == "missing" {
			missing[d.MissingIn]++
		} else {
			cells++
		}
	}
	verdict := "IDENTICAL"
	if len(r.Divergent) > 0 {
		verdict = "DIVERGENT"
	}
	fmt.Fprintf(w, "%s.%s %s ⇄ %s: %s — %d rows in %s, %d in %s; %d of %d ranges differ; missing in %s %d, in %s %d; cells differ %d (%s)\n",
		r.Keyspace, r.Table, r.A, r.B, verdict, r.RowsA, r.A, r.RowsB, r.B, r.RangesDiffering, r.Ranges, r.A, missing[r.A], r.B, missing[r.B], cells, r.Took.Round(time.Millisecond))
	for i, d := range r.Divergent {
		if i == 20 {
			fmt.Fprintf(w, "  … %d more (--json lists all)\n", len(r.Divergent)-20)
			break
		}
		if d.Kind == "missing" {
			fmt.Fprintf(w, "  %s: missing in %s\n", d.Key, d.MissingIn)
			continue
		}
		var cs []string
		for _, c := range d.Cells {
			cs = append(cs, fmt.Sprintf("%s (newer in %s)", c.Column, c.Newer))
		}
		fmt.Fprintf(w, "  %s: cells differ: %s\n", d.Key, strings.Join(cs, ", "))
	}
}
