package topology

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// KV is one stored key-value pair as a Decoder sees it.
type KV struct {
	Key            string // full key
	Rel            string // Key without the watched prefix
	Value          []byte
	CreateRevision int64
	ModRevision    int64
	Lease          int64 // 0 when the key has no lease
}

// Decoder turns one stored value into a T. An error marks the key malformed:
// it is reported (ValueError in the snapshot, a warning log and
// regionsync_topology_malformed_values_total) and left out of the items. A
// decoder must not panic and must not keep kv.Value.
type Decoder[T any] func(kv KV) (T, error)

// ValueError is a stored value that could not be decoded.
type ValueError struct {
	Key      string
	Revision int64 // the value's mod revision
	Err      error // wraps ErrMalformedValue or ErrUnknownSchemaVersion for the built-in decoders
}

// Error names the key and revision; multi-line reasons are joined with "; ".
func (e ValueError) Error() string {
	return fmt.Sprintf("%s (revision %d): %s", e.Key, e.Revision, strings.ReplaceAll(e.Err.Error(), "\n", "; "))
}

// Unwrap returns the decoding error.
func (e ValueError) Unwrap() error { return e.Err }

// Snapshot is the decoded state of a watched prefix.
type Snapshot[T any] struct {
	// Revision: Items and Errors equal what a read of the prefix at this
	// revision returns (decoded).
	Revision int64
	// Items by key relative to the prefix ("east", "east/w1"). Never nil.
	// Shared between readers: do not modify.
	Items map[string]T
	// Errors are the keys whose current value is malformed, sorted by key.
	// Those keys are not in Items.
	Errors []ValueError
}

// WatchOptions tune a Watcher. Zero values mean the defaults.
type WatchOptions struct {
	// Name labels logs and metrics (watch="regions"). Default: the prefix.
	Name string
	// Region is the observing region, for the region label of metrics.
	Region string
	// Quiet: a snapshot is published once no change arrived for this long.
	// Default 50 ms.
	Quiet time.Duration
	// MaxDelay: while changes keep arriving, a snapshot is published at
	// least this often. Default 500 ms.
	MaxDelay time.Duration
	// ProgressInterval: how often the watcher asks etcd for a progress
	// notification, which moves the resume point forward while the prefix is
	// quiet. Default 5 s.
	ProgressInterval time.Duration
}

func (o *WatchOptions) defaults(prefix string) {
	if o.Name == "" {
		o.Name = prefix
	}
	if o.Quiet <= 0 {
		o.Quiet = 50 * time.Millisecond
	}
	if o.MaxDelay <= 0 {
		o.MaxDelay = 500 * time.Millisecond
	}
	if o.MaxDelay < o.Quiet {
		o.MaxDelay = o.Quiet
	}
	if o.ProgressInterval <= 0 {
		o.ProgressInterval = 5 * time.Second
	}
}

// Watcher keeps a decoded, coalesced view of every key under a prefix.
//
// Run reads the prefix, publishes a snapshot, then watches from the read's
// revision + 1 (with clientv3.WithRequireLeader, so a watch served by a
// member that lost its leader ends instead of hanging, and with progress
// notifications, which advance the resume point). When the watch stream
// ends for any reason other than compaction, it is re-established from the
// last seen revision + 1, after a backoff (100 ms doubling to 2 s). When the
// revision to resume from has been compacted, the prefix is read again and
// the state rebuilt from that read. Changes are coalesced: a snapshot is
// published once changes stop for Quiet, and at least every MaxDelay while
// they keep coming, so a burst of writes gives a few snapshots, and the last
// one always reflects the last change.
type Watcher[T any] struct {
	cli    *clientv3.Client
	prefix string
	decode Decoder[T]
	opts   WatchOptions
	m      *Metrics
	log    *slog.Logger

	started atomic.Bool
	updates chan Snapshot[T]
	mu      sync.Mutex
	current Snapshot[T]
	have    bool

	// owned by Run's goroutine
	items   map[string]T
	errs    map[string]ValueError
	rev     int64 // revision of the last applied change or read
	resume  int64 // every change up to this revision has been applied
	pending bool  // changes applied but not yet published
	first   time.Time
}

