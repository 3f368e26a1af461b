package main

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"sync"
	"time"

	"github.com/IBM/sarama"

	"github.com/regionsync/regionsync/loadtests/procstat"
)

func saramaConfig() *sarama.Config {
	c := sarama.NewConfig()
	c.Version = sarama.V3_6_0_0
	c.ClientID = "mirrorbench"
	c.Producer.Return.Successes = true
	c.Producer.RequiredAcks = sarama.WaitForAll
	c.Producer.Idempotent = true
	c.Net.MaxOpenRequests = 1
	c.Producer.Partitioner = sarama.NewManualPartitioner
	c.Producer.Compression = sarama.CompressionLZ4
	return c
}

func createTopic(brokers []string, topic string, parts int32) error {
	admin, err := sarama.NewClusterAdmin(brokers, saramaConfig())
	if err != nil {
		return err
	}
	defer admin.Close()
	if err := admin.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: parts, ReplicationFactor: 1}, false); err != nil {
		return fmt.Errorf("create topic %s: %w", topic, err)
	}
	return nil
}

func deleteTopics(brokers []string, topics ...string) {
	admin, err := sarama.NewClusterAdmin(brokers, saramaConfig())
	if err != nil {
		return
	}
	defer admin.Close()
	for _, t := range topics {
		_ = admin.DeleteTopic(t)
	}
}

// value is size bytes of random hex: no repetition for LZ4 to find, like
// payloads that are already compact (ids, hashes, encrypted fields).
func value(r *rand.Rand, size int) []byte {
	raw := make([]byte, size/2)
	for i := range raw {
		raw[i] = byte(r.Uint32())
	}
	out := make([]byte, size)
	hex.Encode(out, raw)
	return out
}

// prefill writes n records of size bytes round-robin over parts partitions.
func prefill(brokers []string, topic string, parts int32, n, size int) (time.Duration, error) {
	c := saramaConfig()
	c.Producer.Flush.Bytes = 512 << 10
	c.Producer.Flush.Frequency = 10 * time.Millisecond
	c.ChannelBufferSize = 8192
	p, err := sarama.NewAsyncProducer(brokers, c)
	if err != nil {
		return 0, err
	}
	start := time.Now()
	go func() {
		r := rand.New(rand.NewPCG(1, 2))
		for i := range n {
			p.Input() <- &sarama.ProducerMessage{Topic: topic, Partition: int32(i) % parts,
				Key: sarama.StringEncoder(fmt.Sprintf("key-%d", i%10007)), Value: sarama.ByteEncoder(value(r, size))}
		}
	}()
	var first error
	for range n {
		select {
		case <-p.Successes():
		case e := <-p.Errors():
			if first == nil {
				first = e
			}
		}
	}
	if err := p.Close(); err != nil && first == nil {
		first = err
	}
	return time.Since(start), first
}

// highWater sums the high-water marks of topic; 0 while it does not exist.
func highWater(client sarama.Client, topic string) int64 {
	if err := client.RefreshMetadata(topic); err != nil {
		return 0
	}
	parts, err := client.Partitions(topic)
	if err != nil {
		return 0
	}
	var sum int64
	for _, p := range parts {
		if hw, err := client.GetOffset(topic, p, sarama.OffsetNewest); err == nil {
			sum += hw
		}
	}
	return sum
}

// drain is what one mirror did with the pre-filled topic.
type drain struct {
	Records    int64
	Elapsed    time.Duration // first record on the target to the last
	CPUSeconds float64       // the mirror process's CPU over Elapsed
}

// measureDrain watches the target topic until it holds want records and
// measures the mirror process pid meanwhile. The clock and the CPU meter
// start when the first record lands, so start-up (JVM, group join) is not
// counted for either mirror.
func measureDrain(ctx context.Context, brokers []string, topic string, want int64, pid int) (drain, error) {
	client, err := sarama.NewClient(brokers, saramaConfig())
	if err != nil {
		return drain{}, err
	}
	defer client.Close()
	var meter *procstat.CPUMeter
	for {
		n := highWater(client, topic)
		if meter == nil && n > 0 {
			if meter, err = procstat.StartCPU(pid); err != nil {
				return drain{}, err
			}
		}
		if n >= want {
			cpu, el, err := meter.Since()
			return drain{Records: n, Elapsed: el, CPUSeconds: cpu}, err
		}
		select {
		case <-ctx.Done():
			return drain{}, fmt.Errorf("target %s holds %d of %d records: %w", topic, n, want, ctx.Err())
		case <-time.After(25 * time.Millisecond):
		}
	}
}

// latency is the end-to-end replication latency: from the moment the
// producer stamped a record (its CreateTime, which both mirrors keep) to the
// moment a consumer of the target topic received it.
type latency struct {
	N             int
	P50, P99, Max time.Duration
	// Slow: per 100 ms slot of record time (from the start of the
	// measured part), the records slower than the target, and the
	// partitions they were in: tells a stall of everything from a slow
	// partition.
	Slow []slowSlot
}

type slowSlot struct {
	At         time.Duration // slot start, from measureFrom
	Records    int
	Partitions map[int32]bool
	Worst      time.Duration
}

// slowThreshold is the p99 target; records slower than it are slotted.
const slowThreshold = 50 * time.Millisecond

