//go:build lab

package mirror_test

import (
	"testing"

	"github.com/regionsync/regionsync/deploy/lab/labtest"
	"github.com/regionsync/regionsync/mirror/mirrortest"
)

// TestLabMirrorSuite runs the mirror behaviour suite on real Apache Kafka.
func TestLabMirrorSuite(t *testing.T) {
	l := labtest.Require(t)
	mirrortest.Run(t, mirrortest.Env{East: l.KafkaEast, West: l.KafkaWest, Records: 20000})
}
