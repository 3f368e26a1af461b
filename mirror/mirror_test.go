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
	const westMax = 100 << 10
	west, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.ClusterID("west"),
		kfake.BrokerConfigs(map[string]string{"message.max.bytes": "102400"}))
	if err != nil {
		t.Fatal(err)
	}
	defer west.Close()
	mirrortest.Run(t, mirrortest.Env{East: east.ListenAddrs(), West: west.ListenAddrs(), Records: 3000, WestMaxBytes: westMax})
}
