package topology

import (
	"context"
	"errors"
	"fmt"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// ErrNotLeader: a leader-only write was refused because the worker's
// leadership had ended (its election key is gone: lease expired or revoked,
// key deleted, or it resigned).
var ErrNotLeader = errors.New("not the leader")

// Causes of the end of leadership, returned by context.Cause(l.Context()).
var (
	errSessionLost   = errors.New("session lost (lease expired, revoked or not refreshed in time)")
	errLeaderKeyGone = errors.New("election key deleted")
	errTaskFailed    = errors.New("a leader task failed; resigned")
	errShutdown      = errors.New("shutting down")
)

// Leader is the handle of one leadership term of one worker: from winning
// the election until the election key is gone. Its writes are fenced: every
// write is an etcd transaction conditioned on the election key still having
// the create revision it had when this term began, so a worker that lost
// leadership without noticing yet (paused, partitioned, slow) cannot write.
// A Leader is safe for concurrent use; it is never reused for another term.
type Leader struct {
	cli    *clientv3.Client
	region string
	worker string
	key    string
	rev    int64
	lease  clientv3.LeaseID
	ctx    context.Context
	cancel context.CancelCauseFunc
	m      *Metrics
}

// Region is the region this worker leads.
func (l *Leader) Region() string { return l.region }

// Client is the etcd client the term was won on, for reads and for
// transactions that carry Fence.
func (l *Leader) Client() *clientv3.Client { return l.cli }

// Key is the election key (<prefix>leaders/<region>/<lease-hex>).
func (l *Leader) Key() string { return l.key }

// Revision is the election key's create revision, which the fence compares.
func (l *Leader) Revision() int64 { return l.rev }

// Lease is the worker's session lease; keys written with it disappear when
// the session ends (e.g. lease-bound readiness verdicts).
func (l *Leader) Lease() clientv3.LeaseID { return l.lease }

// Context is cancelled at once when this term ends: session loss (Done of
// the concurrency.Session), election key deleted, a fenced write refused by
// etcd, a leader task failing, or the worker stopping. context.Cause says
// which.
func (l *Leader) Context() context.Context { return l.ctx }

// Fence is the comparison every leader-only write carries: the election key
// still exists with this term's create revision. Use it to compose your own
// transactions.
func (l *Leader) Fence() clientv3.Cmp {
	return clientv3.Compare(clientv3.CreateRevision(l.key), "=", l.rev)
}

// Put writes key=val if this worker is still the leader. It returns an
// error wrapping ErrNotLeader, without writing, if the term has ended
// (checked locally first, then by etcd in the same transaction as the put).
// Other errors are etcd's; then the put may or may not have happened.
func (l *Leader) Put(ctx context.Context, key, val string, opts ...clientv3.OpOption) (*clientv3.PutResponse, error) {
	resp, err := l.do(ctx, clientv3.OpPut(key, val, opts...), true)
	if err != nil {
		return nil, err
	}
	return (*clientv3.PutResponse)(resp.Responses[0].GetResponsePut()), nil
}

// Delete deletes key (or a range, with options) under the fence, with
// Put's semantics.
func (l *Leader) Delete(ctx context.Context, key string, opts ...clientv3.OpOption) (*clientv3.DeleteResponse, error) {
	resp, err := l.do(ctx, clientv3.OpDelete(key, opts...), true)
	if err != nil {
		return nil, err
	}
	return (*clientv3.DeleteResponse)(resp.Responses[0].GetResponseDeleteRange()), nil
}

// Txn runs If(cmps...).Then(thenOps...).Else(elseOps...) nested inside the
// fence, so it runs only while this worker leads. It returns the inner
// transaction's response (Succeeded tells which branch ran; Header is the
// outer one, etcd sends none for a nested transaction), or an error
// wrapping ErrNotLeader if the fence failed (nothing ran).
func (l *Leader) Txn(ctx context.Context, cmps []clientv3.Cmp, thenOps, elseOps []clientv3.Op) (*clientv3.TxnResponse, error) {
	resp, err := l.do(ctx, clientv3.OpTxn(cmps, thenOps, elseOps), true)
	if err != nil {
		return nil, err
	}
	inner := (*clientv3.TxnResponse)(resp.Responses[0].GetResponseTxn())
	inner.Header = resp.Header
	return inner, nil
}

// do runs op under the fence. With checkLocal it refuses at once when the
// term is known to have ended; without, only etcd decides (tests use that
// to prove the fence itself).
func (l *Leader) do(ctx context.Context, op clientv3.Op, checkLocal bool) (*clientv3.TxnResponse, error) {
	if checkLocal && l.ctx.Err() != nil {
		l.m.fenced.WithLabelValues(l.region, l.worker, "local").Inc()
		return nil, l.notLeader(context.Cause(l.ctx))
	}
	resp, err := l.cli.Txn(ctx).If(l.Fence()).Then(op).Commit()
	if err != nil {
		return nil, fmt.Errorf("topology: region %q leader %q: fenced write: %w", l.region, l.worker, err)
	}
	if !resp.Succeeded {
		l.m.fenced.WithLabelValues(l.region, l.worker, "etcd").Inc()
		l.cancel(errLeaderKeyGone) // the first cause wins
		return nil, l.notLeader(fmt.Errorf("election key %s with create revision %d no longer exists at revision %d", l.key, l.rev, resp.Header.Revision))
	}
	return resp, nil
}

func (l *Leader) notLeader(cause error) error {
	return fmt.Errorf("topology: region %q worker %q: %w: %v", l.region, l.worker, ErrNotLeader, cause)
}
