package devstack

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"
	"github.com/prometheus/client_golang/prometheus"
)

// Producer writes a small synthetic stream into one region's Kafka: keyed
// records (every 50th key is null, every 100th record a tombstone) with
// headers, spread round-robin over topics, at a fixed rate. It exists so that
// `regionsync dev` has traffic to mirror and measure.
type Producer struct {
	region  string
	brokers func() []string
	topics  []string
	rate    int
	log     *slog.Logger
	sent    *prometheus.CounterVec
	errs    prometheus.Counter
	acked   atomic.Int64
}

// NewProducer returns a producer for region; brokers is called once Run
// starts (the stack is up by then). rate is records per second.
func NewProducer(region string, brokers func() []string, topics []string, rate int, reg prometheus.Registerer, log *slog.Logger) *Producer {
	p := &Producer{
		region: region, brokers: brokers, topics: topics, rate: rate, log: log,
		sent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name:        "regionsync_dev_produced_records_total",
			Help:        "Synthetic records the dev producer wrote, by topic.",
			ConstLabels: prometheus.Labels{"region": region},
		}, []string{"topic"}),
		errs: prometheus.NewCounter(prometheus.CounterOpts{
			Name:        "regionsync_dev_produce_errors_total",
			Help:        "Synthetic records the dev producer failed to write.",
			ConstLabels: prometheus.Labels{"region": region},
		}),
	}
	reg.MustRegister(p.sent, p.errs)
	return p
}

// Acked returns how many records Kafka acknowledged so far.
func (p *Producer) Acked() int64 { return p.acked.Load() }

// Run produces until ctx is cancelled, then flushes and closes the producer.
// It returns an error only when it cannot connect at start.
func (p *Producer) Run(ctx context.Context) error {
	cfg := sarama.NewConfig()
	cfg.ClientID = "regionsync-dev-producer"
	cfg.Version = sarama.V3_0_0_0
	cfg.Producer.Return.Successes = true
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Producer.Idempotent = true
	cfg.Net.MaxOpenRequests = 1
	cfg.Producer.Partitioner = sarama.NewHashPartitioner
	prod, err := sarama.NewAsyncProducer(p.brokers(), cfg)
	if err != nil {
		return fmt.Errorf("devstack: producer for region %q: %w", p.region, err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case m, ok := <-prod.Successes():
				if !ok {
					return
				}
				p.sent.WithLabelValues(m.Topic).Inc()
				p.acked.Add(1)
			case e, ok := <-prod.Errors():
				if !ok {
					return
				}
				p.errs.Inc()
				p.log.Warn("dev producer: record not written", "topic", e.Msg.Topic, "err", e.Err)
			}
		}
	}()
	tick := time.NewTicker(time.Second / time.Duration(max(p.rate, 1)))
	defer tick.Stop()
	var n int64
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case <-tick.C:
			select {
			case prod.Input() <- p.record(n):
				n++
			case <-ctx.Done():
				break loop
			}
		}
	}
	prod.AsyncClose()
	<-done
	return nil
}

func (p *Producer) record(n int64) *sarama.ProducerMessage {
	m := &sarama.ProducerMessage{
		Topic: p.topics[n%int64(len(p.topics))],
		Headers: []sarama.RecordHeader{
			{Key: []byte("source"), Value: []byte("regionsync-dev")},
			{Key: []byte("seq"), Value: []byte(strconv.FormatInt(n, 10))},
		},
		Timestamp: time.Now(),
	}
	if n%50 != 0 {
		m.Key = sarama.StringEncoder("key-" + strconv.FormatInt(n%997, 10))
	}
	if n%100 != 1 {
		m.Value = sarama.StringEncoder(fmt.Sprintf(`{"seq":%d,"region":%q}`, n, p.region))
	}
	return m
}
