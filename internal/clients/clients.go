// Package clients builds the Kafka, etcd, NATS and Cassandra client
// configurations of one region from regionsync's config, with TLS and
// authentication applied the same way for every folder that talks to them.
// Nothing here connects except the probes, which say whether a dependency
// answers.
package clients

import (
	"fmt"
	"time"

	"github.com/IBM/sarama"
	gocql "github.com/apache/cassandra-gocql-driver/v2"
	"github.com/nats-io/nats.go"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/regionsync/regionsync/internal/config"
)

// Kafka returns a sarama config for k (TLS, SASL PLAIN/SCRAM) and its brokers.
func Kafka(region string, k config.Kafka) (*sarama.Config, error) {
	c := sarama.NewConfig()
	c.Version = sarama.V3_6_0_0
	c.ClientID = "regionsync-" + region
	if k.ClientID != "" {
		c.ClientID = k.ClientID
	}
	c.Net.DialTimeout = 5 * time.Second
	c.Metadata.Retry.Max = 1
	if k.TLS.Enabled {
		tc, err := k.TLS.ClientConfig()
		if err != nil {
			return nil, fmt.Errorf("region %q kafka tls: %w", region, err)
		}
		c.Net.TLS.Enable, c.Net.TLS.Config = true, tc
	}
	if k.SASL.Mechanism != "" {
		c.Net.SASL.Enable = true
		c.Net.SASL.User = k.SASL.Username
		c.Net.SASL.Password = k.SASL.Password.Value()
		c.Net.SASL.Mechanism = sarama.SASLMechanism(k.SASL.Mechanism)
		switch c.Net.SASL.Mechanism {
		case sarama.SASLTypeSCRAMSHA256, sarama.SASLTypeSCRAMSHA512:
			c.Net.SASL.SCRAMClientGeneratorFunc = newSCRAM(c.Net.SASL.Mechanism)
		case sarama.SASLTypePlaintext:
		default:
			return nil, fmt.Errorf("region %q kafka sasl: unsupported mechanism %q", region, k.SASL.Mechanism)
		}
	}
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("region %q kafka: %w", region, err)
	}
	return c, nil
}

// Etcd returns an etcd client config for e (TLS, user/password auth).
func Etcd(region string, e config.Etcd) (clientv3.Config, error) {
	c := clientv3.Config{
		Endpoints:   e.Endpoints,
		DialTimeout: e.DialTimeout.Std(),
		Username:    e.Username,
		Password:    e.Password.Value(),
		Logger:      zap.NewNop(),
	}
	if c.DialTimeout == 0 {
		c.DialTimeout = 5 * time.Second
	}
	if e.TLS.Enabled {
		tc, err := e.TLS.ClientConfig()
		if err != nil {
			return c, fmt.Errorf("region %q etcd tls: %w", region, err)
		}
		c.TLS = tc
	}
	return c, nil
}

// NATS returns connection options for n (TLS, creds file, nkey seed file,
// token or user/password) and the URL to dial.
func NATS(region string, n config.NATS) ([]nats.Option, error) {
	opts := []nats.Option{
		nats.Name("regionsync-" + region),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(500 * time.Millisecond),
		nats.Timeout(5 * time.Second),
	}
	if n.TLS.Enabled {
		tc, err := n.TLS.ClientConfig()
		if err != nil {
			return nil, fmt.Errorf("region %q nats tls: %w", region, err)
		}
		opts = append(opts, nats.Secure(tc))
	}
	switch {
	case n.CredsFile != "":
		opts = append(opts, nats.UserCredentials(n.CredsFile))
	case n.NkeyFile != "":
		o, err := nats.NkeyOptionFromSeed(n.NkeyFile)
		if err != nil {
			return nil, fmt.Errorf("region %q nats nkey file %q: %w", region, n.NkeyFile, err)
		}
		opts = append(opts, o)
	case n.Token.Value() != "":
		opts = append(opts, nats.Token(n.Token.Value()))
	case n.User != "":
		opts = append(opts, nats.UserInfo(n.User, n.Password.Value()))
	}
	return opts, nil
}

// Cassandra returns a gocql cluster config for c whose host selection stays
// in c.LocalDC (a LOCAL_* query never lands in another DC), with password
// auth and TLS.
func Cassandra(region string, c config.Cassandra) (*gocql.ClusterConfig, error) {
	cc := gocql.NewCluster(c.ContactPoints...)
	cc.Timeout = c.Timeout.Std()
	if cc.Timeout == 0 {
		cc.Timeout = 5 * time.Second
	}
	cc.ConnectTimeout = cc.Timeout
	if c.LocalDC != "" {
		cc.PoolConfig.HostSelectionPolicy = gocql.DCAwareRoundRobinPolicy(c.LocalDC)
		cc.HostFilter = gocql.DataCenterHostFilter(c.LocalDC)
	}
	if c.Username != "" {
		cc.Authenticator = gocql.PasswordAuthenticator{Username: c.Username, Password: c.Password.Value()}
	}
	if c.TLS.Enabled {
		tc, err := c.TLS.ClientConfig()
		if err != nil {
			return nil, fmt.Errorf("region %q cassandra tls: %w", region, err)
		}
		cc.SslOpts = &gocql.SslOptions{Config: tc, EnableHostVerification: !c.TLS.InsecureSkipVerify}
	}
	return cc, nil
}
