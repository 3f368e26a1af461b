package mirror

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/IBM/sarama"
)

// batchProducer writes the copies of a source partition as one record batch
// per produce request, straight to the leader of the target partition.
//
// It stands in for sarama's AsyncProducer on the copy path, which handles
// each record on its own: a ProducerMessage, a channel hand-off at each of
// its four stages and an expectation channel per record in SyncProducer.
// In loadtests/mirrorbench that machinery cost more CPU than the copy's own
// work. A copy already arrives in batches, in partition order, and waits for
// the target's answer before the next batch of its partition, so batching
// per partition is all that is needed.
//
// Delivery matches the idempotent producer it replaces: acks=all, producer
// ids and per-partition sequence numbers, one request in flight per
// partition, and a retried batch carries the sequence of its first attempt,
// so the broker writes it once even if the first attempt was written but
// its answer lost. Each target partition has a producer id of its own: when
// the broker no longer knows a partition's sequence (OUT_OF_ORDER_SEQUENCE,
// UNKNOWN_PRODUCER_ID, ...) only that partition takes a new id and sends
// the batch again, which may copy that batch twice (the at-least-once
// window, as with sarama's producer); other partitions' retries keep their
// ids and sequences.
type batchProducer struct {
	// clients are connections; partition p uses clients[p%len]. sarama's
	// Broker.Produce holds its connection until the answer, so this is
	// also how many requests are in flight at once.
	clients []sarama.Client
	conf    *sarama.Config
	version int16 // ProduceRequest version

	mu    sync.Mutex
	parts map[tp]*partitionSeq
}

// partitionSeq is one target partition's producer id and sequence; its
// lock keeps one request in flight per partition.
type partitionSeq struct {
	sync.Mutex
	pid   int64 // -1 until the partition's first batch
	epoch int16
	seq   int32
	// doubt is the batch the broker may hold under seq although no answer
	// said so (a lost answer, a timeout): only that batch may be sent with
	// seq again. The broker tells duplicates by producer id and sequence
	// alone, so another batch sent there could be answered as that one.
	doubt *batchID
}

// batchID names a batch by its first source offset and number of copies.
type batchID struct {
	from int64
	n    int
}

// errProducerID marks the errors after which the broker no longer accepts
// the producer's sequence for a partition.
func errProducerID(err error) bool {
	return errors.Is(err, sarama.ErrOutOfOrderSequenceNumber) || errors.Is(err, sarama.ErrUnknownProducerID) ||
		errors.Is(err, sarama.ErrInvalidProducerEpoch) || errors.Is(err, sarama.ErrProducerFenced) ||
		errors.Is(err, sarama.ErrDuplicateSequenceNumber) // its offset is unknown: copy again, with a known one
}

// errConn marks a request whose answer was lost with its connection.
var errConn = errors.New("connection to the partition leader failed")

