//go:build lab

package labtest

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/IBM/sarama"
)

// TestLabMirrorMaker2 starts MirrorMaker 2 with the lab script and sees it
// copy a topic from east to west as east.<topic>.
func TestLabMirrorMaker2(t *testing.T) {
	l := Require(t)
	topic := unique("mm2")
	admin, err := sarama.NewClusterAdmin(l.KafkaEast, l.Sarama())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if err := admin.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: 2, ReplicationFactor: 1}, false); err != nil {
		t.Fatal(err)
	}
	p, err := sarama.NewSyncProducer(l.KafkaEast, l.Sarama())
	if err != nil {
		t.Fatal(err)
	}
	var msgs []*sarama.ProducerMessage
	for i := range 1000 {
		msgs = append(msgs, &sarama.ProducerMessage{Topic: topic, Value: sarama.ByteEncoder([]byte{byte(i)})})
	}
	if err := p.SendMessages(msgs); err != nil {
		t.Fatal(err)
	}
	_ = p.Close()
	cmd := exec.Command(filepath.Join(l.Dir, "kafka", "mm2.sh"), "start")
	cmd.Env = append(os.Environ(), "MM2_TOPICS="+topic)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("mm2.sh start: %v\n%s", err, out)
	}
	defer l.Run(t, "kafka/mm2.sh", "stop")
	client, err := sarama.NewClient(l.KafkaWest, l.Sarama())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	took := Eventually(t, 90*time.Second, "MirrorMaker 2 copied 1000 records to west", func(context.Context) bool {
		_ = client.RefreshMetadata("east." + topic)
		var sum int64
		for p := int32(0); p < 2; p++ {
			hw, err := client.GetOffset("east."+topic, p, sarama.OffsetNewest)
			if err != nil {
				return false
			}
			sum += hw
		}
		return sum == 1000
	})
	t.Logf("MirrorMaker 2 had copied all records %s after mm2.sh start returned", took.Round(time.Millisecond))
}
