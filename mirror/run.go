package mirror

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/IBM/sarama"
	"github.com/cenkalti/backoff/v5"
)

// Run connects to both clusters and copies until ctx is cancelled, then
// leaves the consumer group (committing what the target acknowledged) and
// closes its clients; it returns nil then. Failures to create the clients
// and authorization failures are returned; the start-up steps (creating
// the flow's own topics, loading its offset syncs) and everything later
// (broker loss, rebalances, topic-sync errors) are logged, counted in
// regionsync_mirror_errors_total and retried with backoff.
func (f *Flow) Run(ctx context.Context) error {
	tgt, err := sarama.NewClient(f.opts.TargetBrokers, f.targetConfig())
	if err != nil {
		return fmt.Errorf("mirror: flow %q: target %v: %w", f.opts.Name, f.opts.TargetBrokers, err)
	}
	defer tgt.Close()
	f.tgtClient = tgt
	prod, err := sarama.NewSyncProducerFromClient(tgt)
	if err != nil {
		return fmt.Errorf("mirror: flow %q: target producer: %w", f.opts.Name, err)
	}
	defer prod.Close()
	f.producer = prod
	// Copies go through connections of their own: one shared connection
	// made every partition wait behind the others (~10 ms at the median at
	// 5,000 records/s over 12 partitions).
	batches, err := newBatchProducer(f.opts.TargetBrokers, f.targetConfig(), copiers)
	if err != nil {
		return fmt.Errorf("mirror: flow %q: target producer: %w", f.opts.Name, err)
	}
	defer batches.Close()
	f.batches = batches
	dstAdmin, err := sarama.NewClusterAdminFromClient(tgt)
	if err != nil {
		return fmt.Errorf("mirror: flow %q: target admin: %w", f.opts.Name, err)
	}
	src, err := sarama.NewClient(f.opts.SourceBrokers, f.sourceConfig())
	if err != nil {
		return fmt.Errorf("mirror: flow %q: source %v: %w", f.opts.Name, f.opts.SourceBrokers, err)
	}
	defer src.Close()
	srcAdmin, err := sarama.NewClusterAdminFromClient(src)
	if err != nil {
		return fmt.Errorf("mirror: flow %q: source admin: %w", f.opts.Name, err)
	}
	group, err := sarama.NewConsumerGroupFromClient(f.opts.GroupID, src)
	if err != nil {
		return fmt.Errorf("mirror: flow %q: consumer group %q: %w", f.opts.Name, f.opts.GroupID, err)
	}
	defer group.Close()
	err = f.retrySetup(ctx, "create the offset-sync topic", func() error { return f.ensureSyncTopic(dstAdmin) })
	if err == nil && f.opts.ExactlyOnce {
		err = f.retrySetup(ctx, "create the position topic", func() error { return f.ensurePositionTopic(dstAdmin) })
	}
	if err == nil {
		// A topic just created may have no leader yet (NotLeaderForPartition).
		// Loading again after a partial load is harmless: syncs are idempotent.
		err = f.retrySetup(ctx, "load offset syncs", func() error { return f.loadSyncs(ctx, tgt) })
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	go f.logGroupErrors(group)
	cpCtx, cpCancel := context.WithCancel(ctx)
	cpDone := make(chan struct{})
	go func() { defer close(cpDone); f.checkpoints(cpCtx, srcAdmin, dstAdmin, tgt) }()
	defer func() { cpCancel(); <-cpDone }()
	hbCtx, hbCancel := context.WithCancel(ctx)
	hbDone := make(chan struct{})
	f.ensureHeartbeatTopic(srcAdmin)
	go func() { defer close(hbDone); f.heartbeats(hbCtx, src) }()
	defer func() { hbCancel(); <-hbDone }()
	f.log.Info("mirror: flow running", "flow", f.opts.Name, "source", f.opts.SourceAlias, "target", f.opts.TargetAlias, "group", f.opts.GroupID)
	return f.consumeLoop(ctx, src, srcAdmin, dstAdmin, group)
}

// consumeLoop runs one group session per topic set: when the selected
// topics or their partition counts change, the remote topics are synced and
// the session restarts with the new set.
func (f *Flow) consumeLoop(ctx context.Context, src sarama.Client, srcAdmin, dstAdmin sarama.ClusterAdmin, group sarama.ConsumerGroup) error {
	backoff := time.Second
	h := &handler{f: f}
	for ctx.Err() == nil {
		topics, err := f.sourceTopics(src)
		if err == nil {
			err = f.syncTopics(srcAdmin, dstAdmin, topics)
		}
		if err != nil {
			// Partitions whose remote topic is missing retry their produce;
			// the others are copied meanwhile.
			f.log.Warn("mirror: topic sync failed, will retry", "flow", f.opts.Name, "err", err)
		}
		f.m.topics.WithLabelValues(f.opts.Name).Set(float64(len(topics)))
		if len(topics) == 0 {
			if !sleep(ctx, min(backoff, f.opts.RefreshInterval)) {
				return nil
			}
			backoff = min(backoff*2, 30*time.Second)
			continue
		}
		backoff = time.Second
		sctx, cancel := context.WithCancel(ctx)
		go f.watchTopics(sctx, cancel, src, topics)
		err = group.Consume(sctx, slices.Sorted(maps.Keys(topics)), h)
		cancel()
		if err != nil && ctx.Err() == nil && !errors.Is(err, sarama.ErrClosedConsumerGroup) {
			f.m.errors.WithLabelValues(f.opts.Name, "group").Inc()
			f.log.Warn("mirror: consumer group session ended", "flow", f.opts.Name, "err", err)
			sleep(ctx, time.Second)
		}
	}
	return nil
}

// watchTopics cancels the session when the selected topic set or a
// partition count changes, so the loop can sync and rejoin.
func (f *Flow) watchTopics(ctx context.Context, cancel context.CancelFunc, src sarama.Client, current map[string]int32) {
	t := time.NewTicker(f.opts.RefreshInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			now, err := f.sourceTopics(src)
			if err == nil && !maps.Equal(now, current) {
				f.log.Info("mirror: source topics changed, resyncing", "flow", f.opts.Name, "topics", len(now))
				cancel()
				return
			}
		}
	}
}

