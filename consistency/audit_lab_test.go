//go:build lab

package consistency_test

import (
	"testing"

	"github.com/regionsync/regionsync/deploy/lab/labtest"
)

// TestLabKafkaAudit is issue #8's Kafka acceptance on the lab's real
// clusters: over 200,000 records, the audit reports exactly the records a
// test producer dropped, duplicated and reordered on the target, by offset,
// and nothing else.
func TestLabKafkaAudit(t *testing.T) {
	l := labtest.Require(t)
	auditScenario(t, l.KafkaEast, l.KafkaWest, 200_000)
}
