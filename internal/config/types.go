// Package config loads regionsync's one YAML config file. Parsing is strict
// (unknown keys, wrong types and YAML syntax errors are reported with file,
// line and path), Validate reports every problem rather than the first, and
// secrets (${ENV} or file: references) are resolved at load and never
// printed. Defaults are documented on each field and in docs/configuration.md.
package config

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
)

// Config is the whole configuration of a regionsync deployment; every worker
// of every region reads the same file.
type Config struct {
	// Version of the config format. Required; this build reads 1.
	Version int `yaml:"version"`
	// EtcdPrefix of every regionsync key in etcd. Default "/regionsync/".
	EtcdPrefix string `yaml:"etcd_prefix"`
	// Regions of the deployment. At least one.
	Regions []Region `yaml:"regions"`
	// Flows are the Kafka mirror flows between regions.
	Flows []Flow `yaml:"flows"`
	// Readiness holds the budgets verdicts are judged against.
	Readiness Readiness `yaml:"readiness"`
	// Reconcile configures the reconcile jobs.
	Reconcile Reconcile `yaml:"reconcile"`
	// Server is the process's HTTP server and logging.
	Server Server `yaml:"server"`

	source string         // file name for messages
	lines  map[string]int // config path → line, for messages
}

// Region is one region (data center) and its stores.
type Region struct {
	// Name, lowercase letters, digits and '-'. Required, unique.
	Name string `yaml:"name"`
	// Role: primary, secondary or witness (no Kafka, only etcd quorum and
	// observation). Default secondary.
	Role      string    `yaml:"role"`
	Kafka     Kafka     `yaml:"kafka"`
	Cassandra Cassandra `yaml:"cassandra"`
	Etcd      Etcd      `yaml:"etcd"`
	NATS      NATS      `yaml:"nats"`
}

// Kafka is how to reach a region's Kafka cluster.
type Kafka struct {
	// Brokers, host:port. Required unless the region is a witness.
	Brokers []string `yaml:"brokers"`
	// ClientID sent to brokers. Default "regionsync-<region>".
	ClientID string `yaml:"client_id"`
	TLS      TLS    `yaml:"tls"`
	SASL     SASL   `yaml:"sasl"`
}

// SASL authentication for Kafka.
type SASL struct {
	// Mechanism: SCRAM-SHA-256, SCRAM-SHA-512 or PLAIN; empty disables SASL.
	Mechanism string `yaml:"mechanism"`
	Username  string `yaml:"username"`
	Password  Secret `yaml:"password"`
}

// Cassandra is how to reach a region's Cassandra data center. Optional: an
// empty contact_points list means the region has no Cassandra.
type Cassandra struct {
	// ContactPoints, host or host:port, in this region's DC.
	ContactPoints []string `yaml:"contact_points"`
	// LocalDC is the Cassandra data center name of this region (required with
	// contact points). Sessions are filtered to it.
	LocalDC string `yaml:"local_dc"`
	// Keyspaces whose replication regionsync watches.
	Keyspaces []string `yaml:"keyspaces"`
	Username  string   `yaml:"username"`
	Password  Secret   `yaml:"password"`
	TLS       TLS      `yaml:"tls"`
	// Timeout per query and connect. Default 5s.
	Timeout Duration `yaml:"timeout"`
	// ProbeTimeout of the per-node liveness probe: a node that does not
	// answer within it counts as down. Default 1s.
	ProbeTimeout Duration `yaml:"probe_timeout"`
}

// Etcd is how a region reaches the cross-DC etcd cluster.
type Etcd struct {
	// Endpoints, http:// or https:// URLs. Required.
	Endpoints []string `yaml:"endpoints"`
	Username  string   `yaml:"username"`
	Password  Secret   `yaml:"password"`
	TLS       TLS      `yaml:"tls"`
	// DialTimeout. Default 5s.
	DialTimeout Duration `yaml:"dial_timeout"`
}

// NATS is how a region reaches NATS. At most one of creds_file, nkey_file,
// token and user/password is used, in that order.
type NATS struct {
	// URL, nats:// or tls:// (comma-separated for several servers). Required.
	URL       string `yaml:"url"`
	CredsFile string `yaml:"creds_file"`
	NkeyFile  string `yaml:"nkey_file"`
	Token     Secret `yaml:"token"`
	User      string `yaml:"user"`
	Password  Secret `yaml:"password"`
	TLS       TLS    `yaml:"tls"`
}

