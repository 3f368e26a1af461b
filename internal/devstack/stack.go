// Package devstack runs the infrastructure of `regionsync dev` in one
// process: per region an in-process Kafka (franz-go kfake), one real 3-member
// etcd cluster spread over the regions and a witness (etcd's embed package),
// and a real NATS server with JetStream (nats-server/v2). It is plumbing for
// the dev mode and for fast tests; the acceptance tests use deploy/lab.
package devstack

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync"
	"time"
)

// Options configure a Stack.
type Options struct {
	// Regions to run, each with its own Kafka. Default east, west.
	Regions []string
	// Topics seeded in every region's Kafka. Default orders, payments, inventory.
	Topics []string
	// Partitions per seeded topic. Default 3.
	Partitions int32
	// Dir holds etcd and JetStream data; empty means a temporary directory
	// removed when Run returns.
	Dir string
	// StartTimeout bounds how long Run waits for etcd and NATS. Default 20s.
	StartTimeout time.Duration
}

// Endpoints are where the running stack listens.
type Endpoints struct {
	Kafka map[string][]string // region → bootstrap brokers
	Etcd  []string            // client URLs of the 3 members
	NATS  string              // client URL
	Dir   string              // the data directory in use
}

// Stack is the dev infrastructure. New does no I/O; Run starts it.
type Stack struct {
	opts  Options
	log   *slog.Logger
	ready chan struct{}
	mu    sync.Mutex
	ep    Endpoints
}

// New returns a stack with defaults applied to opts.
func New(opts Options, log *slog.Logger) *Stack {
	if len(opts.Regions) == 0 {
		opts.Regions = []string{"east", "west"}
	}
	if len(opts.Topics) == 0 {
		opts.Topics = []string{"orders", "payments", "inventory"}
	}
	if opts.Partitions <= 0 {
		opts.Partitions = 3
	}
	if opts.StartTimeout <= 0 {
		opts.StartTimeout = 20 * time.Second
	}
	return &Stack{opts: opts, log: log, ready: make(chan struct{})}
}

// Ready is closed once every component accepts connections.
func (s *Stack) Ready() <-chan struct{} { return s.ready }

// Endpoints returns the addresses; valid after Ready is closed.
func (s *Stack) Endpoints() Endpoints {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ep
}

// Brokers returns a function giving region's Kafka bootstrap addresses, for
// components constructed before the stack runs.
func (s *Stack) Brokers(region string) func() []string {
	return func() []string { return s.Endpoints().Kafka[region] }
}

// Run starts Kafka per region, etcd and NATS, closes Ready, and blocks until
// ctx is cancelled; then it stops everything, waits for it to stop and
// removes a temporary data directory. A component that fails to start makes
// Run stop what it started and return the error.
func (s *Stack) Run(ctx context.Context) (err error) {
	dir := s.opts.Dir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "regionsync-dev-"); err != nil {
			return fmt.Errorf("devstack: data dir: %w", err)
		}
		defer os.RemoveAll(dir)
	}
	var closers []func()
	defer func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}()
	ep := Endpoints{Kafka: map[string][]string{}, Dir: dir}
	for _, r := range s.opts.Regions {
		k, err := startKafka(r, s.opts.Partitions, s.opts.Topics)
		if err != nil {
			return err
		}
		closers = append(closers, k.Close)
		ep.Kafka[r] = k.ListenAddrs()
	}
	// Three etcd members: the first two regions and a witness.
	names := append(slices.Clone(s.opts.Regions[:min(2, len(s.opts.Regions))]), "witness")
	e, err := startEtcd(dir, names, s.opts.StartTimeout)
	if err != nil {
		return err
	}
	closers = append(closers, e.close)
	ep.Etcd = e.endpoints
	ns, err := startNATS(dir, s.opts.StartTimeout)
	if err != nil {
		return err
	}
	closers = append(closers, func() { ns.Shutdown(); ns.WaitForShutdown() })
	ep.NATS = ns.ClientURL()
	s.mu.Lock()
	s.ep = ep
	s.mu.Unlock()
	close(s.ready)
	s.log.Info("dev stack running", "kafka", ep.Kafka, "etcd", ep.Etcd, "nats", ep.NATS, "data", dir)
	select {
	case <-ctx.Done():
		return nil
	case err := <-firstErr(e):
		return fmt.Errorf("devstack: etcd: %w", err)
	}
}

func firstErr(c *etcdCluster) <-chan error {
	out := make(chan error, 1)
	for _, m := range c.members {
		go func() {
			if err, ok := <-m.Err(); ok && err != nil && !errors.Is(err, context.Canceled) {
				select {
				case out <- err:
				default:
				}
			}
		}()
	}
	return out
}
