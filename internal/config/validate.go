package config

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"reflect"
	"regexp"
	"strconv"
	"strings"
)

// Validate checks every value and returns all problems as Errors (nil when
// there are none). Parse already calls it; call it again after changing a
// Config in code.
func (c *Config) Validate() error {
	col := &collector{source: c.source, lines: c.lines}
	c.validate(col)
	return col.err()
}

var (
	regionName = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
	topicName  = regexp.MustCompile(`^[a-zA-Z0-9._-]{1,249}$`)
)

func (c *Config) validate(col *collector) {
	if c.Version != 1 {
		if c.Version == 0 && !c.set("version") {
			col.addf("version", "required (this build reads version: 1)")
		} else {
			col.addf("version", "unsupported config version %d (this build reads 1)", c.Version)
		}
	}
	if c.EtcdPrefix != "" && !strings.HasPrefix(c.EtcdPrefix, "/") {
		col.addf("etcd_prefix", "must start with '/', got %q", c.EtcdPrefix)
	}
	if len(c.Regions) == 0 {
		col.addf("regions", "must list at least one region")
	}
	names := map[string]int{}
	for i, r := range c.Regions {
		p := fmt.Sprintf("regions[%d]", i)
		if j, dup := names[r.Name]; dup && r.Name != "" {
			col.addf(p+".name", "duplicate region %q (also regions[%d])", r.Name, j)
		}
		names[r.Name] = i
		r.validate(col, p)
	}
	flows := map[string]int{}
	for i, f := range c.Flows {
		p := fmt.Sprintf("flows[%d]", i)
		if j, dup := flows[f.Name]; dup && f.Name != "" {
			col.addf(p+".name", "duplicate flow %q (also flows[%d])", f.Name, j)
		}
		flows[f.Name] = i
		f.validate(col, p, names)
	}
	validateBudgets(col, "readiness.defaults", reflect.ValueOf(c.Readiness.Defaults))
	for name, o := range c.Readiness.Regions {
		p := "readiness.regions." + name
		if _, ok := names[name]; !ok {
			col.addf(p, "override for unknown region %q (regions: %s)", name, strings.Join(namesInOrder(names), ", "))
		}
		validateBudgets(col, p, reflect.ValueOf(o))
	}
	c.Readiness.validateKeys(col)
	for name, d := range map[string]Duration{"interval": c.Reconcile.KafkaAudit.Interval, "jitter": c.Reconcile.KafkaAudit.Jitter,
		"window": c.Reconcile.KafkaAudit.Window, "settle": c.Reconcile.KafkaAudit.Settle} {
		if d < 0 || (d == 0 && name != "jitter") {
			col.addf("reconcile.kafka_audit."+name, "must be positive, got %s", d.Std())
		}
	}
	jobs := map[string]int{}
	for i, j := range c.Reconcile.Cassandra {
		j.validate(col, fmt.Sprintf("reconcile.cassandra[%d]", i), c, jobs, i)
	}
	c.Server.validate(col)
}