// TLS client settings, shared by every store.
type TLS struct {
	Enabled bool `yaml:"enabled"`
	// CAFile verifies servers; empty uses the system roots.
	CAFile string `yaml:"ca_file"`
	// CertFile and KeyFile give a client certificate; both or neither.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// ServerName overrides the name verified in the server certificate.
	ServerName         string `yaml:"server_name"`
	InsecureSkipVerify bool   `yaml:"insecure_skip_verify"`
}

// ClientConfig loads the files and returns a *tls.Config (TLS 1.2 minimum).
func (t TLS) ClientConfig() (*tls.Config, error) {
	c := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: t.ServerName, InsecureSkipVerify: t.InsecureSkipVerify} //nolint:gosec // operator's explicit choice
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("ca_file %q: no PEM certificate in it", t.CAFile)
		}
		c.RootCAs = pool
	}
	if t.CertFile != "" || t.KeyFile != "" {
		if t.CertFile == "" || t.KeyFile == "" {
			return nil, errors.New("cert_file and key_file go together")
		}
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("cert_file %q / key_file %q: %w", t.CertFile, t.KeyFile, err)
		}
		c.Certificates = []tls.Certificate{cert}
	}
	return c, nil
}

// Flow is a Kafka mirror flow from one region to another.
type Flow struct {
	// Name, unique. Required.
	Name   string `yaml:"name"`
	Source string `yaml:"source"`
	Target string `yaml:"target"`
	Topics Topics `yaml:"topics"`
	// Naming of remote topics: prefix ("east.orders", default) or identity.
	Naming      string `yaml:"naming"`
	ExactlyOnce bool   `yaml:"exactly_once"`
	// DeadLetterTopic on the target receives records the target rejects
	// permanently; empty stops the partition instead.
	DeadLetterTopic string `yaml:"dead_letter_topic"`
	// HeartbeatInterval. Default 1s.
	HeartbeatInterval Duration `yaml:"heartbeat_interval"`
	// CheckpointInterval of consumer-group offset translation. Default 1s.
	CheckpointInterval Duration `yaml:"checkpoint_interval"`
}

// Topics selects topics by regular expressions (Go RE2 syntax, anchored).
// Internal topics (__*, *.internal) are never mirrored.
type Topics struct {
	// Include. Default [".*"].
	Include []string `yaml:"include"`
	Exclude []string `yaml:"exclude"`
}

// Readiness holds the budgets (defaults, and per-region overrides of some),
// the keys verdicts are signed and checked with, and the gate's rules.
type Readiness struct {
	Defaults Budgets                   `yaml:"defaults"`
	Regions  map[string]BudgetOverride `yaml:"regions"`
	// SigningKey signs every verdict and aggregate this deployment writes.
	// Optional: without it verdicts are unsigned.
	SigningKey SigningKey `yaml:"signing_key"`
	// TrustedKeys maps key ids to ed25519 public key files (PEM). When set,
	// verdicts not signed by one of them are not counted, and the gate and
	// gate clients reject unsigned aggregates.
	TrustedKeys map[string]string `yaml:"trusted_keys"`
	Gate        Gate              `yaml:"gate"`
}

// Reconcile configures the reconcile jobs the region leaders run.
type Reconcile struct {
	KafkaAudit KafkaAudit `yaml:"kafka_audit"`
	// Cassandra lists the Cassandra cross-DC diff jobs.
	Cassandra []CassandraJob `yaml:"cassandra"`
}

// CassandraJob is a scheduled cross-DC diff (and, with Repair, repair) of a
// keyspace between two regions' Cassandra DCs, run by the leader of the
// first region.
type CassandraJob struct {
	// Name of the job (etcd keys, metrics, `reconcile run --cassandra`).
	Name     string `yaml:"name"`
	Keyspace string `yaml:"keyspace"`
	// Tables of the keyspace; empty: all of them.
	Tables []string `yaml:"tables"`
	// Regions: the two regions whose DCs are compared; the first one's
	// leader runs the job.
	Regions []string `yaml:"regions"`
	// Interval between runs (end of one to start of the next). Default 24h.
	Interval Duration `yaml:"interval"`
	// Jitter: each run waits a random part of this first. Default 1h.
	Jitter Duration `yaml:"jitter"`
	// Splits of the token ring. Default 256.
	Splits int `yaml:"splits"`
	// Consistency of the reads: LOCAL_ONE (default) or LOCAL_QUORUM.
	Consistency string `yaml:"consistency"`
	// Repair writes the winning cells back; default false (dry run).
	Repair bool `yaml:"repair"`
	// RateLimit: rows read per second from each DC. Default 10000; -1 is
	// no limit.
	RateLimit int `yaml:"rate_limit"`
}

