package topology

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
)

// LeaderFunc is leader-only work. It runs while its worker leads its region
// and must return soon after ctx is cancelled, which happens at once when the
// term ends (see Leader.Context). Its etcd writes should go through l, which
// fences them. Returning nil ends the task but not the term; returning an
// error ends the term: the worker resigns so that another may lead, and
// campaigns again after a backoff.
type LeaderFunc func(ctx context.Context, l *Leader) error

// MemberOptions configure a Member.
type MemberOptions struct {
	// Prefix of regionsync's keys. Default DefaultPrefix.
	Prefix string
	// Region the worker belongs to. Required.
	Region string
	// WorkerID, unique across the deployment. Default "<hostname>-<pid>".
	WorkerID string
	// Version of regionsync, recorded in the presence value.
	Version string
	// SessionTTL of the worker's lease, rounded up to whole seconds (lease
	// TTLs are seconds; etcd may raise a TTL below its minimum, 2 s with the
	// default 1 s election timeout). A killed leader is replaced about this
	// long after its last keep-alive. Default 5 s. Keep it at several
	// seconds with etcd auth on: clientv3 authenticates again for every new
	// gRPC stream, etcd applies each Authenticate (a bcrypt hash) through
	// raft, and lease renewals wait for the apply loop.
	SessionTTL time.Duration
	// Observer: register presence but never campaign.
	Observer bool
}

func (o *MemberOptions) defaults() error {
	if o.WorkerID == "" {
		host, _ := os.Hostname()
		o.WorkerID = fmt.Sprintf("%s-%d", host, os.Getpid())
	}
	if o.SessionTTL <= 0 {
		o.SessionTTL = 5 * time.Second
	}
	var p problems
	if !regionNameRE.MatchString(o.Region) {
		p.addf("region", "must be a region name, got %q", o.Region)
	}
	if !workerIDRE.MatchString(o.WorkerID) {
		p.addf("worker_id", "must be letters, digits, '.', '_', ':' or '-' (1-128), got %q", o.WorkerID)
	}
	return p.err()
}

func (o MemberOptions) ttlSeconds() int {
	return int(math.Ceil(o.SessionTTL.Seconds()))
}

type leaderTask struct {
	name string
	fn   LeaderFunc
}

// Member is one worker's membership of its region: presence bound to a
// lease, and (unless an observer) candidacy in the region's election and
// leader-only work while it leads.
//
// Run, in a loop until ctx ends:
//  1. grants a lease (SessionTTL) and keeps it alive (concurrency.Session);
//  2. writes <prefix>workers/<region>/<id> with that lease; if the key exists
//     under another lease (same id elsewhere, or this worker's previous
//     incarnation whose lease has not expired), it logs an error and retries
//     every second until that key is gone;
//  3. campaigns on <prefix>leaders/<region> (concurrency.Election). The
//     campaign is cancelled when the session ends — Campaign by itself
//     would not notice;
//  4. when elected, runs every leader task with the Leader's context, which
//     is cancelled at once when Session.Done closes, when the election key
//     is deleted, when a fenced write is refused, or when a task fails;
//     then waits for the tasks to return;
//  5. on session loss starts again at 1 with a new lease. A failed task makes
//     the worker resign and campaign again in the same session.
//
// When ctx ends, Run cancels the leader tasks, waits for them, resigns and
// revokes the lease (each bounded by 2 s) so another worker takes over at
// once, and returns nil. It never returns etcd errors; it logs and retries.
type Member struct {
	cli  *clientv3.Client
	opts MemberOptions
	keys Keys
	m    *Metrics
	log  *slog.Logger

	started atomic.Bool
	mu      sync.Mutex
	tasks   []leaderTask
	leader  *Leader
	lease   clientv3.LeaseID
}

// NewMember checks the options and returns a member; it does no I/O. The
// client stays the caller's to close, after Run returned. A nil m or log
// means no metrics or logs.
func NewMember(cli *clientv3.Client, o MemberOptions, m *Metrics, log *slog.Logger) (*Member, error) {
	if err := o.defaults(); err != nil {
		return nil, fmt.Errorf("topology: member options: %w", err)
	}
	return &Member{cli: cli, opts: o, keys: NewKeys(o.Prefix), m: orNewMetrics(m),
		log: orDiscard(log).With("region", o.Region, "worker", o.WorkerID)}, nil
}

// WorkerID is the member's id (after defaults).
func (mb *Member) WorkerID() string { return mb.opts.WorkerID }