func (j CassandraJob) validate(col *collector, p string, c *Config, seen map[string]int, i int) {
	switch {
	case !regionName.MatchString(j.Name):
		col.addf(p+".name", "must match %s, got %q", regionName, j.Name)
	case seen[j.Name] > 0:
		col.addf(p+".name", "duplicate job %q (also reconcile.cassandra[%d])", j.Name, seen[j.Name]-1)
	}
	seen[j.Name] = i + 1
	if j.Keyspace == "" {
		col.addf(p+".keyspace", "required")
	}
	if len(j.Regions) != 2 || j.Regions[0] == j.Regions[1] {
		col.addf(p+".regions", "must name two different regions, got %v", j.Regions)
	}
	for k, r := range j.Regions {
		reg, ok := c.Region(r)
		switch {
		case !ok:
			col.addf(fmt.Sprintf("%s.regions[%d]", p, k), "unknown region %q", r)
		case len(reg.Cassandra.ContactPoints) == 0:
			col.addf(fmt.Sprintf("%s.regions[%d]", p, k), "region %q has no cassandra configured", r)
		}
	}
	if j.Interval <= 0 {
		col.addf(p+".interval", "must be positive, got %s", j.Interval.Std())
	}
	if j.Jitter < 0 {
		col.addf(p+".jitter", "must not be negative, got %s", j.Jitter.Std())
	}
	if j.Splits < 1 || j.Splits > 1<<20 {
		col.addf(p+".splits", "must be 1..%d, got %d", 1<<20, j.Splits)
	}
	if u := strings.ToUpper(j.Consistency); u != "LOCAL_ONE" && u != "LOCAL_QUORUM" {
		col.addf(p+".consistency", "LOCAL_ONE or LOCAL_QUORUM (ALL and EACH_QUORUM repair what they read, hiding divergence), got %q", j.Consistency)
	}
	if j.RateLimit < -1 || j.RateLimit == 0 {
		col.addf(p+".rate_limit", "rows per second per DC, or -1 for no limit; got %d", j.RateLimit)
	}
}

func (r Region) validate(col *collector, p string) {
	switch {
	case r.Name == "":
		col.addf(p+".name", "required")
	case !regionName.MatchString(r.Name):
		col.addf(p+".name", "%q: use lowercase letters, digits and '-' (at most 63)", r.Name)
	}
	if !oneOf(r.Role, "primary", "secondary", "witness") {
		col.addf(p+".role", "unknown role %q (want primary, secondary or witness)", r.Role)
	}
	if len(r.Kafka.Brokers) == 0 && r.Role != "witness" {
		col.addf(p+".kafka.brokers", "must not be empty")
	}
	for i, b := range r.Kafka.Brokers {
		if err := checkHostPort(b, false); err != nil {
			col.addf(fmt.Sprintf("%s.kafka.brokers[%d]", p, i), "%v", err)
		}
	}
	switch s := r.Kafka.SASL; {
	case s.Mechanism == "":
	case !oneOf(s.Mechanism, "SCRAM-SHA-256", "SCRAM-SHA-512", "PLAIN"):
		col.addf(p+".kafka.sasl.mechanism", "unknown mechanism %q (want SCRAM-SHA-256, SCRAM-SHA-512 or PLAIN)", s.Mechanism)
	case s.Username == "":
		col.addf(p+".kafka.sasl.username", "required with sasl.mechanism %s", s.Mechanism)
	}
	validateTLS(col, p+".kafka.tls", r.Kafka.TLS)
	if cs := r.Cassandra; len(cs.ContactPoints) > 0 {
		if cs.LocalDC == "" {
			col.addf(p+".cassandra.local_dc", "required when contact_points are given")
		}
		for i, h := range cs.ContactPoints {
			if err := checkHostPort(h, true); err != nil {
				col.addf(fmt.Sprintf("%s.cassandra.contact_points[%d]", p, i), "%v", err)
			}
		}
	}
	validateTLS(col, p+".cassandra.tls", r.Cassandra.TLS)
	if len(r.Etcd.Endpoints) == 0 {
		col.addf(p+".etcd.endpoints", "must not be empty")
	}
	for i, e := range r.Etcd.Endpoints {
		if err := checkURL(e, "http", "https"); err != nil {
			col.addf(fmt.Sprintf("%s.etcd.endpoints[%d]", p, i), "%v", err)
		}
	}
	validateTLS(col, p+".etcd.tls", r.Etcd.TLS)
	if r.NATS.URL == "" {
		col.addf(p+".nats.url", "required")
	}
	for _, u := range strings.Split(r.NATS.URL, ",") {
		if r.NATS.URL == "" {
			break
		}
		if err := checkURL(strings.TrimSpace(u), "nats", "tls", "ws", "wss"); err != nil {
			col.addf(p+".nats.url", "%v", err)
		}
	}
	checkFile(col, p+".nats.creds_file", r.NATS.CredsFile)
	checkFile(col, p+".nats.nkey_file", r.NATS.NkeyFile)
	validateTLS(col, p+".nats.tls", r.NATS.TLS)
	for _, d := range []struct {
		path string
		v    Duration
	}{{".etcd.dial_timeout", r.Etcd.DialTimeout}, {".cassandra.timeout", r.Cassandra.Timeout}} {
		if d.v < 0 {
			col.addf(p+d.path, "must not be negative, got %s", d.v)
		}
	}
}

