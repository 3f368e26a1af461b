package mirror_test

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"
	"go.uber.org/goleak"

	"github.com/regionsync/regionsync/mirror/mirrortest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("github.com/rcrowley/go-metrics.(*meterArbiter).tick"))
}

// TestSuiteKfake runs the mirror behaviour suite against two in-process
// Kafka stand-ins; the lab tests run the same suite on real Kafka.
func TestSuiteKfake(t *testing.T) {
	east, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.ClusterID("east"))
	if err != nil {
		t.Fatal(err)
	}
	defer east.Close()
	west, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.ClusterID("west"))
	if err != nil {
		t.Fatal(err)
	}
	defer west.Close()
	mirrortest.Run(t, mirrortest.Env{East: east.ListenAddrs(), West: west.ListenAddrs(), Records: 3000})
}
