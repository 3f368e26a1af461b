//go:build lab

package labtest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/nats-io/nats.go/jetstream"
)

func unique(prefix string) string { return fmt.Sprintf("%s_%d", prefix, rand.Uint32()) }

// produceConsume writes n records to a new topic and reads every one back.
func produceConsume(t *testing.T, l *Lab, brokers []string, cfg *sarama.Config, n int) {
	topic := unique("smoke")
	admin, err := sarama.NewClusterAdmin(brokers, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if err := admin.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: 3, ReplicationFactor: 1}, false); err != nil {
		t.Fatal(err)
	}
	p, err := sarama.NewAsyncProducer(brokers, cfg)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for i := range n {
			p.Input() <- &sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder(fmt.Sprint(i % 97)), Value: sarama.StringEncoder(fmt.Sprintf("record-%d", i))}
		}
	}()
	for range n {
		select {
		case <-p.Successes():
		case e := <-p.Errors():
			t.Fatalf("produce: %v", e)
		}
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	c, err := sarama.NewConsumer(brokers, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	seen := map[string]bool{}
	for part := int32(0); part < 3; part++ {
		pc, err := c.ConsumePartition(topic, part, sarama.OffsetOldest)
		if err != nil {
			t.Fatal(err)
		}
		hw := pc.HighWaterMarkOffset()
		for off := int64(0); off < hw; off++ {
			select {
			case m := <-pc.Messages():
				seen[string(m.Value)] = true
			case <-time.After(30 * time.Second):
				t.Fatalf("partition %d: stuck at offset %d of %d", part, off, hw)
			}
		}
		_ = pc.Close()
	}
	for i := range n {
		if !seen[fmt.Sprintf("record-%d", i)] {
			t.Fatalf("record-%d not read back (%d of %d seen)", i, len(seen), n)
		}
	}
	if len(seen) != n {
		t.Fatalf("read %d distinct records, wrote %d", len(seen), n)
	}
}

func TestLabSmokeKafka(t *testing.T) {
	l := Require(t)
	t.Run("east", func(t *testing.T) { produceConsume(t, l, l.KafkaEast, l.Sarama(), 10000) })
	t.Run("west", func(t *testing.T) { produceConsume(t, l, l.KafkaWest, l.Sarama(), 10000) })
}

func TestLabSmokeCassandra(t *testing.T) {
	l := Require(t)
	status := l.Nodetool(t, "east", "status")
	for _, want := range []string{"Datacenter: dc-east", "Datacenter: dc-west", "UN  127.0.0.1", "UN  127.0.0.2"} {
		if !strings.Contains(status, want) {
			t.Fatalf("nodetool status lacks %q:\n%s", want, status)
		}
	}
	east := l.Cassandra(t, "127.0.0.1", "dc-east")
	west := l.Cassandra(t, "127.0.0.2", "dc-west")
	ks := unique("smoke")
	if err := east.Query(fmt.Sprintf(`CREATE KEYSPACE %s WITH replication = {'class':'NetworkTopologyStrategy','dc-east':1,'dc-west':1}`, ks)).Exec(); err != nil {
		t.Fatal(err)
	}
	if err := east.Query(fmt.Sprintf(`CREATE TABLE %s.kv (k text PRIMARY KEY, v text)`, ks)).Exec(); err != nil {
		t.Fatal(err)
	}
	Eventually(t, 30*time.Second, "schema agreement", func(context.Context) bool {
		return west.AwaitSchemaAgreement(context.Background()) == nil
	})
	if err := east.Query(fmt.Sprintf(`INSERT INTO %s.kv (k, v) VALUES ('region', 'written in dc-east')`, ks)).Exec(); err != nil {
		t.Fatal(err)
	}
	took := Eventually(t, 30*time.Second, "row written in dc-east readable in dc-west", func(ctx context.Context) bool {
		var v string
		err := west.Query(fmt.Sprintf(`SELECT v FROM %s.kv WHERE k = 'region'`, ks)).ScanContext(ctx, &v)
		return err == nil && v == "written in dc-east"
	})
	t.Logf("read in dc-west %s after the write in dc-east", took.Round(time.Millisecond))
}

func TestLabSmokeEtcd(t *testing.T) {
	l := Require(t)
	cli := l.Etcd(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ml, err := cli.MemberList(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ml.Members) != 3 {
		t.Fatalf("%d members, want 3", len(ml.Members))
	}
	var leader uint64
	for _, ep := range l.EtcdEndpoints {
		st, err := cli.Status(ctx, ep)
		if err != nil {
			t.Fatalf("status of %s: %v", ep, err)
		}
		if st.Leader == 0 || (leader != 0 && st.Leader != leader) {
			t.Fatalf("%s sees leader %x, others %x", ep, st.Leader, leader)
		}
		leader = st.Leader
	}
}

func TestLabSmokeNATS(t *testing.T) {
	l := Require(t)
	js, err := jetstream.New(l.NATS(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	bucket := unique("smoke")
	kv, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: bucket})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = js.DeleteKeyValue(context.Background(), bucket) }()
	if _, err := kv.Put(ctx, "west", []byte("READY")); err != nil {
		t.Fatal(err)
	}
	e, err := kv.Get(ctx, "west")
	if err != nil || string(e.Value()) != "READY" {
		t.Fatalf("get = %v, %v", e, err)
	}
}