// AddLeaderTask adds leader-only work, named for logs and metrics. Tasks
// added while the worker leads start with its next term.
func (mb *Member) AddLeaderTask(name string, fn LeaderFunc) {
	mb.mu.Lock()
	defer mb.mu.Unlock()
	mb.tasks = append(mb.tasks, leaderTask{name, fn})
}

// Leader returns the handle of the current term, or nil when the worker does
// not lead.
func (mb *Member) Leader() *Leader {
	mb.mu.Lock()
	defer mb.mu.Unlock()
	if mb.leader != nil && mb.leader.ctx.Err() != nil {
		return nil
	}
	return mb.leader
}

// IsLeader says whether the worker leads its region now (as far as it
// knows; writes are fenced regardless).
func (mb *Member) IsLeader() bool { return mb.Leader() != nil }

// Lease is the current session's lease, or 0 between sessions.
func (mb *Member) Lease() clientv3.LeaseID {
	mb.mu.Lock()
	defer mb.mu.Unlock()
	return mb.lease
}

// Run is described on Member. Calling it twice returns an error.
func (mb *Member) Run(ctx context.Context) error {
	if !mb.started.CompareAndSwap(false, true) {
		return fmt.Errorf("topology: member %q: Run called twice", mb.opts.WorkerID)
	}
	bo := backoff{min: 200 * time.Millisecond, max: 5 * time.Second}
	for {
		began := time.Now()
		err := mb.session(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if time.Since(began) > mb.opts.SessionTTL {
			bo.reset()
		}
		mb.log.Warn("topology: session ended; registering again with a new lease", "err", err)
		if !sleep(ctx, bo.next()) {
			return nil
		}
	}
}

// session lives one lease: grant, register, campaign and lead until the
// session ends or ctx does.
func (mb *Member) session(ctx context.Context) error {
	ttl := mb.opts.ttlSeconds()
	gctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	grant, err := mb.cli.Grant(gctx, int64(ttl))
	cancel()
	if err != nil {
		return fmt.Errorf("grant a %d s lease: %w", ttl, err)
	}
	// The session's keep-alive context is not ctx: on shutdown the lease is
	// revoked below rather than left to expire.
	sctx, scancel := context.WithCancel(context.WithoutCancel(ctx))
	defer scancel()
	sess, err := concurrency.NewSession(mb.cli, concurrency.WithLease(grant.ID), concurrency.WithTTL(ttl), concurrency.WithContext(sctx))
	if err != nil {
		mb.revoke(grant.ID)
		return fmt.Errorf("keep lease %x alive: %w", grant.ID, err)
	}
	mb.setLease(grant.ID)
	defer func() {
		mb.setLease(0)
		mb.m.registered.WithLabelValues(mb.opts.Region, mb.opts.WorkerID).Set(0)
		if ctx.Err() == nil {
			mb.m.sessionsLost.WithLabelValues(mb.opts.Region, mb.opts.WorkerID).Inc()
			mb.logLeaseEnd(grant.ID)
		}
		sess.Orphan()
		mb.revoke(grant.ID) // deletes presence and election keys now; a no-op if the lease is gone
	}()
	// Everything below ends when the session does.
	sessCtx, sessCancel := context.WithCancelCause(ctx)
	defer sessCancel(nil)
	stop := context.AfterFunc(sess.Ctx(), func() { sessCancel(errSessionLost) })
	defer stop()

	if err := mb.register(sessCtx, grant.ID); err != nil {
		return sessErr(sessCtx, leaseGone(err))
	}
	mb.log.Info("topology: registered", "key", mb.keys.Worker(mb.opts.Region, mb.opts.WorkerID), "lease", fmt.Sprintf("%x", grant.ID), "ttl_s", ttl)
	if mb.opts.Observer {
		<-sessCtx.Done()
		return sessErr(sessCtx, nil)
	}
	elec := concurrency.NewElection(sess, mb.keys.Election(mb.opts.Region))
	bo := backoff{min: 200 * time.Millisecond, max: 5 * time.Second}
	for {
		if err := mb.campaign(sessCtx, elec); err != nil {
			if sessCtx.Err() != nil || errors.Is(err, rpctypes.ErrLeaseNotFound) {
				return sessErr(sessCtx, leaseGone(err))
			}
			mb.log.Warn("topology: campaign failed; retrying", "err", err)
			if !sleep(sessCtx, bo.next()) {
				return sessErr(sessCtx, err)
			}
			continue
		}
		cause := mb.lead(sessCtx, sess, elec)
		if sessCtx.Err() != nil {
			return sessErr(sessCtx, cause)
		}
		mb.log.Warn("topology: leadership ended; campaigning again", "cause", cause)
		if !sleep(sessCtx, bo.next()) {
			return sessErr(sessCtx, cause)
		}
	}
}

// leaseGone turns etcd's "lease not found" into a session loss: the lease
// expired or was revoked before the keep-alive noticed.
func leaseGone(err error) error {
	if errors.Is(err, rpctypes.ErrLeaseNotFound) {
		return fmt.Errorf("%w: %w", errSessionLost, err)
	}
	return err
}

// sessErr explains why a session's work ended.
func sessErr(sessCtx context.Context, err error) error {
	if c := context.Cause(sessCtx); c != nil && !errors.Is(c, context.Canceled) {
		return c
	}
	return err
}

func (mb *Member) setLease(id clientv3.LeaseID) {
	mb.mu.Lock()
	mb.lease = id
	mb.mu.Unlock()
}

// logLeaseEnd says, after a session ended on its own, whether the server
// still had the lease: "not found" means it expired (keep-alives did not
// arrive in time) or was revoked; a remaining TTL means this client stopped
// refreshing it (no keep-alive answer before its local deadline).
func (mb *Member) logLeaseEnd(id clientv3.LeaseID) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	resp, err := mb.cli.TimeToLive(ctx, id)
	switch {
	case err != nil:
		mb.log.Warn("topology: session ended; lease state unknown", "lease", fmt.Sprintf("%x", id), "err", err)
	case resp.TTL <= 0:
		mb.log.Warn("topology: session ended: the lease is gone on the server (expired or revoked)", "lease", fmt.Sprintf("%x", id))
	default:
		mb.log.Warn("topology: session ended although the server still holds the lease (keep-alive answers stopped arriving)",
			"lease", fmt.Sprintf("%x", id), "server_ttl_s", resp.TTL, "granted_ttl_s", resp.GrantedTTL)
	}
}