// retriable marks the produce errors worth an immediate retry after a
// metadata refresh (leader moves, replicas catching up, lost answers).
func retriable(err error) bool {
	for _, e := range []error{errConn, sarama.ErrUnknownTopicOrPartition, sarama.ErrLeaderNotAvailable, sarama.ErrNotLeaderForPartition,
		sarama.ErrRequestTimedOut, sarama.ErrNotEnoughReplicas, sarama.ErrNotEnoughReplicasAfterAppend, sarama.ErrKafkaStorageError,
		sarama.ErrIncompleteResponse} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// unknownOutcome marks the retriable errors after which the broker may have
// written the batch: all others say it did not.
func unknownOutcome(err error) bool {
	return errors.Is(err, errConn) || errors.Is(err, sarama.ErrRequestTimedOut) ||
		errors.Is(err, sarama.ErrNotEnoughReplicasAfterAppend) || errors.Is(err, sarama.ErrIncompleteResponse)
}

// newBatchProducer connects n clients to brokers with conf (TLS, SASL and
// version come from it) and checks that the target grants producer ids.
func newBatchProducer(brokers []string, conf *sarama.Config, n int) (*batchProducer, error) {
	c := *conf
	// sarama checks Idempotent only for its own producer, which this is not.
	c.Producer.Idempotent = false
	p := &batchProducer{conf: &c, version: produceVersion(c.Version), parts: map[tp]*partitionSeq{}}
	for range n {
		cl, err := sarama.NewClient(brokers, &c)
		if err != nil {
			_ = p.Close()
			return nil, err
		}
		p.clients = append(p.clients, cl)
	}
	// Fail at start-up, not at the first record, without IdempotentWrite.
	if _, _, err := p.producerID(); err != nil {
		_ = p.Close()
		return nil, err
	}
	return p, nil
}

// Close closes the clients.
func (p *batchProducer) Close() error {
	var errs []error
	for _, c := range p.clients {
		errs = append(errs, c.Close())
	}
	return errors.Join(errs...)
}

func (p *batchProducer) producerID() (int64, int16, error) {
	resp, err := p.clients[0].InitProducerID()
	if err == nil && resp.Err != sarama.ErrNoError {
		err = resp.Err
	}
	if err != nil {
		return 0, 0, fmt.Errorf("init producer id: %w", err)
	}
	return resp.ProducerID, resp.ProducerEpoch, nil
}

// renew gives s a new producer id; its sequence starts again at 0.
func (p *batchProducer) renew(s *partitionSeq) error {
	pid, epoch, err := p.producerID()
	if err != nil {
		return err
	}
	s.pid, s.epoch, s.seq, s.doubt = pid, epoch, 0, nil
	return nil
}

func (p *batchProducer) partition(topic string, partition int32) *partitionSeq {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.parts[tp{topic, partition}]
	if s == nil {
		s = &partitionSeq{pid: -1}
		p.parts[tp{topic, partition}] = s
	}
	return s
}

// produce writes recs (OffsetDelta set, TimestampDelta relative to first),
// the copies of the source records from offset from on, to topic/partition
// as one batch and returns the offset the target gave its first record.
// Leader moves and lost answers are retried here, up to the config's
// Producer.Retry.Max times or until ctx ends; the error of the last attempt
// is returned otherwise.
func (p *batchProducer) produce(ctx context.Context, topic string, partition int32, from int64, recs []*sarama.Record, first time.Time) (int64, error) {
	s := p.partition(topic, partition)
	s.Lock()
	defer s.Unlock()
	id := batchID{from, len(recs)}
	if s.pid < 0 || (s.doubt != nil && *s.doubt != id) {
		if err := p.renew(s); err != nil {
			return 0, err
		}
	}
	var err error
	for attempt := 0; attempt <= p.conf.Producer.Retry.Max; attempt++ {
		if attempt > 0 && !sleep(ctx, p.conf.Producer.Retry.Backoff) {
			break
		}
		var base int64
		base, err = p.send(s, topic, partition, recs, first)
		switch {
		case err == nil:
			s.seq, s.doubt = nextSequence(s.seq, len(recs)), nil
			return base, nil
		case errProducerID(err):
			if rerr := p.renew(s); rerr != nil {
				return 0, rerr
			}
		case retriable(err):
			if unknownOutcome(err) {
				s.doubt = &id
			}
			_ = p.client(partition).RefreshMetadata(topic)
		default:
			return 0, err
		}
	}
	return 0, err
}

// nextSequence is the sequence after n records from seq: sequences wrap to
// 0 after MaxInt32, as the broker counts them (Kafka's
// DefaultRecordBatch.incrementSequence).
func nextSequence(seq int32, n int) int32 {
	return int32((int64(seq) + int64(n)) % (math.MaxInt32 + 1))
}

func (p *batchProducer) client(partition int32) sarama.Client {
	return p.clients[int(partition)%len(p.clients)]
}

// send makes one attempt.
func (p *batchProducer) send(s *partitionSeq, topic string, partition int32, recs []*sarama.Record, first time.Time) (int64, error) {
	var maxDelta time.Duration
	for _, r := range recs {
		maxDelta = max(maxDelta, r.TimestampDelta)
	}
	batch := &sarama.RecordBatch{
		Version: 2, Codec: p.conf.Producer.Compression, CompressionLevel: p.conf.Producer.CompressionLevel,
		ProducerID: s.pid, ProducerEpoch: s.epoch, FirstSequence: s.seq,
		FirstTimestamp: first, MaxTimestamp: first.Add(maxDelta),
		LastOffsetDelta: int32(len(recs) - 1), Records: recs,
	}
	req := &sarama.ProduceRequest{RequiredAcks: sarama.WaitForAll, Timeout: int32(p.conf.Producer.Timeout / time.Millisecond), Version: p.version}
	req.AddBatch(topic, partition, batch)
	leader, err := p.client(partition).Leader(topic, partition)
	if err != nil {
		return 0, err
	}
	resp, err := leader.Produce(req)
	if err != nil {
		var enc sarama.PacketEncodingError
		if errors.As(err, &enc) {
			return 0, err // the request itself: sending it again would not help
		}
		// The connection is in doubt: drop it; the next attempt reconnects.
		_ = leader.Close()
		return 0, fmt.Errorf("%w: %w", errConn, err)
	}
	block := resp.GetBlock(topic, partition)
	if block == nil {
		return 0, sarama.ErrIncompleteResponse
	}
	if block.Err != sarama.ErrNoError {
		return 0, block.Err
	}
	return block.Offset, nil
}

// produceVersion is the ProduceRequest version sarama's own producer uses
// for the configured Kafka version.
func produceVersion(v sarama.KafkaVersion) int16 {
	switch {
	case v.IsAtLeast(sarama.V3_7_0_0):
		return 10
	case v.IsAtLeast(sarama.V2_8_0_0):
		return 9
	case v.IsAtLeast(sarama.V2_4_0_0):
		return 8
	case v.IsAtLeast(sarama.V2_1_0_0):
		return 7
	case v.IsAtLeast(sarama.V2_0_0_0):
		return 6
	case v.IsAtLeast(sarama.V1_0_0_0):
		return 5
	default:
		return 3
	}
}