// KafkaAudit is the continuous audit of the flows into a region, run by
// that region's leader.
type KafkaAudit struct {
	// Disabled turns the audit off.
	Disabled bool `yaml:"disabled"`
	// Interval between reports (etcd, NATS, readiness). Default 1m.
	Interval Duration `yaml:"interval"`
	// Jitter delays the first report by up to this much, so regions do not
	// report in step. Default 10s.
	Jitter Duration `yaml:"jitter"`
	// Window of record time compared at once. Default 1m.
	Window Duration `yaml:"window"`
	// Settle: a window is judged this long after its end at the latest,
	// sooner once the mirror is past it. Default 2m.
	Settle Duration `yaml:"settle"`
}

// SigningKey names an ed25519 private key (PKCS#8 PEM file).
type SigningKey struct {
	KeyID          string `yaml:"key_id"`
	PrivateKeyFile string `yaml:"private_key_file"`
}

// Gate holds the failover gate's safety rules.
type Gate struct {
	// MinFlipInterval: the gate denies moving traffic again this soon after
	// the last allowed move. Default 5m.
	MinFlipInterval Duration `yaml:"min_flip_interval"`
	// MaxOverride: the longest an override may last. Default 24h.
	MaxOverride Duration `yaml:"max_override"`
}

// Budgets are the thresholds a region's verdict is judged against.
type Budgets struct {
	// RPOBudget, the worst data-loss window allowed. Default 30s.
	RPOBudget Duration `yaml:"rpo_budget"`
	// MaxKafkaLagRecords per flow. Default 100000.
	MaxKafkaLagRecords int64 `yaml:"max_kafka_lag_records"`
	// MaxCheckpointAge of translated consumer offsets. Default 10s.
	MaxCheckpointAge Duration `yaml:"max_checkpoint_age"`
	// MaxPendingHints: hint files other DCs hold for the region's DC
	// (Cassandra reports files, not single hints). Default 100.
	MaxPendingHints int64 `yaml:"max_pending_hints"`
	// MaxSinceRepair of each watched keyspace. Default 240h.
	MaxSinceRepair Duration `yaml:"max_since_repair"`
	// MaxSinceReconcile, since the last clean reconcile. Default 2h.
	MaxSinceReconcile Duration `yaml:"max_since_reconcile"`
	// RequireLocalQuorum lists keyspaces that must serve LOCAL_QUORUM.
	RequireLocalQuorum []string `yaml:"require_local_quorum"`
	// HoldPeriod: all checks must pass this long before READY returns. Default 30s.
	HoldPeriod Duration `yaml:"hold_period"`
	// VerdictTTL: a verdict expires this long after it was observed. Default 10s.
	VerdictTTL Duration `yaml:"verdict_ttl"`
	// EvaluateInterval between evaluations. Default 1s.
	EvaluateInterval Duration `yaml:"evaluate_interval"`
}

// BudgetOverride is Budgets with every field optional; set fields win over
// the defaults for one region.
type BudgetOverride struct {
	RPOBudget          *Duration `yaml:"rpo_budget"`
	MaxKafkaLagRecords *int64    `yaml:"max_kafka_lag_records"`
	MaxCheckpointAge   *Duration `yaml:"max_checkpoint_age"`
	MaxPendingHints    *int64    `yaml:"max_pending_hints"`
	MaxSinceRepair     *Duration `yaml:"max_since_repair"`
	MaxSinceReconcile  *Duration `yaml:"max_since_reconcile"`
	RequireLocalQuorum *[]string `yaml:"require_local_quorum"`
	HoldPeriod         *Duration `yaml:"hold_period"`
	VerdictTTL         *Duration `yaml:"verdict_ttl"`
	EvaluateInterval   *Duration `yaml:"evaluate_interval"`
}

// Server is the process's HTTP server and logging.
type Server struct {
	// Listen address of /metrics, /healthz, /readyz. Default 127.0.0.1:9464.
	Listen string `yaml:"listen"`
	// LogFormat text or json. Default text.
	LogFormat string `yaml:"log_format"`
	// LogLevel debug, info, warn or error. Default info.
	LogLevel string `yaml:"log_level"`
	// MemoryLimitMiB is the Go runtime's soft memory limit for `run`
	// (debug.SetMemoryLimit): the garbage collector works harder as the
	// heap nears it. 0 (default): none. The GOMEMLIMIT environment
	// variable, when set, wins.
	MemoryLimitMiB int `yaml:"memory_limit_mib"`
}

// Region returns the region named name.
func (c *Config) Region(name string) (Region, bool) {
	for _, r := range c.Regions {
		if r.Name == name {
			return r, true
		}
	}
	return Region{}, false
}