func (mb *Member) revoke(id clientv3.LeaseID) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, _ = mb.cli.Revoke(ctx, id)
}

// register writes the presence key with the lease, unless another lease
// holds it; then it retries every second.
func (mb *Member) register(ctx context.Context, lease clientv3.LeaseID) error {
	key := mb.keys.Worker(mb.opts.Region, mb.opts.WorkerID)
	host, _ := os.Hostname()
	val, err := json.Marshal(WorkerInfo{SchemaVersion: SchemaVersion, ID: mb.opts.WorkerID, Region: mb.opts.Region,
		Hostname: host, PID: os.Getpid(), Version: mb.opts.Version, StartedAt: time.Now().UTC()})
	if err != nil {
		return err
	}
	for {
		tctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		resp, err := mb.cli.Txn(tctx).
			If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
			Then(clientv3.OpPut(key, string(val), clientv3.WithLease(lease))).
			Else(clientv3.OpGet(key)).Commit()
		cancel()
		switch {
		case errors.Is(err, rpctypes.ErrLeaseNotFound):
			return err
		case err != nil:
			mb.log.Warn("topology: presence write failed; retrying", "key", key, "err", err)
		case resp.Succeeded:
			mb.m.registered.WithLabelValues(mb.opts.Region, mb.opts.WorkerID).Set(1)
			return nil
		default:
			kvs := resp.Responses[0].GetResponseRange().Kvs
			if len(kvs) > 0 && clientv3.LeaseID(kvs[0].Lease) == lease {
				mb.m.registered.WithLabelValues(mb.opts.Region, mb.opts.WorkerID).Set(1)
				return nil
			}
			other := int64(0)
			if len(kvs) > 0 {
				other = kvs[0].Lease
			}
			mb.log.Error("topology: worker id already registered under another lease (a second process with this id, or this worker's previous incarnation whose lease has not expired yet); waiting for it to go",
				"key", key, "their_lease", fmt.Sprintf("%x", other))
		}
		if !sleep(ctx, time.Second) {
			return ctx.Err()
		}
	}
}

// campaignGrace bounds how long a cancelled campaign may take to clean up.
// concurrency.Election.Campaign resigns with the client's context when its
// own is cancelled, which blocks while etcd is unreachable; past the grace
// the campaign goroutine is left to finish when etcd answers or the client
// is closed.
const campaignGrace = 2 * time.Second

