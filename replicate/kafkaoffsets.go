package replicate

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/IBM/sarama"
)

// tp names one topic partition.
type tp struct {
	topic     string
	partition int32
}

func (p tp) String() string { return fmt.Sprintf("%s/%d", p.topic, p.partition) }

// listOffsets returns the offset of every partition at `at`
// (sarama.OffsetNewest: the high-water mark; sarama.OffsetOldest: the log
// start), with one ListOffsets request per leader broker. A partition whose
// leader is unknown or whose block has an error is missing from the result;
// the first such error is returned with the partial result.
func listOffsets(c sarama.Client, parts []tp, at int64) (map[tp]int64, error) {
	byBroker := map[*sarama.Broker]*sarama.OffsetRequest{}
	var firstErr error
	note := func(err error) {
		if firstErr == nil {
			firstErr = err
		}
	}
	for _, p := range parts {
		b, err := c.Leader(p.topic, p.partition)
		if err != nil {
			note(fmt.Errorf("leader of %s: %w", p, err))
			continue
		}
		req := byBroker[b]
		if req == nil {
			req = sarama.NewOffsetRequest(c.Config().Version)
			byBroker[b] = req
		}
		req.AddBlock(p.topic, p.partition, at, 1)
	}
	out := make(map[tp]int64, len(parts))
	for b, req := range byBroker {
		resp, err := b.GetAvailableOffsets(req)
		if err != nil {
			note(fmt.Errorf("list offsets on broker %s: %w", b.Addr(), err))
			continue
		}
		for topic, blocks := range resp.Blocks {
			for part, blk := range blocks {
				off, err := blockOffset(blk)
				if err != nil {
					note(fmt.Errorf("list offsets of %s/%d: %w", topic, part, err))
					continue
				}
				out[tp{topic, part}] = off
			}
		}
	}
	return out, firstErr
}

func blockOffset(blk *sarama.OffsetResponseBlock) (int64, error) {
	switch {
	case blk == nil:
		return -1, sarama.ErrIncompleteResponse
	case !errors.Is(blk.Err, sarama.ErrNoError):
		return -1, blk.Err
	case blk.Offset >= 0:
		return blk.Offset, nil
	case len(blk.Offsets) == 1:
		return blk.Offsets[0], nil
	}
	return -1, sarama.ErrIncompleteResponse
}

// recordTime returns the timestamp of the first record of p at or after
// offset, waiting at most wait for it. ok is false when no record arrived
// (the offset is the high-water mark, or the fetch timed out).
func recordTime(ctx context.Context, cons sarama.Consumer, p tp, offset int64, wait time.Duration) (ts time.Time, at int64, ok bool, err error) {
	pc, err := cons.ConsumePartition(p.topic, p.partition, offset)
	if err != nil {
		return time.Time{}, 0, false, fmt.Errorf("read %s at offset %d: %w", p, offset, err)
	}
	defer pc.Close()
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case m := <-pc.Messages():
		return m.Timestamp, m.Offset, true, nil
	case e := <-pc.Errors():
		return time.Time{}, 0, false, fmt.Errorf("read %s at offset %d: %w", p, offset, e.Err)
	case <-t.C:
		return time.Time{}, 0, false, nil
	case <-ctx.Done():
		return time.Time{}, 0, false, ctx.Err()
	}
}
