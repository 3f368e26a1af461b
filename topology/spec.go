package topology

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// SchemaVersion is the only schema_version of RegionSpec and WorkerInfo this
// build reads and writes (schemas/region.schema.json, schemas/worker.schema.json).
const SchemaVersion = 1

// Sentinel errors callers branch on.
var (
	// ErrUnknownSchemaVersion: a stored value carries a schema_version this
	// build does not read.
	ErrUnknownSchemaVersion = errors.New("unknown schema_version")
	// ErrMalformedValue: a stored value is not valid JSON or not a valid
	// record of its schema.
	ErrMalformedValue = errors.New("malformed value")
)

// Role of a region, as in the config's regions[].role.
type Role string

// Roles.
const (
	RolePrimary   Role = "primary"
	RoleSecondary Role = "secondary"
	RoleWitness   Role = "witness" // no Kafka; etcd quorum and observation only
)

var (
	regionNameRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
	workerIDRE   = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$`)
	labelKeyRE   = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9._/-]{0,62}[A-Za-z0-9])?$`)
	// The same patterns are in schemas/region.schema.json.
	kafkaAddrRE     = regexp.MustCompile(`^[^\s/]+:[0-9]{1,5}$`)
	cassandraAddrRE = regexp.MustCompile(`^[^\s/]+$`)
	etcdURLRE       = regexp.MustCompile(`^https?://[^\s/?#]+\S*$`)
	natsURLRE       = regexp.MustCompile(`^(nats|tls)://[^\s/?#]+\S*$`)
)

// RegionSpec is one region of the registry, stored as JSON at
// <prefix>regions/<name>. Schema: schemas/region.schema.json.
type RegionSpec struct {
	// SchemaVersion of this record; SchemaVersion (1) for this build.
	SchemaVersion int `json:"schema_version" yaml:"schema_version"`
	// Name, lowercase letters, digits and '-' (as in the config); equals the
	// last element of the key.
	Name string `json:"name" yaml:"name"`
	// Role: primary, secondary or witness.
	Role Role `json:"role" yaml:"role"`
	// Endpoints other regions and routers use to reach this region's stores.
	Endpoints Endpoints `json:"endpoints,omitzero" yaml:"endpoints,omitempty"`
	// Labels, free-form (e.g. provider, zone).
	Labels map[string]string `json:"labels,omitempty" yaml:"labels,omitempty"`
	// Description for operators.
	Description string `json:"description,omitempty" yaml:"description,omitempty"`
}

// Endpoints of a region's stores. All optional.
type Endpoints struct {
	// Kafka bootstrap brokers, host:port.
	Kafka []string `json:"kafka,omitempty" yaml:"kafka,omitempty"`
	// Cassandra contact points, host or host:port, in the region's DC.
	Cassandra []string `json:"cassandra,omitempty" yaml:"cassandra,omitempty"`
	// Etcd client URLs (http:// or https://) of the region's etcd member(s).
	Etcd []string `json:"etcd,omitempty" yaml:"etcd,omitempty"`
	// NATS URLs (nats:// or tls://).
	NATS []string `json:"nats,omitempty" yaml:"nats,omitempty"`
}

// Validate returns every problem of s, each prefixed with its JSON path, or
// nil.
func (s RegionSpec) Validate() error {
	var p problems
	if s.SchemaVersion != SchemaVersion {
		p.addf("schema_version", "must be %d, got %d", SchemaVersion, s.SchemaVersion)
	}
	if !regionNameRE.MatchString(s.Name) {
		p.addf("name", "must be lowercase letters, digits and '-' (1-63, no leading or trailing '-'), got %q", s.Name)
	}
	switch s.Role {
	case RolePrimary, RoleSecondary, RoleWitness:
	default:
		p.addf("role", "must be primary, secondary or witness, got %q", s.Role)
	}
	checkAll(&p, "endpoints.kafka", s.Endpoints.Kafka, kafkaAddrRE, "host:port")
	checkAll(&p, "endpoints.cassandra", s.Endpoints.Cassandra, cassandraAddrRE, "host or host:port")
	checkAll(&p, "endpoints.etcd", s.Endpoints.Etcd, etcdURLRE, "an http:// or https:// URL")
	checkAll(&p, "endpoints.nats", s.Endpoints.NATS, natsURLRE, "a nats:// or tls:// URL")
	for _, k := range sortedKeys(s.Labels) {
		if !labelKeyRE.MatchString(k) {
			p.addf("labels", "key %q must be letters, digits, '.', '_', '-' or '/' (1-64)", k)
		}
	}
	return p.err()
}

