//go:build lab

package replicate_test

import (
	"strconv"
	"strings"
	"testing"

	"github.com/regionsync/regionsync/deploy/lab/labtest"
)

// TestLabKafkaLag runs the lag scenario on the lab's real Kafka clusters
// and, with the flow stopped and lag settled, compares the lag in records
// with what Kafka's own kafka-consumer-groups tool reports for the flow's
// consumer group.
func TestLabKafkaLag(t *testing.T) {
	l := labtest.Require(t)
	env := kafkaEnv{east: l.KafkaEast, west: l.KafkaWest}
	lagScenario(t, env, func(group, topic string, lag int64) {
		out := l.Run(t, "kafka/kafka.sh", "tool", "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand",
			"--bootstrap-server", l.KafkaEast[0], "--describe", "--group", group)
		toolLag, rows := toolGroupLag(t, out, topic)
		t.Logf("kafka-consumer-groups --describe --group %s: %d rows for %s, lag %d; regionsync: %d", group, rows, topic, toolLag, lag)
		if rows != 3 || toolLag != lag {
			t.Fatalf("kafka-consumer-groups says lag %d over %d partitions of %s, regionsync says %d\n%s", toolLag, rows, topic, lag, out)
		}
	})
}

// toolGroupLag sums the LAG column of kafka-consumer-groups --describe
// output over the rows of topic.
func toolGroupLag(t *testing.T, out, topic string) (lag int64, rows int) {
	t.Helper()
	col := map[string]int{}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) > 0 && f[0] == "GROUP" {
			for i, name := range f {
				col[name] = i
			}
			continue
		}
		ti, ok1 := col["TOPIC"]
		li, ok2 := col["LAG"]
		if !ok1 || !ok2 || len(f) <= li || f[ti] != topic {
			continue
		}
		n, err := strconv.ParseInt(f[li], 10, 64)
		if err != nil {
			t.Fatalf("kafka-consumer-groups: LAG %q in %q: %v", f[li], line, err)
		}
		lag += n
		rows++
	}
	return lag, rows
}