func (f Flow) validate(col *collector, p string, regions map[string]int) {
	if f.Name == "" {
		col.addf(p+".name", "required")
	}
	known := strings.Join(namesInOrder(regions), ", ")
	for _, e := range []struct{ key, v string }{{"source", f.Source}, {"target", f.Target}} {
		if e.v == "" {
			col.addf(p+"."+e.key, "required")
		} else if _, ok := regions[e.v]; !ok {
			col.addf(p+"."+e.key, "unknown region %q (regions: %s)", e.v, known)
		}
	}
	if f.Source != "" && f.Source == f.Target {
		col.addf(p+".target", "self-mirroring flow: source and target are both %q", f.Source)
	}
	for key, list := range map[string][]string{"include": f.Topics.Include, "exclude": f.Topics.Exclude} {
		for i, re := range list {
			if _, err := regexp.Compile(re); err != nil {
				col.addf(fmt.Sprintf("%s.topics.%s[%d]", p, key, i), "invalid regular expression %q: %v", re, strings.TrimPrefix(err.Error(), "error parsing regexp: "))
			}
		}
	}
	if !oneOf(f.Naming, "prefix", "identity") {
		col.addf(p+".naming", "unknown naming %q (want prefix or identity)", f.Naming)
	}
	if f.DeadLetterTopic != "" && !topicName.MatchString(f.DeadLetterTopic) {
		col.addf(p+".dead_letter_topic", "%q is not a valid Kafka topic name", f.DeadLetterTopic)
	}
	for key, d := range map[string]Duration{"heartbeat_interval": f.HeartbeatInterval, "checkpoint_interval": f.CheckpointInterval} {
		if d < 0 {
			col.addf(p+"."+key, "must not be negative, got %s", d)
		}
	}
}

// validateBudgets reports negative values in a Budgets or BudgetOverride,
// and zero intervals (evaluate_interval, verdict_ttl) that would never tick
// or always be expired.
func validateBudgets(col *collector, p string, v reflect.Value) {
	for i := range v.NumField() {
		f := v.Field(i)
		if f.Kind() == reflect.Pointer {
			if f.IsNil() {
				continue
			}
			f = f.Elem()
		}
		name := yamlName(v.Type().Field(i))
		if (name == "evaluate_interval" || name == "verdict_ttl") && f.Int() <= 0 {
			col.addf(p+"."+name, "must be positive, got %s", Duration(f.Int()))
			continue
		}
		if f.Kind() == reflect.Int64 && f.Int() < 0 {
			path := p + "." + yamlName(v.Type().Field(i))
			if f.Type() == reflect.TypeFor[Duration]() {
				col.addf(path, "must not be negative, got %s", Duration(f.Int()))
			} else {
				col.addf(path, "must not be negative, got %d", f.Int())
			}
		}
	}
}

func (s Server) validate(col *collector) {
	if err := checkHostPort(s.Listen, false); err != nil {
		col.addf("server.listen", "%v", err)
	}
	if !oneOf(s.LogFormat, "text", "json") {
		col.addf("server.log_format", "unknown format %q (want text or json)", s.LogFormat)
	}
	if !oneOf(s.LogLevel, "debug", "info", "warn", "error") {
		col.addf("server.log_level", "unknown level %q (want debug, info, warn or error)", s.LogLevel)
	}
	if s.MemoryLimitMiB != 0 && s.MemoryLimitMiB < 32 {
		col.addf("server.memory_limit_mib", "must be 0 (no limit) or at least 32, got %d", s.MemoryLimitMiB)
	}
}

