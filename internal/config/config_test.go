package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// badFiles maps every testdata/*.bad.yaml to the message it must produce
// (file:line: path: message, as printed by `regionsync config validate`).
var badFiles = map[string]string{
	"syntax.bad.yaml":                  "syntax.bad.yaml:2: YAML syntax: did not find expected node content",
	"unknown-key.bad.yaml":             `unknown-key.bad.yaml:13: regions[1].kafka.brokerz: unknown key "brokerz"`,
	"wrong-type.bad.yaml":              `wrong-type.bad.yaml:13: regions[1].kafka.brokers: expected a list of strings, got the string "127.0.0.1:29092"`,
	"missing-regions.bad.yaml":         "missing-regions.bad.yaml: regions: must list at least one region",
	"duplicate-region.bad.yaml":        `duplicate-region.bad.yaml:11: regions[1].name: duplicate region "east" (also regions[0])`,
	"unknown-flow-region.bad.yaml":     `unknown-flow-region.bad.yaml:21: flows[0].target: unknown region "south" (regions: east, west)`,
	"negative-budget.bad.yaml":         "negative-budget.bad.yaml:24: readiness.defaults.max_kafka_lag_records: must not be negative, got -5",
	"bad-duration.bad.yaml":            `bad-duration.bad.yaml:24: readiness.defaults.hold_period: invalid duration "30 seconds"`,
	"bad-url.bad.yaml":                 `bad-url.bad.yaml:17: regions[1].nats.url: invalid URL "http//127.0.0.1:24222"`,
	"unreadable-secret.bad.yaml":       `unreadable-secret.bad.yaml:9: regions[0].cassandra.password: cannot read secret file "/nonexistent/regionsync/cassandra-password"`,
	"tls-missing.bad.yaml":             `tls-missing.bad.yaml:9: regions[0].kafka.tls.ca_file: cannot read "/nonexistent/ca.pem": no such file or directory`,
	"self-mirror.bad.yaml":             `self-mirror.bad.yaml:21: flows[0].target: self-mirroring flow: source and target are both "east"`,
	"unset-env.bad.yaml":               "unset-env.bad.yaml:10: regions[0].kafka.sasl.password: environment variable REGIONSYNC_TEST_UNSET_VAR is not set",
	"bad-regex.bad.yaml":               `bad-regex.bad.yaml:23: flows[0].topics.include[0]: invalid regular expression "orders(.*": missing closing )`,
	"wrong-version.bad.yaml":           "wrong-version.bad.yaml:1: version: unsupported config version 2 (this build reads 1)",
	"unknown-role.bad.yaml":            `unknown-role.bad.yaml:4: regions[0].role: unknown role "leader"`,
	"duplicate-key.bad.yaml":           `duplicate-key.bad.yaml:3: regions: key "regions" given twice`,
	"override-unknown-region.bad.yaml": `override-unknown-region.bad.yaml:25: readiness.regions.south: override for unknown region "south"`,
	"empty.bad.yaml":                   "empty.bad.yaml: the file is empty",
	"memlimit.bad.yaml":                "memlimit.bad.yaml:11: server.memory_limit_mib: must be 0 (no limit) or at least 32, got 8",
	"cassandra-job.bad.yaml":           `cassandra-job.bad.yaml:25: reconcile.cassandra[0].regions[0]: region "east" has no cassandra configured`,
	"untrusted-signer.bad.yaml":        `untrusted-signer.bad.yaml:27: readiness.trusted_keys: does not list the signing key "k1": this deployment's own verdicts would not count`,
}

func TestBadFiles(t *testing.T) {
	files, err := filepath.Glob("testdata/*.bad.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		name := filepath.Base(f)
		if name == "many.bad.yaml" {
			continue // TestAllProblemsReported
		}
		t.Run(name, func(t *testing.T) {
			want, ok := badFiles[name]
			if !ok {
				t.Fatalf("%s has no expected message in badFiles", name)
			}
			cfg, err := loadAs(t, f, name)
			if err == nil {
				t.Fatalf("no error; config %v", cfg)
			}
			var probs Errors
			if !errors.As(err, &probs) || len(probs) == 0 {
				t.Fatalf("error %T %v is not a non-empty Errors", err, err)
			}
			if !strings.HasPrefix(probs[0].String(), want) {
				t.Fatalf("first problem\n  %s\nwant prefix\n  %s\nall:\n%v", probs[0], want, err)
			}
		})
	}
	if len(files)-1 < len(badFiles) {
		t.Fatalf("badFiles names %d files, testdata has %d", len(badFiles), len(files)-1)
	}
}

