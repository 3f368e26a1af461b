package consistency

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"

	"github.com/regionsync/regionsync/topology"
)

// ListedRows is how many divergent rows per table a stored report or saved
// progress lists (the counts are always complete).
const ListedRows = 100

// retryFailedRun is how soon a scheduled run that failed is tried again.
const retryFailedRun = 5 * time.Minute

// ErrJobRunning: another process holds the job's lock.
var ErrJobRunning = errors.New("the job is already running")

// CassandraJob is a configured Cassandra cross-DC diff (and repair) of a
// keyspace's tables between two regions' DCs. A run holds an etcd lock
// (reconcile-state/cassandra/<job>/lock), so it is never started twice,
// whether by a region leader's schedule or by `regionsync reconcile run`;
// it saves its progress after every token range
// (reconcile-state/cassandra/<job>/progress), and a run that finds
// progress of the same kind resumes after the last completed range.
// The finished report replaces reconcile/cassandra/<job> (readiness reads
// it) and the progress is deleted, in one transaction.
type CassandraJob struct {
	Name     string
	Keyspace string
	// Tables to compare; empty: every table of the keyspace.
	Tables           []string
	RegionA, RegionB string
	// A and B are the DCs' sessions; or Open, when set, opens them for each
	// run (and A.Name, B.Name name the DCs before that).
	A, B        DiffDC
	Open        func(context.Context) (a, b DiffDC, close func(), err error)
	Splits      int
	Consistency gocql.Consistency
	Repair      bool
	// RateLimit in rows per second read from each DC; 0 is no limit.
	RateLimit int
	Keys      topology.Keys
	// Interval between scheduled runs (from the end of one to the start of
	// the next) and Jitter, a random delay added to each. Default 24h, 0.
	Interval, Jitter time.Duration
	Metrics          *Metrics
	// Publish, when set, receives every finished report (the NATS side).
	Publish func(context.Context, CassandraReport)
	// Progress, when set, is called after every range.
	Progress func(table string, done, total int)
	Log      *slog.Logger
}

// CassandraReportKey is where the latest report of a Cassandra job is kept.
func CassandraReportKey(k topology.Keys, job string) string {
	return k.Prefix + "reconcile/cassandra/" + job
}

// CassandraProgressKey holds the saved progress of a Cassandra job's
// unfinished run (JSON; the lock is a sibling, .../lock).
func CassandraProgressKey(k topology.Keys, job string) string {
	return k.Prefix + "reconcile-state/cassandra/" + job + "/progress"
}

// CassandraStatePrefix holds the lock and progress of every Cassandra job.
func CassandraStatePrefix(k topology.Keys) string { return k.Prefix + "reconcile-state/cassandra/" }

func (j *CassandraJob) stateKey(k string) string {
	return j.Keys.Prefix + "reconcile-state/cassandra/" + j.Name + "/" + k
}

// CassandraProgress is the saved state of an unfinished run, as stored at
// CassandraProgressKey.
type CassandraProgress struct {
	Report  CassandraReport  `json:"report"`  // tables finished so far
	Current *TableDiffReport `json:"current"` // the table in progress
	Tables  []string         `json:"tables"`  // every table of the run, in order
	Splits  int              `json:"splits"`
}

