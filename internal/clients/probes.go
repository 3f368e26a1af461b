package clients

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/IBM/sarama"
	gocql "github.com/apache/cassandra-gocql-driver/v2"
	"github.com/nats-io/nats.go"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Probe says whether one dependency answers. It keeps one client open
// between calls (connecting lazily, reconnecting after failures) and must be
// closed. Check is safe for concurrent use.
type Probe struct {
	name  string
	mu    sync.Mutex
	open  func(ctx context.Context) (check func(context.Context) error, closeFn func(), err error)
	check func(context.Context) error
	close func()
}

// Check connects if needed and runs one check bounded by ctx. A failed check
// drops the client so the next call reconnects from scratch.
func (p *Probe) Check(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.check == nil {
		check, closeFn, err := p.open(ctx)
		if err != nil {
			return fmt.Errorf("%s: connect: %w", p.name, err)
		}
		p.check, p.close = check, closeFn
	}
	if err := p.check(ctx); err != nil {
		p.close()
		p.check, p.close = nil, nil
		return fmt.Errorf("%s: %w", p.name, err)
	}
	return nil
}

// Close releases the client, if any.
func (p *Probe) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.close != nil {
		p.close()
		p.check, p.close = nil, nil
	}
}

// withCtx runs f, returning early with ctx's error if ctx ends first (f keeps
// running to its own timeout; its result is then dropped).
func withCtx(ctx context.Context, f func() error) error {
	errc := make(chan error, 1)
	go func() { errc <- f() }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// connect runs dial bounded by ctx. If ctx ends first, the late connection
// is closed when it arrives, so nothing is leaked.
func connect[T any](ctx context.Context, dial func() (T, error), closeFn func(T)) (T, error) {
	type res struct {
		v   T
		err error
	}
	ch := make(chan res, 1)
	go func() {
		v, err := dial()
		ch <- res{v, err}
	}()
	select {
	case r := <-ch:
		return r.v, r.err
	case <-ctx.Done():
		go func() {
			if r := <-ch; r.err == nil {
				closeFn(r.v)
			}
		}()
		var zero T
		return zero, ctx.Err()
	}
}

// KafkaProbe checks that the cluster at brokers answers a metadata request.
func KafkaProbe(brokers []string, cfg *sarama.Config) *Probe {
	return &Probe{name: "kafka", open: func(ctx context.Context) (func(context.Context) error, func(), error) {
		cl, err := connect(ctx, func() (sarama.Client, error) { return sarama.NewClient(brokers, cfg) },
			func(c sarama.Client) { _ = c.Close() })
		if err != nil {
			return nil, nil, fmt.Errorf("brokers %v: %w", brokers, err)
		}
		check := func(ctx context.Context) error {
			return withCtx(ctx, func() error {
				if err := cl.RefreshMetadata(); err != nil {
					return err
				}
				if len(cl.Brokers()) == 0 {
					return errors.New("metadata lists no brokers")
				}
				return nil
			})
		}
		return check, func() { _ = cl.Close() }, nil
	}}
}

// EtcdProbe checks that a linearizable read of key succeeds, which needs a
// quorum of the etcd cluster.
func EtcdProbe(cfg clientv3.Config, key string) *Probe {
	return &Probe{name: "etcd", open: func(ctx context.Context) (func(context.Context) error, func(), error) {
		cfg.Context = context.WithoutCancel(ctx)
		cli, err := clientv3.New(cfg)
		if err != nil {
			return nil, nil, fmt.Errorf("endpoints %v: %w", cfg.Endpoints, err)
		}
		check := func(ctx context.Context) error {
			_, err := cli.Get(ctx, key)
			return err
		}
		return check, func() { _ = cli.Close() }, nil
	}}
}

// NATSProbe checks that the server answers a round trip.
func NATSProbe(url string, opts []nats.Option) *Probe {
	return &Probe{name: "nats", open: func(ctx context.Context) (func(context.Context) error, func(), error) {
		nc, err := connect(ctx, func() (*nats.Conn, error) {
			return nats.Connect(url, append(opts, nats.RetryOnFailedConnect(false))...)
		}, (*nats.Conn).Close)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", url, err)
		}
		return nc.FlushWithContext, nc.Close, nil
	}}
}

// CassandraProbe checks that a node of the local DC answers a query.
func CassandraProbe(cc *gocql.ClusterConfig) *Probe {
	return &Probe{name: "cassandra", open: func(ctx context.Context) (func(context.Context) error, func(), error) {
		s, err := connect(ctx, cc.CreateSession, (*gocql.Session).Close)
		if err != nil {
			return nil, nil, fmt.Errorf("contact points %v: %w", cc.Hosts, err)
		}
		check := func(ctx context.Context) error {
			var v string
			return s.Query("SELECT release_version FROM system.local").Consistency(gocql.LocalOne).ScanContext(ctx, &v)
		}
		return check, s.Close, nil
	}}
}