func checkAll(p *problems, path string, vals []string, re *regexp.Regexp, what string) {
	for i, v := range vals {
		if !re.MatchString(v) {
			p.addf(fmt.Sprintf("%s[%d]", path, i), "must be %s, got %q", what, v)
		}
	}
}

// WorkerInfo is a worker's presence record, stored as JSON at
// <prefix>workers/<region>/<id> with the worker's session lease, so it
// disappears when the worker's lease ends. Schema: schemas/worker.schema.json.
type WorkerInfo struct {
	SchemaVersion int    `json:"schema_version"`
	ID            string `json:"id"`
	Region        string `json:"region"`
	Hostname      string `json:"hostname,omitempty"`
	PID           int    `json:"pid,omitempty"`
	// Version of regionsync the worker runs.
	Version string `json:"version,omitempty"`
	// StartedAt is when this registration (session) began.
	StartedAt time.Time `json:"started_at"`
}

// Validate returns every problem of w, each prefixed with its JSON path.
func (w WorkerInfo) Validate() error {
	var p problems
	if w.SchemaVersion != SchemaVersion {
		p.addf("schema_version", "must be %d, got %d", SchemaVersion, w.SchemaVersion)
	}
	if !workerIDRE.MatchString(w.ID) {
		p.addf("id", "must be letters, digits, '.', '_', ':' or '-' (1-128, starting with a letter or digit), got %q", w.ID)
	}
	if !regionNameRE.MatchString(w.Region) {
		p.addf("region", "must be a region name, got %q", w.Region)
	}
	if w.PID < 0 {
		p.addf("pid", "must not be negative, got %d", w.PID)
	}
	if w.StartedAt.IsZero() {
		p.addf("started_at", "must be set (and not 0001-01-01T00:00:00Z)")
	}
	return p.err()
}

// MarshalRegionSpec validates s and returns the JSON stored in etcd.
func MarshalRegionSpec(s RegionSpec) ([]byte, error) {
	if err := s.Validate(); err != nil {
		return nil, fmt.Errorf("region %q: %w", s.Name, err)
	}
	return json.Marshal(s)
}

// DecodeRegionSpec decodes the value stored for region name. A value that is
// not JSON, has unknown fields, fails validation or names another region
// gives an error wrapping ErrMalformedValue; a schema_version other than
// SchemaVersion gives one wrapping ErrUnknownSchemaVersion.
func DecodeRegionSpec(name string, data []byte) (RegionSpec, error) {
	var s RegionSpec
	if err := decodeVersioned(data, &s); err != nil {
		return RegionSpec{}, err
	}
	if err := s.Validate(); err != nil {
		return RegionSpec{}, fmt.Errorf("%w: %w", ErrMalformedValue, err)
	}
	if s.Name != name {
		return RegionSpec{}, fmt.Errorf("%w: name %q does not match the key's region %q", ErrMalformedValue, s.Name, name)
	}
	return s, nil
}

