package config

import (
	"fmt"
	"reflect"
	"slices"
	"time"
)

// Defaults of optional settings; docs/configuration.md lists the same values.
const (
	DefaultEtcdPrefix = "/regionsync/"
	DefaultListen     = "127.0.0.1:9464"
)

// DefaultBudgets are the readiness budgets when the config sets none.
func DefaultBudgets() Budgets {
	return Budgets{
		RPOBudget:          Duration(30 * time.Second),
		MaxKafkaLagRecords: 100000,
		MaxCheckpointAge:   Duration(10 * time.Second),
		MaxPendingHints:    100,
		MaxSinceRepair:     Duration(240 * time.Hour),
		MaxSinceReconcile:  Duration(2 * time.Hour),
		HoldPeriod:         Duration(30 * time.Second),
		VerdictTTL:         Duration(10 * time.Second),
		EvaluateInterval:   Duration(time.Second),
	}
}

// set reports whether the file gave path (lines holds every path written).
func (c *Config) set(path string) bool {
	_, ok := c.lines[path]
	return ok
}

func setDefault[T comparable](v *T, def T) {
	var zero T
	if *v == zero {
		*v = def
	}
}

// applyDefaults fills every optional setting the file left out. A budget
// written explicitly as 0 stays 0.
func (c *Config) applyDefaults() {
	setDefault(&c.EtcdPrefix, DefaultEtcdPrefix)
	for i := range c.Regions {
		r := &c.Regions[i]
		setDefault(&r.Role, "secondary")
		setDefault(&r.Kafka.ClientID, "regionsync-"+r.Name)
		setDefault(&r.Etcd.DialTimeout, Duration(5*time.Second))
		setDefault(&r.Cassandra.Timeout, Duration(5*time.Second))
		setDefault(&r.Cassandra.ProbeTimeout, Duration(time.Second))
	}
	for i := range c.Flows {
		f := &c.Flows[i]
		setDefault(&f.Naming, "prefix")
		setDefault(&f.HeartbeatInterval, Duration(time.Second))
		setDefault(&f.CheckpointInterval, Duration(time.Second))
		if len(f.Topics.Include) == 0 {
			f.Topics.Include = []string{".*"}
		}
	}
	def := reflect.ValueOf(DefaultBudgets())
	got := reflect.ValueOf(&c.Readiness.Defaults).Elem()
	for i := range got.NumField() {
		if !c.set("readiness.defaults." + yamlName(got.Type().Field(i))) {
			got.Field(i).Set(def.Field(i))
		}
	}
	setDefault(&c.Reconcile.KafkaAudit.Interval, Duration(time.Minute))
	if !c.set("reconcile.kafka_audit.jitter") {
		c.Reconcile.KafkaAudit.Jitter = Duration(10 * time.Second)
	}
	setDefault(&c.Reconcile.KafkaAudit.Window, Duration(time.Minute))
	setDefault(&c.Reconcile.KafkaAudit.Settle, Duration(2*time.Minute))
	for i := range c.Reconcile.Cassandra {
		j := &c.Reconcile.Cassandra[i]
		setDefault(&j.Interval, Duration(24*time.Hour))
		if !c.set(fmt.Sprintf("reconcile.cassandra[%d].jitter", i)) {
			j.Jitter = Duration(time.Hour) // an explicit 0s stays 0
		}
		setDefault(&j.Splits, 256)
		setDefault(&j.Consistency, "LOCAL_ONE")
		setDefault(&j.RateLimit, 10000)
	}
	setDefault(&c.Readiness.Gate.MinFlipInterval, Duration(5*time.Minute))
	setDefault(&c.Readiness.Gate.MaxOverride, Duration(24*time.Hour))
	setDefault(&c.Server.Listen, DefaultListen)
	setDefault(&c.Server.LogFormat, "text")
	setDefault(&c.Server.LogLevel, "info")
}

// BudgetsFor returns region's budgets: the defaults with the region's
// overrides on top (only the fields the override sets).
func (c *Config) BudgetsFor(region string) Budgets {
	b := c.Readiness.Defaults
	b.RequireLocalQuorum = slices.Clone(b.RequireLocalQuorum) // callers must not alias the config
	o, ok := c.Readiness.Regions[region]
	if !ok {
		return b
	}
	bv := reflect.ValueOf(&b).Elem()
	ov := reflect.ValueOf(o)
	for i := range ov.NumField() {
		if f := ov.Field(i); !f.IsNil() {
			bv.FieldByName(ov.Type().Field(i).Name).Set(f.Elem())
			if ov.Type().Field(i).Name == "RequireLocalQuorum" {
				b.RequireLocalQuorum = slices.Clone(b.RequireLocalQuorum)
			}
		}
	}
	return b
}

func yamlName(f reflect.StructField) string {
	tag := f.Tag.Get("yaml")
	for i := range len(tag) {
		if tag[i] == ',' {
			return tag[:i]
		}
	}
	return tag
}

// Dev returns the configuration `regionsync dev` runs: regions east
// (primary) and west (secondary) and a flow east-to-west with prefix naming.
// Store addresses are placeholders that the dev command replaces with those
// of its in-process servers.
func Dev() *Config {
	c := &Config{
		Version: 1,
		Regions: []Region{
			{Name: "east", Role: "primary", Kafka: Kafka{Brokers: []string{"127.0.0.1:9092"}},
				Etcd: Etcd{Endpoints: []string{"http://127.0.0.1:2379"}}, NATS: NATS{URL: "nats://127.0.0.1:4222"}},
			{Name: "west", Role: "secondary", Kafka: Kafka{Brokers: []string{"127.0.0.1:9093"}},
				Etcd: Etcd{Endpoints: []string{"http://127.0.0.1:2379"}}, NATS: NATS{URL: "nats://127.0.0.1:4222"}},
		},
		Flows:  []Flow{{Name: "east-to-west", Source: "east", Target: "west"}},
		lines:  map[string]int{},
		source: "dev",
	}
	c.applyDefaults()
	// A short hold period, so a region turns READY soon after dev starts,
	// and a quick audit, so its reports show within seconds.
	c.Readiness.Defaults.HoldPeriod = Duration(5 * time.Second)
	c.Reconcile.KafkaAudit = KafkaAudit{Interval: Duration(10 * time.Second), Jitter: Duration(time.Second),
		Window: Duration(5 * time.Second), Settle: Duration(10 * time.Second)}
	return c
}