// loadAs parses file f reporting it under name (so messages are stable).
func loadAs(t *testing.T, f, name string) (*Config, error) {
	t.Helper()
	b, err := os.ReadFile(f)
	if err != nil {
		t.Fatal(err)
	}
	return Parse(b, name)
}

func TestAllProblemsReported(t *testing.T) {
	_, err := loadAs(t, "testdata/many.bad.yaml", "many.bad.yaml")
	var probs Errors
	if !errors.As(err, &probs) {
		t.Fatalf("err = %v", err)
	}
	want := []string{
		`many.bad.yaml:3: regions[0].name: "East": use lowercase letters`,
		"many.bad.yaml:5: regions[0].kafka.brokers: must not be empty",
		`many.bad.yaml:7: regions[0].etcd.endpoints[0]: invalid URL "ftp://etcd:2379"`,
		"many.bad.yaml:9: regions[0].nats.url: required",
		"many.bad.yaml:13: flows[0].target: self-mirroring flow",
		`many.bad.yaml:14: flows[0].naming: unknown naming "mirror"`,
		"many.bad.yaml:17: readiness.defaults.rpo_budget: must not be negative, got -1s",
		`many.bad.yaml:19: server.log_level: unknown level "chatty"`,
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("missing %q in:\n%v", w, err)
		}
	}
	for i := 1; i < len(probs); i++ {
		if probs[i].Line < probs[i-1].Line {
			t.Errorf("problems not in file order: %v before %v", probs[i-1], probs[i])
		}
	}
}

func TestDefaultsAndOverrides(t *testing.T) {
	src := strings.Replace(readFile(t, "testdata/good-minimal.yaml"), "flows:", `readiness:
  defaults:
    max_pending_hints: 0
    hold_period: 1m
  regions:
    west:
      rpo_budget: 5s
      require_local_quorum: [payments]
flows:`, 1)
	cfg, err := Parse([]byte(src), "good.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.EtcdPrefix != "/regionsync/" || cfg.Server.Listen != "127.0.0.1:9464" || cfg.Server.LogFormat != "text" {
		t.Fatalf("top-level defaults: %+v %+v", cfg.EtcdPrefix, cfg.Server)
	}
	if r, _ := cfg.Region("west"); r.Role != "secondary" || r.Etcd.DialTimeout.Std() != 5*time.Second || r.Kafka.ClientID != "regionsync-west" {
		t.Fatalf("region defaults: %+v", r)
	}
	f := cfg.Flows[0]
	if f.Naming != "prefix" || f.HeartbeatInterval.Std() != time.Second || len(f.Topics.Include) != 1 || f.Topics.Include[0] != ".*" {
		t.Fatalf("flow defaults: %+v", f)
	}
	east := cfg.BudgetsFor("east")
	if east.MaxPendingHints != 0 {
		t.Fatalf("explicit 0 replaced by default: %d", east.MaxPendingHints)
	}
	if east.HoldPeriod.Std() != time.Minute || east.RPOBudget.Std() != 30*time.Second || east.MaxKafkaLagRecords != 100000 {
		t.Fatalf("east budgets: %+v", east)
	}
	west := cfg.BudgetsFor("west")
	if west.RPOBudget.Std() != 5*time.Second || west.HoldPeriod.Std() != time.Minute || len(west.RequireLocalQuorum) != 1 {
		t.Fatalf("west budgets: %+v", west)
	}
}