func (f *Flow) logGroupErrors(group sarama.ConsumerGroup) {
	for err := range group.Errors() {
		f.m.errors.WithLabelValues(f.opts.Name, "consume").Inc()
		f.log.Warn("mirror: consumer group error", "flow", f.opts.Name, "err", err)
	}
}

// sleep waits d or until ctx ends; it reports whether ctx is still live.
// copiers is how many target connections carry the copies.
const copiers = 4

// retrySetup runs a start-up step until it succeeds, retrying transient
// failures (a topic just created without a leader yet, a broker restarting)
// with exponential backoff up to 10 s between attempts; each failure is
// logged and counted (kind "setup"). Authorization failures are returned
// at once: retrying cannot fix a missing ACL. It returns ctx's error if ctx
// ends first.
func (f *Flow) retrySetup(ctx context.Context, what string, step func() error) error {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval, b.MaxInterval = 200*time.Millisecond, 10*time.Second
	_, err := backoff.Retry(ctx, func() (struct{}, error) {
		err := step()
		if err != nil && (errors.Is(err, sarama.ErrTopicAuthorizationFailed) || errors.Is(err, sarama.ErrClusterAuthorizationFailed) ||
			errors.Is(err, sarama.ErrSASLAuthenticationFailed)) {
			return struct{}{}, backoff.Permanent(err)
		}
		return struct{}{}, err
	}, backoff.WithBackOff(b), backoff.WithMaxElapsedTime(0), backoff.WithNotify(func(err error, next time.Duration) {
		f.m.errors.WithLabelValues(f.opts.Name, "setup").Inc()
		f.log.Warn("mirror: start-up step failed, retrying", "flow", f.opts.Name, "step", what, "retry_in", next, "err", err)
	}))
	if err != nil {
		return fmt.Errorf("mirror: flow %q: %s: %w", f.opts.Name, what, err)
	}
	return nil
}

func sleep(ctx context.Context, d time.Duration) bool {
	select {
	case <-ctx.Done():
		return false
	case <-time.After(d):
		return true
	}
}