// campaign blocks until elected or ctx (the session's context) ends.
func (mb *Member) campaign(ctx context.Context, elec *concurrency.Election) error {
	done := make(chan error, 1)
	go func() { done <- elec.Campaign(ctx, mb.opts.WorkerID) }()
	select {
	case err := <-done:
		if err == nil && ctx.Err() != nil {
			err = ctx.Err() // elected as the session ended: not a usable term
		}
		return err
	case <-ctx.Done():
		t := time.NewTimer(campaignGrace)
		defer t.Stop()
		select {
		case err := <-done:
			if err == nil {
				err = ctx.Err()
			}
			return err
		case <-t.C:
			return fmt.Errorf("campaign did not return %s after cancellation: %w", campaignGrace, ctx.Err())
		}
	}
}

// lead runs one term: the leader tasks under the Leader's context until the
// term ends. It returns the cause.
func (mb *Member) lead(ctx context.Context, sess *concurrency.Session, elec *concurrency.Election) error {
	lctx, lcancel := context.WithCancelCause(ctx)
	defer lcancel(errShutdown)
	l := &Leader{cli: mb.cli, region: mb.opts.Region, worker: mb.opts.WorkerID, key: elec.Key(), rev: elec.Rev(),
		lease: sess.Lease(), ctx: lctx, cancel: lcancel, m: mb.m}
	stopSess := context.AfterFunc(sess.Ctx(), func() { lcancel(errSessionLost) })
	defer stopSess()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // the key's deletion ends the term even before the session notices
		defer wg.Done()
		mb.watchKey(lctx, l)
	}()

	mb.mu.Lock()
	mb.leader = l
	tasks := append([]leaderTask(nil), mb.tasks...)
	mb.mu.Unlock()
	mb.m.isLeader.WithLabelValues(mb.opts.Region, mb.opts.WorkerID).Set(1)
	mb.m.terms.WithLabelValues(mb.opts.Region, mb.opts.WorkerID).Inc()
	mb.log.Info("topology: elected leader", "key", l.key, "create_revision", l.rev, "tasks", len(tasks))

	type result struct {
		name string
		err  error
	}
	results := make(chan result, len(tasks))
	for _, t := range tasks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results <- result{t.name, t.fn(lctx, l)}
		}()
	}
	for running := len(tasks); ; {
		select {
		case <-lctx.Done():
		case r := <-results:
			running--
			if r.err != nil && lctx.Err() == nil {
				mb.m.taskErrors.WithLabelValues(mb.opts.Region, mb.opts.WorkerID, r.name).Inc()
				mb.log.Error("topology: leader task failed; resigning", "task", r.name, "err", r.err)
				lcancel(fmt.Errorf("%w: task %q: %w", errTaskFailed, r.name, r.err))
			} else if r.err == nil {
				mb.log.Info("topology: leader task finished", "task", r.name, "running", running)
			}
			continue
		}
		break
	}
	wg.Wait()
	mb.m.isLeader.WithLabelValues(mb.opts.Region, mb.opts.WorkerID).Set(0)
	mb.mu.Lock()
	mb.leader = nil
	mb.mu.Unlock()
	cause := context.Cause(lctx)
	if ctx.Err() != nil && !errors.Is(cause, errSessionLost) {
		cause = errShutdown
	}
	mb.log.Info("topology: leadership ended", "key", l.key, "cause", cause)
	if !errors.Is(cause, errSessionLost) && !errors.Is(cause, errLeaderKeyGone) {
		rctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		if err := elec.Resign(rctx); err != nil {
			mb.log.Warn("topology: resign failed (the key goes with the lease)", "err", err)
		}
		cancel()
	}
	return cause
}

// watchKey ends l's term when its election key is deleted. It returns when
// l's context ends.
func (mb *Member) watchKey(ctx context.Context, l *Leader) {
	from := l.rev + 1
	for ctx.Err() == nil {
		for resp := range mb.cli.Watch(ctx, l.key, clientv3.WithRev(from)) {
			if resp.Err() != nil {
				break
			}
			for _, ev := range resp.Events {
				if ev.Type == clientv3.EventTypeDelete {
					l.cancel(errLeaderKeyGone)
					return
				}
				from = ev.Kv.ModRevision + 1
			}
		}
		if ctx.Err() != nil {
			return
		}
		// The watch ended (compaction, error): check the key directly.
		gctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		resp, err := mb.cli.Get(gctx, l.key)
		cancel()
		switch {
		case err != nil:
			sleep(ctx, 500*time.Millisecond)
		case len(resp.Kvs) == 0 || resp.Kvs[0].CreateRevision != l.rev:
			l.cancel(errLeaderKeyGone)
			return
		default:
			from = resp.Header.Revision + 1
		}
	}
}
