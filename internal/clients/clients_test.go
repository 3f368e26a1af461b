package clients

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/nats-io/nats-server/v2/server"
	"go.uber.org/goleak"

	"github.com/regionsync/regionsync/internal/config"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("github.com/rcrowley/go-metrics.(*meterArbiter).tick"))
}

func TestKafkaConfig(t *testing.T) {
	k := config.Kafka{Brokers: []string{"a:9092"}, SASL: config.SASL{Mechanism: "SCRAM-SHA-512", Username: "u", Password: config.NewSecret("p")}}
	c, err := Kafka("east", k)
	if err != nil {
		t.Fatal(err)
	}
	if !c.Net.SASL.Enable || c.Net.SASL.Mechanism != sarama.SASLTypeSCRAMSHA512 || c.Net.SASL.Password != "p" || c.ClientID != "regionsync-east" {
		t.Fatalf("sasl config: %+v", c.Net.SASL)
	}
	sc := c.Net.SASL.SCRAMClientGeneratorFunc()
	if err := sc.Begin("u", "p", ""); err != nil {
		t.Fatal(err)
	}
	if first, err := sc.Step(""); err != nil || !strings.HasPrefix(first, "n,,n=u,r=") {
		t.Fatalf("SCRAM client-first = %q, %v", first, err)
	}
	k.SASL.Mechanism = "GSSAPI"
	if _, err := Kafka("east", k); err == nil || !strings.Contains(err.Error(), `region "east" kafka sasl: unsupported mechanism "GSSAPI"`) {
		t.Fatalf("err = %v", err)
	}
	k.SASL = config.SASL{}
	k.TLS = config.TLS{Enabled: true, CAFile: "/nonexistent/ca.pem"}
	if _, err := Kafka("west", k); err == nil || !strings.Contains(err.Error(), `region "west" kafka tls: ca_file`) {
		t.Fatalf("err = %v", err)
	}
}

func TestCassandraConfigStaysInLocalDC(t *testing.T) {
	cc, err := Cassandra("west", config.Cassandra{ContactPoints: []string{"127.0.0.2"}, LocalDC: "dc-west", Username: "u", Password: config.NewSecret("p")})
	if err != nil {
		t.Fatal(err)
	}
	if cc.HostFilter == nil || cc.Authenticator == nil || cc.Timeout != 5*time.Second {
		t.Fatalf("cluster config: filter=%v auth=%v timeout=%v", cc.HostFilter, cc.Authenticator, cc.Timeout)
	}
}

func TestNATSProbeUpAndDown(t *testing.T) {
	s, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: server.RANDOM_PORT, NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats not ready")
	}
	opts, err := NATS("east", config.NATS{URL: s.ClientURL()})
	if err != nil {
		t.Fatal(err)
	}
	p := NATSProbe(s.ClientURL(), opts)
	defer p.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := p.Check(ctx); err != nil {
		t.Fatalf("probe of a running server: %v", err)
	}
	s.Shutdown()
	s.WaitForShutdown()
	ctx2, cancel2 := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel2()
	if err := p.Check(ctx2); err == nil || !strings.HasPrefix(err.Error(), "nats: ") {
		t.Fatalf("probe of a stopped server = %v, want a nats: error", err)
	}
}
