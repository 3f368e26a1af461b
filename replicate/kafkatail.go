package replicate

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"
)

// tailIdle is how long a tail may see no record before it counts as caught
// up: read_committed consumers never see transaction markers or aborted
// records, so the last offset delivered can stay below the high-water mark.
const tailIdle = time.Second

// tail follows partition 0 of a topic from a start offset for as long as
// its context lives, handing every record to handle (in offset order, on
// the tail's goroutine).
type tail struct {
	topic    string
	caughtUp atomic.Bool // the records present at start have been handled
	done     chan struct{}
	lastErr  atomic.Pointer[error] // the last error the consumer reported
}

// startTail opens the partition consumer and starts the tail's goroutine.
// from picks the start offset given the log start and high-water mark. The
// goroutine ends when ctx ends (or the partition consumer closes); done is
// closed then.
func startTail(ctx context.Context, c sarama.Client, cons sarama.Consumer, topic string,
	from func(oldest, newest int64) int64, handle func(*sarama.ConsumerMessage)) (*tail, error) {
	oldest, err := c.GetOffset(topic, 0, sarama.OffsetOldest)
	if err != nil {
		return nil, err
	}
	newest, err := c.GetOffset(topic, 0, sarama.OffsetNewest)
	if err != nil {
		return nil, err
	}
	start := from(oldest, newest)
	pc, err := cons.ConsumePartition(topic, 0, start)
	if err != nil {
		return nil, err
	}
	t := &tail{topic: topic, done: make(chan struct{})}
	if start >= newest {
		t.caughtUp.Store(true)
	}
	go t.follow(ctx, pc, newest, handle)
	return t, nil
}

func (t *tail) follow(ctx context.Context, pc sarama.PartitionConsumer, newest int64, handle func(*sarama.ConsumerMessage)) {
	defer close(t.done)
	defer pc.Close()
	idle := time.NewTimer(tailIdle)
	defer idle.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case m, ok := <-pc.Messages():
			if !ok {
				return
			}
			handle(m)
			if m.Offset+1 >= newest {
				t.caughtUp.Store(true)
			}
			idle.Reset(tailIdle)
		case e, ok := <-pc.Errors():
			if !ok {
				return
			}
			err := error(e)
			t.lastErr.Store(&err) // sarama retries by itself; keep following
		case <-idle.C:
			t.caughtUp.Store(true)
		}
	}
}

// alive reports whether the tail's goroutine still runs.
func (t *tail) alive() bool {
	select {
	case <-t.done:
		return false
	default:
		return true
	}
}
