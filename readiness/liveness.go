package readiness

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
)

// SubjectWorkers is followed by ".<region>.<worker-id>": every worker
// announces itself there every HeartbeatEvery on core NATS. Etcd presence
// (a lease) shows a killed worker for up to its TTL; these heartbeats show
// it gone within HeartbeatTimeout, which lets a verdict turn UNKNOWN within
// 2 s of losing a region's last worker.
const SubjectWorkers = "regionsync.workers"

// Worker heartbeat timing.
const (
	HeartbeatEvery   = 250 * time.Millisecond
	HeartbeatTimeout = time.Second
)

// WorkerBeat is the body of a worker heartbeat.
type WorkerBeat struct {
	Region string    `json:"region"`
	ID     string    `json:"id"`
	At     time.Time `json:"at"`
}

// Beat publishes region/id's heartbeat every HeartbeatEvery until ctx ends.
func Beat(ctx context.Context, nc *nats.Conn, region, id string) {
	t := time.NewTicker(HeartbeatEvery)
	defer t.Stop()
	subject := SubjectWorkers + "." + region + "." + strings.ReplaceAll(id, ".", "_")
	for {
		b, _ := json.Marshal(WorkerBeat{Region: region, ID: id, At: time.Now()})
		_ = nc.Publish(subject, b) // buffered while disconnected; staleness is what counts
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Liveness tracks worker heartbeats seen on NATS.
type Liveness struct {
	nc *nats.Conn

	mu   sync.Mutex
	seen map[string]map[string]time.Time // region → id → last beat received
}

// WatchLiveness subscribes to every worker heartbeat through nc.
func WatchLiveness(nc *nats.Conn) (*Liveness, error) {
	l := &Liveness{nc: nc, seen: map[string]map[string]time.Time{}}
	_, err := nc.Subscribe(SubjectWorkers+".>", func(m *nats.Msg) {
		var b WorkerBeat
		if json.Unmarshal(m.Data, &b) != nil || b.Region == "" || b.ID == "" {
			return
		}
		l.mu.Lock()
		if l.seen[b.Region] == nil {
			l.seen[b.Region] = map[string]time.Time{}
		}
		l.seen[b.Region][b.ID] = time.Now()
		l.mu.Unlock()
	})
	return l, err
}

// Alive reports whether worker id of region was heard within
// HeartbeatTimeout; ok is false when the view cannot tell (NATS not
// connected), and the caller should trust etcd presence instead.
func (l *Liveness) Alive(region, id string, now time.Time) (alive, ok bool) {
	if l == nil || !l.nc.IsConnected() {
		return false, false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	t, seen := l.seen[region][id]
	return seen && now.Sub(t) <= HeartbeatTimeout, true
}