// NewWatcher returns a watcher of every key under prefix; it does no I/O
// until Run. The client stays the caller's to close, after Run returned.
// A nil m or log means no metrics or logs.
func NewWatcher[T any](cli *clientv3.Client, prefix string, decode Decoder[T], opts WatchOptions, m *Metrics, log *slog.Logger) *Watcher[T] {
	opts.defaults(prefix)
	l := orDiscard(log)
	if opts.Region != "" {
		l = l.With("region", opts.Region)
	}
	return &Watcher[T]{
		cli: cli, prefix: prefix, decode: decode, opts: opts, m: orNewMetrics(m),
		log:     l.With("watch", opts.Name, "prefix", prefix),
		updates: make(chan Snapshot[T], 1),
	}
}

// Updates delivers snapshots. It holds at most one: a newer snapshot
// replaces one not yet received, so a slow reader skips intermediate states
// but never misses the newest. Run closes it when it returns.
func (w *Watcher[T]) Updates() <-chan Snapshot[T] { return w.updates }

// Current returns the newest snapshot; ok is false until the first read of
// the prefix succeeded.
func (w *Watcher[T]) Current() (s Snapshot[T], ok bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.current, w.have
}

// Run keeps the view until ctx is cancelled, then returns nil after closing
// Updates. Errors from etcd are logged and retried, never returned; the only
// error is calling Run twice.
func (w *Watcher[T]) Run(ctx context.Context) error {
	if !w.started.CompareAndSwap(false, true) {
		return fmt.Errorf("topology: watch %q: Run called twice", w.opts.Name)
	}
	defer close(w.updates)
	bo := backoff{min: 100 * time.Millisecond, max: 2 * time.Second}
	reason := "initial"
	for {
		if err := w.resync(ctx, reason); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			w.log.Warn("topology: read of the watched prefix failed; retrying", "err", err)
			reason = "error"
			if !sleep(ctx, bo.next()) {
				return nil
			}
			continue
		}
		bo.reset()
		err := w.follow(ctx)
		if ctx.Err() != nil {
			return nil
		}
		w.log.Info("topology: resume revision compacted; re-reading the prefix", "resume_from", w.resume+1, "err", err)
		reason = "compacted"
	}
}

// resync reads the whole prefix and replaces the state with it.
func (w *Watcher[T]) resync(ctx context.Context, reason string) error {
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	resp, err := w.cli.Get(rctx, w.prefix, clientv3.WithPrefix())
	if err != nil {
		return err
	}
	old := w.errs
	w.items, w.errs = map[string]T{}, map[string]ValueError{}
	for _, kv := range resp.Kvs {
		prev, seen := old[string(kv.Key)]
		w.put(toKV(w.prefix, kv.Key, kv.Value, kv.CreateRevision, kv.ModRevision, kv.Lease), seen && prev.Revision == kv.ModRevision)
	}
	w.rev, w.resume = resp.Header.Revision, resp.Header.Revision
	w.m.resyncs.WithLabelValues(w.opts.Region, w.opts.Name, reason).Inc()
	w.publish()
	return nil
}

// errResync: the watch cannot resume (compaction); the caller re-reads.
var errResync = errors.New("resume revision compacted")

// follow watches from w.resume+1 until ctx ends (nil) or a resync is needed
// (errResync).
func (w *Watcher[T]) follow(ctx context.Context) error {
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	progress := time.NewTicker(w.opts.ProgressInterval)
	defer progress.Stop()
	bo := backoff{min: 100 * time.Millisecond, max: 2 * time.Second}
	for {
		wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
		wch := w.cli.Watch(wctx, w.prefix, clientv3.WithPrefix(), clientv3.WithRev(w.resume+1), clientv3.WithProgressNotify())
		reason, got, err := w.consume(ctx, wctx, wch, timer, progress)
		cancel()
		if w.pending { // publish what was applied before the stream ended
			timer.Stop()
			w.publish()
		}
		if ctx.Err() != nil {
			return nil
		}
		if errors.Is(err, errResync) {
			return err
		}
		if got {
			bo.reset()
		}
		w.m.restarts.WithLabelValues(w.opts.Region, w.opts.Name, reason).Inc()
		w.log.Info("topology: watch ended; resuming", "reason", reason, "err", err, "resume_from", w.resume+1)
		if !sleep(ctx, bo.next()) {
			return nil
		}
	}
}

