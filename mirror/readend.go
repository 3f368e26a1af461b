package mirror

import (
	"context"
	"fmt"
	"time"

	"github.com/IBM/sarama"
)

// A read of a whole partition (ReadPartition) ends at the high-water mark,
// or when no record arrived for ReadIdleEnd and at most slack offsets remain
// below it: a read_committed consumer is never handed transaction
// markers or aborted records, so a transactional log can end below its
// high-water mark. Farther from it the reader is only slow (a loaded
// machine, a slow broker), so it keeps reading; after ReadGiveUp without a
// record it fails rather than return a partial log.
const (
	ReadIdleEnd = 2 * time.Second
	ReadGiveUp  = 60 * time.Second
	// MarkerSlack suits logs written in small transactions that a crash
	// may abort (positions, offset syncs).
	MarkerSlack = 1024
)

// ReadPartition hands fn every record of topic/partition from the oldest
// offset up to hw (exclusive), as cons delivers them. It returns fn's first
// error, the consumer's first error, or an error naming the partition when
// the log stops short of hw by more than slack offsets.
func ReadPartition(ctx context.Context, cons sarama.Consumer, topic string, part int32, hw, slack int64, fn func(*sarama.ConsumerMessage) error) error {
	if hw <= 0 {
		return nil
	}
	pc, err := cons.ConsumePartition(topic, part, sarama.OffsetOldest)
	if err != nil {
		return fmt.Errorf("%s/%d: consume: %w", topic, part, err)
	}
	defer pc.Close()
	last, lastAt := int64(-1), time.Now()
	idle := time.NewTimer(ReadIdleEnd)
	defer idle.Stop()
	for {
		select {
		case m := <-pc.Messages():
			if err := fn(m); err != nil {
				return err
			}
			if m.Offset >= hw-1 {
				return nil
			}
			last, lastAt = m.Offset, time.Now()
			idle.Reset(ReadIdleEnd)
		case err := <-pc.Errors():
			return fmt.Errorf("%s/%d: %w", topic, part, err)
		case <-idle.C:
			if hw-(last+1) <= slack {
				return nil
			}
			if time.Since(lastAt) >= ReadGiveUp {
				return fmt.Errorf("%s/%d: read stopped at offset %d of %d: no record for %s", topic, part, last, hw, ReadGiveUp)
			}
			idle.Reset(ReadIdleEnd)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
