package devstack

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kfake"
)

// startKafka starts an in-process Kafka stand-in (franz-go kfake) for one
// region. Topics are seeded with the given partition count; others are
// created on demand.
func startKafka(region string, partitions int32, topics []string) (*kfake.Cluster, error) {
	opts := []kfake.Opt{
		kfake.NumBrokers(1),
		kfake.ClusterID("regionsync-dev-" + region),
		kfake.AllowAutoTopicCreation(),
		kfake.DefaultNumPartitions(int(partitions)),
	}
	if len(topics) > 0 {
		opts = append(opts, kfake.SeedTopics(partitions, topics...))
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		return nil, fmt.Errorf("devstack: kafka for region %q: %w", region, err)
	}
	return c, nil
}