// measureLatency produces rate records/s of size bytes to src for warmup+dur
// and consumes the mirrored copies from dstTopic on dst; records stamped
// during the warm-up are not counted.
func measureLatency(ctx context.Context, src, dst []string, srcTopic, dstTopic string, parts int32, rate, size int, warmup, dur time.Duration) (latency, error) {
	cons, err := targetConsumer(ctx, dst, dstTopic, parts)
	if err != nil {
		return latency{}, err
	}
	defer cons.Close()
	measureFrom := time.Now().Add(warmup)
	var (
		mu   sync.Mutex
		lats []time.Duration
		slow = map[time.Duration]*slowSlot{}
	)
	cctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for _, pc := range cons.parts {
		wg.Add(1)
		go func(pc sarama.PartitionConsumer) {
			defer wg.Done()
			for {
				select {
				case m := <-pc.Messages():
					now := time.Now()
					if !m.Timestamp.Before(measureFrom) {
						d := now.Sub(m.Timestamp)
						mu.Lock()
						lats = append(lats, d)
						if d > slowThreshold {
							at := m.Timestamp.Sub(measureFrom).Truncate(100 * time.Millisecond)
							sl := slow[at]
							if sl == nil {
								sl = &slowSlot{At: at, Partitions: map[int32]bool{}}
								slow[at] = sl
							}
							sl.Records++
							sl.Partitions[m.Partition] = true
							sl.Worst = max(sl.Worst, d)
						}
						mu.Unlock()
					}
				case <-cctx.Done():
					return
				}
			}
		}(pc)
	}
	sent, perr := produceAtRate(ctx, src, srcTopic, parts, rate, size, warmup+dur)
	// Let the last records arrive.
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		mu.Lock()
		n := len(lats)
		mu.Unlock()
		if int64(n) >= sent-int64(float64(rate)*warmup.Seconds()) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	cancel()
	wg.Wait()
	if perr != nil {
		return latency{}, perr
	}
	if len(lats) == 0 {
		return latency{}, errors.New("no mirrored record arrived")
	}
	sort.Slice(lats, func(i, j int) bool { return lats[i] < lats[j] })
	q := func(f float64) time.Duration { return lats[min(len(lats)-1, int(f*float64(len(lats))))] }
	out := latency{N: len(lats), P50: q(0.50), P99: q(0.99), Max: lats[len(lats)-1]}
	for _, sl := range slow {
		out.Slow = append(out.Slow, *sl)
	}
	sort.Slice(out.Slow, func(i, j int) bool { return out.Slow[i].At < out.Slow[j].At })
	return out, nil
}

// produceAtRate sends rate records/s in 2 ms ticks, each stamped when it
// is handed to the producer.
func produceAtRate(ctx context.Context, brokers []string, topic string, parts int32, rate, size int, dur time.Duration) (int64, error) {
	c := saramaConfig()
	p, err := sarama.NewAsyncProducer(brokers, c)
	if err != nil {
		return 0, err
	}
	var sent int64
	errs := make(chan error, 1)
	go func() {
		for range p.Successes() {
		}
	}()
	go func() {
		for e := range p.Errors() {
			select {
			case errs <- e:
			default:
			}
		}
	}()
	r := rand.New(rand.NewPCG(3, 4))
	start := time.Now()
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for time.Since(start) < dur && ctx.Err() == nil {
		<-tick.C
		due := int64(time.Since(start).Seconds() * float64(rate))
		for ; sent < due; sent++ {
			p.Input() <- &sarama.ProducerMessage{Topic: topic, Partition: int32(sent) % parts,
				Key: sarama.StringEncoder(fmt.Sprintf("key-%d", sent)), Value: sarama.ByteEncoder(value(r, size)), Timestamp: time.Now()}
		}
	}
	if err := p.Close(); err != nil {
		return sent, err
	}
	select {
	case e := <-errs:
		return sent, e
	default:
		return sent, nil
	}
}

type consumer struct {
	client sarama.Client
	cons   sarama.Consumer
	parts  []sarama.PartitionConsumer
}

func (c *consumer) Close() {
	for _, p := range c.parts {
		_ = p.Close()
	}
	_ = c.cons.Close()
	_ = c.client.Close()
}

// targetConsumer waits for topic to exist with parts partitions and reads
// each from its end, asking the broker to answer fetches at once.
func targetConsumer(ctx context.Context, brokers []string, topic string, parts int32) (*consumer, error) {
	c := saramaConfig()
	c.Consumer.MaxWaitTime = 5 * time.Millisecond
	c.Consumer.Fetch.Min = 1
	client, err := sarama.NewClient(brokers, c)
	if err != nil {
		return nil, err
	}
	for {
		if ps, err := client.Partitions(topic); err == nil && int32(len(ps)) == parts {
			break
		}
		select {
		case <-ctx.Done():
			client.Close()
			return nil, fmt.Errorf("target topic %s never appeared", topic)
		case <-time.After(200 * time.Millisecond):
			_ = client.RefreshMetadata(topic)
		}
	}
	cons, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		client.Close()
		return nil, err
	}
	out := &consumer{client: client, cons: cons}
	for p := range parts {
		pc, err := cons.ConsumePartition(topic, p, sarama.OffsetNewest)
		if err != nil {
			out.Close()
			return nil, err
		}
		out.parts = append(out.parts, pc)
	}
	return out, nil
}