// consume applies the responses of one watch stream. It returns why the
// stream ended and whether it delivered anything.
func (w *Watcher[T]) consume(ctx, wctx context.Context, wch clientv3.WatchChan, timer *time.Timer, progress *time.Ticker) (reason string, got bool, err error) {
	for {
		select {
		case <-ctx.Done():
			return "", got, ctx.Err()
		case <-timer.C:
			w.publish()
		case <-progress.C:
			if err := w.cli.RequestProgress(wctx); err != nil && wctx.Err() == nil {
				w.log.Debug("topology: progress request failed", "err", err)
			}
		case resp, ok := <-wch:
			if !ok {
				return "closed", got, nil
			}
			if resp.CompactRevision != 0 {
				return "compacted", got, fmt.Errorf("%w (compact revision %d)", errResync, resp.CompactRevision)
			}
			if err := resp.Err(); err != nil {
				if errors.Is(err, rpctypes.ErrNoLeader) {
					return "no_leader", got, err
				}
				return "error", got, err
			}
			if resp.Canceled {
				return "error", got, fmt.Errorf("watch canceled: %s", resp.CancelReason)
			}
			got = true
			if resp.IsProgressNotify() {
				if h := resp.Header.Revision; h > w.resume {
					w.resume = h
					w.m.watchRevision.WithLabelValues(w.opts.Region, w.opts.Name).Set(float64(h))
				}
				continue
			}
			if len(resp.Events) == 0 {
				continue
			}
			for _, ev := range resp.Events {
				kv := ev.Kv
				if ev.Type == clientv3.EventTypeDelete {
					w.del(string(kv.Key))
				} else {
					w.put(toKV(w.prefix, kv.Key, kv.Value, kv.CreateRevision, kv.ModRevision, kv.Lease), false)
				}
				w.rev = kv.ModRevision
			}
			if w.rev > w.resume {
				w.resume = w.rev
			}
			now := time.Now()
			if !w.pending {
				w.pending, w.first = true, now
			}
			wait := min(w.opts.Quiet, w.first.Add(w.opts.MaxDelay).Sub(now))
			timer.Reset(max(wait, 0))
		}
	}
}

func toKV(prefix string, key, value []byte, create, mod, lease int64) KV {
	k := string(key)
	return KV{Key: k, Rel: strings.TrimPrefix(k, prefix), Value: value, CreateRevision: create, ModRevision: mod, Lease: lease}
}

// put applies a stored value; known says the same bad value was already
// reported (after a re-read), so it is not logged and counted again.
func (w *Watcher[T]) put(kv KV, known bool) {
	v, err := w.decode(kv)
	if err != nil {
		delete(w.items, kv.Rel)
		ve := ValueError{Key: kv.Key, Revision: kv.ModRevision, Err: err}
		w.errs[kv.Key] = ve
		if !known {
			reason := "malformed"
			if errors.Is(err, ErrUnknownSchemaVersion) {
				reason = "schema_version"
			}
			w.m.malformed.WithLabelValues(w.opts.Region, w.opts.Name, reason).Inc()
			w.log.Warn("topology: malformed value ignored", "key", kv.Key, "revision", kv.ModRevision, "err", strings.ReplaceAll(err.Error(), "\n", "; "))
		}
		return
	}
	delete(w.errs, kv.Key)
	w.items[kv.Rel] = v
}

func (w *Watcher[T]) del(key string) {
	delete(w.errs, key)
	delete(w.items, strings.TrimPrefix(key, w.prefix))
}

// publish makes the state the current snapshot and offers it on Updates,
// replacing an undelivered one.
func (w *Watcher[T]) publish() {
	s := Snapshot[T]{Revision: w.rev, Items: maps.Clone(w.items)}
	for _, k := range sortedKeys(w.errs) {
		s.Errors = append(s.Errors, w.errs[k])
	}
	w.pending = false
	w.mu.Lock()
	w.current, w.have = s, true
	w.mu.Unlock()
	select {
	case w.updates <- s:
	default:
		select { // Run is the only sender, so after this the send cannot block
		case <-w.updates:
		default:
		}
		w.updates <- s
	}
	w.m.snapshots.WithLabelValues(w.opts.Region, w.opts.Name).Inc()
	w.m.malformedKeys.WithLabelValues(w.opts.Region, w.opts.Name).Set(float64(len(s.Errors)))
	w.m.watchRevision.WithLabelValues(w.opts.Region, w.opts.Name).Set(float64(w.resume))
}

// backoff doubles from min to max.
type backoff struct {
	min, max, cur time.Duration
}

func (b *backoff) next() time.Duration {
	if b.cur == 0 {
		b.cur = b.min
	} else {
		b.cur = min(2*b.cur, b.max)
	}
	return b.cur
}

func (b *backoff) reset() { b.cur = 0 }

// sleep waits d or until ctx ends; it reports whether ctx is still live.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