// Task is the topology.LeaderFunc: a run every Interval (plus jitter) while
// this worker leads RegionA. A run the lock shows elsewhere is skipped; a
// failed run is tried again after at most 5 minutes.
func (j *CassandraJob) Task(ctx context.Context, l *topology.Leader) error {
	if j.Interval <= 0 {
		j.Interval = 24 * time.Hour
	}
	for {
		d := time.Duration(0)
		if j.Jitter > 0 {
			d = rand.N(j.Jitter)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(d):
		}
		_, err := j.RunOnce(ctx, l.Client(), l.Fence())
		next := j.Interval
		switch {
		case ctx.Err() != nil:
			return nil
		case errors.Is(err, ErrJobRunning):
			j.Log.Info("consistency: cassandra job already running elsewhere; skipped", "job", j.Name)
		case err != nil:
			// A failed run (a DC down, etcd unreachable) is retried soon,
			// resuming its saved progress, not a whole interval later.
			next = min(j.Interval, retryFailedRun)
			j.Log.Warn("consistency: cassandra job failed; it resumes from its saved progress", "job", j.Name, "retry_in", next, "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(next):
		}
	}
}

// RunOnce runs the job to the end (resuming saved progress) under its lock.
// fences are extra comparisons every write carries (a leader's fence).
func (j *CassandraJob) RunOnce(ctx context.Context, cli *clientv3.Client, fences ...clientv3.Cmp) (CassandraReport, error) {
	ctx, owner, release, err := j.lock(ctx, cli)
	if err != nil {
		return CassandraReport{}, err
	}
	defer release()
	if j.Open != nil {
		a, b, closeDCs, err := j.Open(ctx)
		if err != nil {
			return CassandraReport{}, fmt.Errorf("job %s: %w", j.Name, err)
		}
		defer closeDCs()
		j.A, j.B = a, b
	}
	cmps := append([]clientv3.Cmp{owner}, fences...)
	put := func(ctx context.Context, ops ...clientv3.Op) error {
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		resp, err := cli.Txn(ctx).If(cmps...).Then(ops...).Commit()
		if err != nil {
			return err
		}
		if !resp.Succeeded {
			return fmt.Errorf("job %s: lost its lock or leadership", j.Name)
		}
		return nil
	}
	p, err := j.start(ctx, cli)
	if err != nil {
		return CassandraReport{}, err
	}
	j.Metrics.cassStarted(j.Name, p.Report.Resumed)
	if err := j.runTables(ctx, p, put); err != nil {
		j.Metrics.cassFinished(j.Name, "error")
		return p.Report, err
	}
	r := p.Report
	r.FinishedAt = time.Now().UTC()
	for i := range r.Tables {
		r.Tables[i] = capped(r.Tables[i])
	}
	b, err := json.Marshal(r)
	if err != nil {
		return r, err
	}
	if err := put(ctx, clientv3.OpPut(CassandraReportKey(j.Keys, j.Name), string(b)), clientv3.OpDelete(j.stateKey("progress"))); err != nil {
		j.Metrics.cassFinished(j.Name, "error")
		return r, fmt.Errorf("job %s: report not stored: %w", j.Name, err)
	}
	j.Metrics.cassReport(r)
	if j.Publish != nil {
		j.Publish(ctx, r)
	}
	return r, nil
}

// lock takes the job's etcd lock, or fails with ErrJobRunning. The context
// it returns ends with the lock's session; owner is the comparison every
// write carries; release unlocks.
func (j *CassandraJob) lock(ctx context.Context, cli *clientv3.Client) (context.Context, clientv3.Cmp, func(), error) {
	sess, err := concurrency.NewSession(cli, concurrency.WithTTL(10), concurrency.WithContext(ctx))
	if err != nil {
		return nil, clientv3.Cmp{}, nil, fmt.Errorf("job %s: etcd session: %w", j.Name, err)
	}
	mu := concurrency.NewMutex(sess, j.stateKey("lock"))
	if err := mu.TryLock(ctx); err != nil {
		_ = sess.Close()
		if errors.Is(err, concurrency.ErrLocked) {
			return nil, clientv3.Cmp{}, nil, fmt.Errorf("job %s: %w", j.Name, ErrJobRunning)
		}
		return nil, clientv3.Cmp{}, nil, fmt.Errorf("job %s: lock: %w", j.Name, err)
	}
	ctx, cancel := context.WithCancel(ctx)
	go func() {
		select {
		case <-sess.Done():
			cancel()
		case <-ctx.Done():
		}
	}()
	release := func() {
		cancel()
		uctx, ucancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer ucancel()
		_ = mu.Unlock(uctx)
		_ = sess.Close()
	}
	return ctx, mu.IsOwner(), release, nil
}

// runTables diffs the tables p has not finished, saving p after every
// range through put.
func (j *CassandraJob) runTables(ctx context.Context, p *CassandraProgress, put func(context.Context, ...clientv3.Op) error) error {
	for ti := len(p.Report.Tables); ti < len(p.Tables); ti++ {
		table := p.Tables[ti]
		resume := p.Current
		if resume != nil && resume.Table != table {
			resume = nil
		}
		j.Metrics.cassSeed(j.Name, resume)
		rep, err := DiffTable(ctx, TableDiffOptions{Keyspace: j.Keyspace, Table: table, A: j.A, B: j.B, Splits: p.Splits,
			Consistency: j.Consistency, Repair: j.Repair, RateLimit: j.RateLimit, Resume: resume,
			OnRange: func(r *TableDiffReport) error {
				j.Metrics.cassRange(j.Name, r)
				cur := capped(*r)
				p.Current = &cur
				b, err := json.Marshal(p)
				if err != nil {
					return err
				}
				return put(ctx, clientv3.OpPut(j.stateKey("progress"), string(b)))
			},
			Progress: func(done, total int) {
				if j.Progress != nil {
					j.Progress(table, done, total)
				}
			}})
		if err != nil {
			return fmt.Errorf("job %s, table %s.%s (progress saved at range %d of %d): %w", j.Name, j.Keyspace, table, rep.Next, rep.Ranges, err)
		}
		p.Report.Tables = append(p.Report.Tables, rep)
		p.Current = nil
	}
	return nil
}

// start loads saved progress of the same kind, or begins a new run.
func (j *CassandraJob) start(ctx context.Context, cli *clientv3.Client) (*CassandraProgress, error) {
	mode := "dry-run"
	if j.Repair {
		mode = "repair"
	}
	if j.Splits <= 0 {
		j.Splits = 256
	}
	gctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	resp, err := cli.Get(gctx, j.stateKey("progress"))
	cancel()
	if err != nil {
		return nil, fmt.Errorf("job %s: read progress: %w", j.Name, err)
	}
	if len(resp.Kvs) == 1 {
		var p CassandraProgress
		err := json.Unmarshal(resp.Kvs[0].Value, &p)
		switch {
		case err != nil:
			j.Log.Warn("consistency: saved progress unreadable; starting over", "job", j.Name, "key", string(resp.Kvs[0].Key), "err", err)
		case p.Report.Keyspace != j.Keyspace || p.Report.Mode != mode || p.Splits != j.Splits || p.Report.DCA != j.A.Name || p.Report.DCB != j.B.Name:
			j.Log.Info("consistency: saved progress is of another kind of run; starting over", "job", j.Name)
		default:
			p.Report.Resumed = true
			j.Log.Info("consistency: resuming", "job", j.Name, "tables_done", len(p.Report.Tables), "current", p.Current != nil)
			return &p, nil
		}
	}
	tables := j.Tables
	if len(tables) == 0 {
		if tables, err = ListTables(ctx, j.A.Session, j.Keyspace); err != nil {
			return nil, err
		}
	}
	return &CassandraProgress{Tables: tables, Splits: j.Splits, Report: CassandraReport{SchemaVersion: 1, Kind: "cassandra-diff", Job: j.Name,
		Keyspace: j.Keyspace, RegionA: j.RegionA, RegionB: j.RegionB, DCA: j.A.Name, DCB: j.B.Name, Mode: mode,
		ScheduleSeconds: (j.Interval + j.Jitter).Seconds(),
		StartedAt:       time.Now().UTC(), Tables: []TableDiffReport{}, Errors: []string{}}}, nil
}

// ListTables lists a keyspace's tables.
func ListTables(ctx context.Context, s *gocql.Session, keyspace string) ([]string, error) {
	iter := s.Query("SELECT table_name FROM system_schema.tables WHERE keyspace_name = ?", keyspace).IterContext(ctx)
	var tables []string
	var t string
	for iter.Scan(&t) {
		tables = append(tables, t)
	}
	if err := iter.Close(); err != nil {
		return nil, fmt.Errorf("tables of keyspace %s: %w", keyspace, err)
	}
	if len(tables) == 0 {
		return nil, fmt.Errorf("keyspace %s has no tables (or does not exist)", keyspace)
	}
	return tables, nil
}

// capped lists at most ListedRows divergent rows.
func capped(r TableDiffReport) TableDiffReport {
	if len(r.Divergent) > ListedRows {
		r.Divergent = r.Divergent[:ListedRows:ListedRows]
	}
	return r
}
