package mirror

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/IBM/sarama"
)

// HeartbeatTopic is written by every flow in its source cluster once per
// heartbeat interval and mirrored like any selected topic, so replication
// freshness is measurable even when no user traffic flows and keeps growing
// when the mirror stalls.
const HeartbeatTopic = "regionsync.heartbeats"

// Heartbeat is the value of a heartbeat record (JSON; schema in schemas/).
type Heartbeat struct {
	Flow   string `json:"flow"`
	Source string `json:"source"`
	Target string `json:"target"`
	// SentAt is when the heartbeat was produced, Unix milliseconds; the
	// record timestamp carries the same instant.
	SentAt int64 `json:"sentAt"`
}

// ensureHeartbeatTopic creates the heartbeat topic (1 partition) on the
// source if missing, before the first topic listing, so its creation does
// not look like a new topic and restart the first session.
func (f *Flow) ensureHeartbeatTopic(admin sarama.ClusterAdmin) {
	err := admin.CreateTopic(HeartbeatTopic, &sarama.TopicDetail{NumPartitions: 1, ReplicationFactor: -1}, false)
	if err != nil && !errors.Is(err, sarama.ErrTopicAlreadyExists) {
		f.m.errors.WithLabelValues(f.opts.Name, "heartbeat").Inc()
		f.log.Warn("mirror: cannot create heartbeat topic on source; heartbeats will fail until it exists", "flow", f.opts.Name, "topic", HeartbeatTopic, "err", err)
	}
}

// heartbeats produces a heartbeat every interval until ctx ends.
func (f *Flow) heartbeats(ctx context.Context, src sarama.Client) {
	prod, err := sarama.NewSyncProducerFromClient(src)
	if err != nil {
		f.log.Error("mirror: heartbeat producer", "flow", f.opts.Name, "err", err)
		return
	}
	defer prod.Close()
	t := time.NewTicker(f.opts.HeartbeatInterval)
	defer t.Stop()
	for {
		now := time.Now()
		v, _ := json.Marshal(Heartbeat{Flow: f.opts.Name, Source: f.opts.SourceAlias, Target: f.opts.TargetAlias, SentAt: now.UnixMilli()})
		_, _, err := prod.SendMessage(&sarama.ProducerMessage{
			Topic: HeartbeatTopic, Key: sarama.StringEncoder(f.opts.Name), Value: sarama.ByteEncoder(v), Timestamp: now,
		})
		if err != nil {
			f.m.errors.WithLabelValues(f.opts.Name, "heartbeat").Inc()
			f.log.Warn("mirror: heartbeat not written", "flow", f.opts.Name, "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// observeHeartbeat records a mirrored heartbeat of this flow.
func (f *Flow) observeHeartbeat(m *sarama.ConsumerMessage) {
	if m.Topic != HeartbeatTopic || string(m.Key) != f.opts.Name {
		return
	}
	var hb Heartbeat
	if err := json.Unmarshal(m.Value, &hb); err != nil {
		f.log.Warn("mirror: malformed heartbeat record", "flow", f.opts.Name, "offset", m.Offset, "err", fmt.Errorf("%w", err))
		return
	}
	f.lastHeartbeat.Store(hb.SentAt)
}

// HeartbeatAge is how old the newest heartbeat the target acknowledged is;
// it grows by a second per second while the flow stalls. Zero before the
// first heartbeat arrived.
func (f *Flow) HeartbeatAge() time.Duration {
	ms := f.lastHeartbeat.Load()
	if ms == 0 {
		return 0
	}
	return time.Since(time.UnixMilli(ms))
}