func validateTLS(col *collector, p string, t TLS) {
	if !t.Enabled {
		return
	}
	checkFile(col, p+".ca_file", t.CAFile)
	checkFile(col, p+".cert_file", t.CertFile)
	checkFile(col, p+".key_file", t.KeyFile)
	if (t.CertFile == "") != (t.KeyFile == "") {
		col.addf(p, "cert_file and key_file go together")
	}
}

// checkFile reports a named file that cannot be read.
func checkFile(col *collector, p, name string) {
	if name == "" {
		return
	}
	f, err := os.Open(name)
	if err != nil {
		col.addf(p, "cannot read %q: %v", name, unwrapPathErr(err))
		return
	}
	_ = f.Close()
}

func checkHostPort(s string, portOptional bool) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		if portOptional && s != "" && !strings.Contains(s, ":") {
			return nil
		}
		return fmt.Errorf("%q is not host:port", s)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("%q: port %q is not a number from 0 to 65535", s, port)
	}
	_ = host // empty host means all interfaces, valid for listen addresses
	return nil
}

func checkURL(s string, schemes ...string) error {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("invalid URL %q: %v", s, unwrapURLErr(err))
	}
	if !oneOf(u.Scheme, schemes...) || u.Host == "" {
		return fmt.Errorf("invalid URL %q: want %s://host:port", s, strings.Join(schemes, ":// or "))
	}
	return nil
}

func unwrapURLErr(err error) error {
	if ue, ok := err.(*url.Error); ok {
		return ue.Err
	}
	return err
}

func oneOf(s string, set ...string) bool {
	for _, x := range set {
		if s == x {
			return true
		}
	}
	return false
}

func namesInOrder(m map[string]int) []string {
	out := make([]string, len(m))
	for k, i := range m {
		if i < len(out) {
			out[i] = k
		}
	}
	return out
}

// resolveSecrets resolves every Secret in v, reporting failures with paths.
func resolveSecrets(v reflect.Value, path string, col *collector) {
	switch v.Kind() {
	case reflect.Struct:
		if v.Type() == secretType {
			s := v.Addr().Interface().(*Secret)
			if s.ref != "" {
				if err := s.resolve(); err != nil {
					col.addf(path, "%v", err)
				}
			}
			return
		}
		for i := range v.NumField() {
			if f := v.Type().Field(i); f.IsExported() {
				resolveSecrets(v.Field(i), joinPath(path, yamlName(f)), col)
			}
		}
	case reflect.Slice:
		for i := range v.Len() {
			resolveSecrets(v.Index(i), fmt.Sprintf("%s[%d]", path, i), col)
		}
	}
}

func (r Readiness) validateKeys(col *collector) {
	k := r.SigningKey
	switch {
	case k.KeyID == "" && k.PrivateKeyFile != "":
		col.addf("readiness.signing_key.key_id", "required with private_key_file")
	case k.KeyID != "" && k.PrivateKeyFile == "":
		col.addf("readiness.signing_key.private_key_file", "required with key_id")
	case k.PrivateKeyFile != "":
		if _, err := os.Stat(k.PrivateKeyFile); err != nil {
			col.addf("readiness.signing_key.private_key_file", "%v", err)
		}
	}
	for id, f := range r.TrustedKeys {
		if _, err := os.Stat(f); err != nil {
			col.addf("readiness.trusted_keys."+id, "%v", err)
		}
	}
	if k.KeyID != "" && len(r.TrustedKeys) > 0 && r.TrustedKeys[k.KeyID] == "" {
		col.addf("readiness.trusted_keys", "does not list the signing key %q: this deployment's own verdicts would not count", k.KeyID)
	}
	if r.Gate.MinFlipInterval < 0 {
		col.addf("readiness.gate.min_flip_interval", "must not be negative")
	}
	if r.Gate.MaxOverride < 0 {
		col.addf("readiness.gate.max_override", "must not be negative")
	}
}
