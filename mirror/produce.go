package mirror

import (
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
// Delivery matches the idempotent producer it replaces: acks=all, a producer
// id and per-partition sequence numbers, one request in flight per
// partition, and a retried batch carries the sequence of its first attempt,
// so the broker writes it once even if the first attempt was written but
// its answer lost. When the broker no longer knows the producer's sequence
// (OUT_OF_ORDER_SEQUENCE, UNKNOWN_PRODUCER_ID, ...) a new producer id is
// taken and the batch is sent again, which may copy it twice (the
// at-least-once window, as with sarama's producer).
type batchProducer struct {
	clients []sarama.Client // one connection each; partition p uses clients[p%len]
	conf    *sarama.Config
	version int16 // ProduceRequest version

	mu    sync.Mutex
	pid   int64
	epoch int16
	gen   int // bumped with each new producer id
	parts map[tp]*partitionSeq
}

// partitionSeq is one target partition's sequence; its lock keeps one
// request in flight per partition.
type partitionSeq struct {
	sync.Mutex
	gen int
	seq int32
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

// newBatchProducer connects n clients to brokers with conf (TLS, SASL and
// version come from it) and takes a producer id.
func newBatchProducer(brokers []string, conf *sarama.Config, n int) (*batchProducer, error) {
	c := *conf
	// Requests of different partitions may share a connection in flight;
	// each partition still has at most one (partitionSeq). sarama checks
	// Idempotent only for its own producer, which this is not.
	c.Net.MaxOpenRequests = 5
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
	if err := p.renew(-1); err != nil {
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

// renew takes a new producer id unless another caller already replaced
// generation seen; every partition's sequence starts again at 0.
func (p *batchProducer) renew(seen int) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if seen >= 0 && p.gen != seen {
		return nil
	}
	resp, err := p.clients[0].InitProducerID()
	if err == nil && resp.Err != sarama.ErrNoError {
		err = resp.Err
	}
	if err != nil {
		return fmt.Errorf("init producer id: %w", err)
	}
	p.pid, p.epoch = resp.ProducerID, resp.ProducerEpoch
	p.gen++
	return nil
}

func (p *batchProducer) partition(topic string, partition int32) *partitionSeq {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.parts[tp{topic, partition}]
	if s == nil {
		s = &partitionSeq{gen: p.gen}
		p.parts[tp{topic, partition}] = s
	}
	return s
}

// produce writes recs (OffsetDelta set, TimestampDelta relative to first)
// to topic/partition as one batch and returns the offset the target gave
// its first record. Leader moves and lost answers are retried here, up to
// the config's Producer.Retry.Max times; the error of the last attempt is
// returned otherwise.
func (p *batchProducer) produce(topic string, partition int32, recs []*sarama.Record, first time.Time) (int64, error) {
	s := p.partition(topic, partition)
	s.Lock()
	defer s.Unlock()
	var err error
	for attempt := 0; attempt <= p.conf.Producer.Retry.Max; attempt++ {
		if attempt > 0 {
			time.Sleep(p.conf.Producer.Retry.Backoff)
		}
		var base int64
		var gen int
		base, gen, err = p.send(s, topic, partition, recs, first)
		switch {
		case err == nil:
			s.seq = nextSequence(s.seq, len(recs))
			return base, nil
		case errProducerID(err):
			if rerr := p.renew(gen); rerr != nil {
				return 0, rerr
			}
		case retriable(err):
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

// send makes one attempt; it returns the generation of the producer id it
// used.
func (p *batchProducer) send(s *partitionSeq, topic string, partition int32, recs []*sarama.Record, first time.Time) (int64, int, error) {
	p.mu.Lock()
	pid, epoch, gen := p.pid, p.epoch, p.gen
	p.mu.Unlock()
	if s.gen != gen {
		s.gen, s.seq = gen, 0
	}
	var maxDelta time.Duration
	for _, r := range recs {
		maxDelta = max(maxDelta, r.TimestampDelta)
	}
	batch := &sarama.RecordBatch{
		Version: 2, Codec: p.conf.Producer.Compression, CompressionLevel: p.conf.Producer.CompressionLevel,
		ProducerID: pid, ProducerEpoch: epoch, FirstSequence: s.seq,
		FirstTimestamp: first, MaxTimestamp: first.Add(maxDelta),
		LastOffsetDelta: int32(len(recs) - 1), Records: recs,
	}
	req := &sarama.ProduceRequest{RequiredAcks: sarama.WaitForAll, Timeout: int32(p.conf.Producer.Timeout / time.Millisecond), Version: p.version}
	req.AddBatch(topic, partition, batch)
	cl := p.client(partition)
	leader, err := cl.Leader(topic, partition)
	if err != nil {
		return 0, gen, err
	}
	resp, err := leader.Produce(req)
	if err != nil {
		// The connection is in doubt: drop it; the next attempt reconnects.
		_ = leader.Close()
		return 0, gen, fmt.Errorf("%w: %w", errConn, err)
	}
	block := resp.GetBlock(topic, partition)
	if block == nil {
		return 0, gen, sarama.ErrIncompleteResponse
	}
	if block.Err != sarama.ErrNoError {
		return 0, gen, block.Err
	}
	return block.Offset, gen, nil
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