func readFile(t *testing.T, f string) string {
	t.Helper()
	b, err := os.ReadFile(f)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestSecretsResolvedAndRedacted(t *testing.T) {
	const envSecret, fileSecret = "env-s3cret-value", "file-s3cret-value"
	t.Setenv("REGIONSYNC_TEST_KAFKA_PASSWORD", envSecret)
	pwFile := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pwFile, []byte(fileSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	src := strings.Replace(readFile(t, "testdata/good-minimal.yaml"), `      brokers: ["127.0.0.1:19092"]`, `      brokers: ["127.0.0.1:19092"]
      sasl:
        mechanism: SCRAM-SHA-256
        username: mirror
        password: ${REGIONSYNC_TEST_KAFKA_PASSWORD}
    cassandra:
      contact_points: ["127.0.0.1"]
      local_dc: dc-east
      username: rs
      password: file:`+pwFile, 1)
	cfg, err := Parse([]byte(src), "secrets.yaml")
	if err != nil {
		t.Fatal(err)
	}
	east, _ := cfg.Region("east")
	if east.Kafka.SASL.Password.Value() != envSecret || east.Cassandra.Password.Value() != fileSecret {
		t.Fatalf("secrets not resolved: %q %q", east.Kafka.SASL.Password.Value(), east.Cassandra.Password.Value())
	}
	var logBuf bytes.Buffer
	slog.New(slog.NewJSONHandler(&logBuf, nil)).Info("cfg", "sasl", east.Kafka.SASL, "pw", east.Cassandra.Password)
	js, _ := json.Marshal(cfg)
	outputs := map[string]string{
		"String()": cfg.String(),
		"%v":       fmt.Sprintf("%v", cfg),
		"%+v":      fmt.Sprintf("%+v", *cfg),
		"%#v":      fmt.Sprintf("%#v", east),
		"slog":     logBuf.String(),
		"json":     string(js),
	}
	for how, out := range outputs {
		if strings.Contains(out, envSecret) || strings.Contains(out, fileSecret) {
			t.Errorf("%s leaks a secret:\n%s", how, out)
		}
	}
	if !strings.Contains(cfg.String(), "[REDACTED]") {
		t.Errorf("String() does not show [REDACTED]:\n%s", cfg.String())
	}
}

func TestExampleConfig(t *testing.T) {
	t.Setenv("KAFKA_EAST_PASSWORD", "x")
	t.Setenv("KAFKA_WEST_PASSWORD", "x")
	t.Setenv("ETCD_PASSWORD", "x")
	t.Setenv("CASSANDRA_PASSWORD", "x")
	cfg, err := Load("../../deploy/examples/regionsync.yaml")
	if err != nil {
		t.Fatalf("example config has problems:\n%v", err)
	}
	if len(cfg.Regions) != 3 || len(cfg.Flows) == 0 {
		t.Fatalf("example: %d regions, %d flows", len(cfg.Regions), len(cfg.Flows))
	}
}

func TestDevConfigValid(t *testing.T) {
	if err := Dev().Validate(); err != nil {
		t.Fatalf("Dev() invalid:\n%v", err)
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load("testdata/does-not-exist.yaml")
	if err == nil || !strings.Contains(err.Error(), "testdata/does-not-exist.yaml") {
		t.Fatalf("err = %v", err)
	}
}

func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.yaml")
	for _, file := range files {
		b, _ := os.ReadFile(file)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse(data, "fuzz.yaml")
		if (cfg == nil) == (err == nil) {
			t.Fatalf("Parse returned cfg=%v err=%v: want exactly one", cfg != nil, err)
		}
	})
}

// TestAliasBombRejected: aliases that multiply the walk are reported, not
// walked (a 33 KB file once took over a minute).
func TestAliasBombRejected(t *testing.T) {
	var b strings.Builder
	b.WriteString("version: 1\nregions:\n  - &r\n    name: a\n    kafka:\n      brokers: [")
	for i := range 3000 {
		if i > 0 {
			b.WriteString(",")
		}
		b.WriteString("h:1")
	}
	b.WriteString("]\n")
	for range 3000 {
		b.WriteString("  - *r\n")
	}
	_, err := Parse([]byte(b.String()), "bomb.yaml")
	if err == nil || !strings.Contains(err.Error(), "excessive aliasing") {
		t.Fatalf("err = %.200v", err)
	}
}

// TestNullKeepsDefault: a key written without a value is absent, so its
// default applies.
func TestNullKeepsDefault(t *testing.T) {
	src := readFile(t, "testdata/good-minimal.yaml") + "readiness:\n  defaults:\n    hold_period:\n"
	cfg, err := Parse([]byte(src), "null.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Readiness.Defaults.HoldPeriod.Std(); got != 30*time.Second {
		t.Fatalf("hold_period = %v, want the 30s default", got)
	}
}

func TestIntervalsMustBePositive(t *testing.T) {
	src := readFile(t, "testdata/good-minimal.yaml") + "readiness:\n  regions:\n    west:\n      evaluate_interval: 0s\n      verdict_ttl: 0s\n"
	_, err := Parse([]byte(src), "zero.yaml")
	for _, want := range []string{"readiness.regions.west.evaluate_interval: must be positive", "readiness.regions.west.verdict_ttl: must be positive"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("err = %v, want %q", err, want)
		}
	}
}

func TestBudgetsForDoesNotAlias(t *testing.T) {
	src := readFile(t, "testdata/good-minimal.yaml") + "readiness:\n  defaults:\n    require_local_quorum: [payments]\n"
	cfg, err := Parse([]byte(src), "alias.yaml")
	if err != nil {
		t.Fatal(err)
	}
	b := cfg.BudgetsFor("east")
	b.RequireLocalQuorum[0] = "changed"
	if got := cfg.BudgetsFor("east").RequireLocalQuorum[0]; got != "payments" {
		t.Fatalf("a caller's change reached the config: %q", got)
	}
}