// DecodeWorkerInfo decodes the presence value of worker id in region, with
// the errors of DecodeRegionSpec.
func DecodeWorkerInfo(region, id string, data []byte) (WorkerInfo, error) {
	var w WorkerInfo
	if err := decodeVersioned(data, &w); err != nil {
		return WorkerInfo{}, err
	}
	if err := w.Validate(); err != nil {
		return WorkerInfo{}, fmt.Errorf("%w: %w", ErrMalformedValue, err)
	}
	if w.Region != region || w.ID != id {
		return WorkerInfo{}, fmt.Errorf("%w: region %q / id %q do not match the key's %q / %q", ErrMalformedValue, w.Region, w.ID, region, id)
	}
	return w, nil
}

// decodeVersioned checks schema_version before decoding strictly into v, so
// a record of a newer schema is reported as such rather than as unknown
// fields.
func decodeVersioned(data []byte, v any) error {
	var head struct {
		SchemaVersion *int `json:"schema_version"`
	}
	if err := json.Unmarshal(data, &head); err != nil {
		return fmt.Errorf("%w: invalid JSON: %v", ErrMalformedValue, err)
	}
	if head.SchemaVersion == nil {
		return fmt.Errorf("%w: schema_version: missing", ErrMalformedValue)
	}
	if *head.SchemaVersion != SchemaVersion {
		return fmt.Errorf("%w %d (this build reads %d)", ErrUnknownSchemaVersion, *head.SchemaVersion, SchemaVersion)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: %v", ErrMalformedValue, err)
	}
	return nil
}

// SpecFile is the file `regionsync topology apply FILE` reads (YAML, or
// JSON which is YAML too):
//
//	version: 1
//	regions:
//	  - name: east
//	    role: primary
//	    endpoints: {kafka: ["kafka-east:9092"]}
//
// Unknown keys are errors. A region's schema_version may be left out; it
// defaults to SchemaVersion.
type SpecFile struct {
	Version int          `yaml:"version"`
	Regions []RegionSpec `yaml:"regions"`
}

// LoadSpecFile reads and validates a spec file. The error names the file and
// lists every problem with its path (regions[1].role: ...).
func LoadSpecFile(path string) ([]RegionSpec, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("topology: %w", err)
	}
	specs, err := ParseSpecs(data)
	if err != nil {
		return nil, fmt.Errorf("topology: %s: %w", path, err)
	}
	return specs, nil
}

// ParseSpecs parses and validates the contents of a spec file (see
// SpecFile). It returns every problem, not only the first.
func ParseSpecs(data []byte) ([]RegionSpec, error) {
	var f SpecFile
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("parse: %w", err)
	}
	var p problems
	if f.Version != 1 {
		p.addf("version", "must be 1, got %d", f.Version)
	}
	if len(f.Regions) == 0 {
		p.addf("regions", "must not be empty")
	}
	seen := map[string]int{}
	for i := range f.Regions {
		s := &f.Regions[i]
		if s.SchemaVersion == 0 {
			s.SchemaVersion = SchemaVersion
		}
		var ve *ValidationError
		if errors.As(s.Validate(), &ve) {
			for _, line := range ve.Problems {
				p.add(fmt.Sprintf("regions[%d].%s", i, line))
			}
		}
		if j, ok := seen[s.Name]; ok && s.Name != "" {
			p.addf(fmt.Sprintf("regions[%d].name", i), "duplicate of regions[%d] (%q)", j, s.Name)
		}
		seen[s.Name] = i
	}
	if err := p.err(); err != nil {
		return nil, err
	}
	return f.Regions, nil
}

// ValidationError lists every problem of a record or file, each as
// "path: message".
type ValidationError struct {
	Problems []string
}

// Error joins the problems with newlines.
func (e *ValidationError) Error() string { return strings.Join(e.Problems, "\n") }

// problems collects "path: message" lines.
type problems struct{ lines []string }

func (p *problems) add(line string) { p.lines = append(p.lines, line) }

func (p *problems) addf(path, format string, args ...any) {
	p.lines = append(p.lines, path+": "+fmt.Sprintf(format, args...))
}

func (p *problems) err() error {
	if len(p.lines) == 0 {
		return nil
	}
	return &ValidationError{Problems: p.lines}
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
