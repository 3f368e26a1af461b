package replicate

import (
	"context"
	"fmt"
	"math"
	"sync"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"
)

// repairReader keeps, per keyspace, when its least recently repaired table
// was last repaired successfully (system_distributed.repair_history),
// re-read every interval.
type repairReader struct {
	interval time.Duration

	mu     sync.Mutex
	readAt time.Time
	last   map[string]time.Time // keyspace → last success; zero: never
	errs   map[string]error
}

func newRepairReader(interval time.Duration) *repairReader {
	return &repairReader{interval: interval, last: map[string]time.Time{}, errs: map[string]error{}}
}

// since is the age of keyspace's last successful repair: +Inf when never,
// unknown when it could not be read.
func (r *repairReader) since(keyspace string, now time.Time) Figure {
	r.mu.Lock()
	defer r.mu.Unlock()
	t, ok := r.last[keyspace]
	switch {
	case !ok || r.errs[keyspace] != nil:
		return UnknownFigure()
	case t.IsZero():
		return Figure(math.Inf(1))
	}
	return Figure(max(0, now.Sub(t).Seconds()))
}

// refresh re-reads the history when interval has passed, through the first
// DC session that answers.
func (r *repairReader) refresh(ctx context.Context, dcs []*dcSession, keyspaces []string, now time.Time) {
	r.mu.Lock()
	due := now.Sub(r.readAt) >= r.interval
	r.mu.Unlock()
	if !due || len(keyspaces) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for _, d := range dcs {
		s, err := d.session()
		if err != nil {
			continue
		}
		last, errs := map[string]time.Time{}, map[string]error{}
		for _, ks := range keyspaces {
			last[ks], errs[ks] = lastRepair(ctx, s, ks)
		}
		r.mu.Lock()
		r.readAt, r.last, r.errs = now, last, errs
		r.mu.Unlock()
		return
	}
}

// lastRepair returns when every table of keyspace had last been repaired
// successfully (the oldest of the tables' latest successes; zero if a table
// never was).
func lastRepair(ctx context.Context, s *gocql.Session, keyspace string) (time.Time, error) {
	var tables []string
	iter := s.Query("SELECT table_name FROM system_schema.tables WHERE keyspace_name = ?", keyspace).Consistency(gocql.One).IterContext(ctx)
	var t string
	for iter.Scan(&t) {
		tables = append(tables, t)
	}
	if err := iter.Close(); err != nil {
		return time.Time{}, fmt.Errorf("tables of %s: %w", keyspace, err)
	}
	if len(tables) == 0 {
		return time.Now(), nil // nothing to repair
	}
	var oldest time.Time
	for i, table := range tables {
		var (
			latest, finished time.Time
			status           string
		)
		iter := s.Query("SELECT status, finished_at FROM system_distributed.repair_history WHERE keyspace_name = ? AND columnfamily_name = ?",
			keyspace, table).Consistency(gocql.One).PageSize(1000).IterContext(ctx)
		for iter.Scan(&status, &finished) {
			if status == "SUCCESS" && finished.After(latest) {
				latest = finished
			}
		}
		if err := iter.Close(); err != nil {
			return time.Time{}, fmt.Errorf("repair history of %s.%s: %w", keyspace, table, err)
		}
		if latest.IsZero() {
			return time.Time{}, nil
		}
		if i == 0 || latest.Before(oldest) {
			oldest = latest
		}
	}
	return oldest, nil
}
