package topology

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/regionsync/regionsync/schemas"
)

// TestParseSpecs: good spec files parse; bad ones fail with every problem
// named by path.
func TestParseSpecs(t *testing.T) {
	good := map[string]int{"specs-lab.yaml": 3, "specs-json.yaml": 2}
	for file, n := range good {
		t.Run(file, func(t *testing.T) {
			specs, err := LoadSpecFile(filepath.Join("testdata", file))
			if err != nil {
				t.Fatal(err)
			}
			if len(specs) != n {
				t.Fatalf("got %d regions, want %d", len(specs), n)
			}
			for _, s := range specs {
				if s.SchemaVersion != SchemaVersion {
					t.Errorf("%s: schema_version %d, want the default %d", s.Name, s.SchemaVersion, SchemaVersion)
				}
			}
		})
	}
	bad := map[string][]string{
		"specs-duplicate.bad.yaml":   {`regions[1].name: duplicate of regions[0] ("east")`},
		"specs-version.bad.yaml":     {"version: must be 1, got 2"},
		"specs-unknown-key.bad.yaml": {"field weight not found"},
		"specs-empty.bad.yaml":       {"regions: must not be empty"},
		"specs-syntax.bad.yaml":      {"parse: yaml: line"},
		"specs-many.bad.yaml": {
			`regions[0].name: must be lowercase letters`,
			`regions[0].role: must be primary, secondary or witness, got "boss"`,
			`regions[0].endpoints.kafka[0]: must be host:port, got "kafka-east"`,
			`regions[0].endpoints.nats[0]: must be a nats:// or tls:// URL, got "http://nats:4222"`,
			`regions[1].schema_version: must be 1, got 3`,
		},
	}
	files, _ := filepath.Glob("testdata/specs-*.bad.yaml")
	if len(files) != len(bad) {
		t.Errorf("%d bad spec files, %d expectations", len(files), len(bad))
	}
	for file, wants := range bad {
		t.Run(file, func(t *testing.T) {
			path := filepath.Join("testdata", file)
			_, err := LoadSpecFile(path)
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), path) {
				t.Errorf("error does not name the file: %v", err)
			}
			for _, w := range wants {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
		})
	}
}

// TestDecodeRejects: malformed stored values give errors that name the
// problem and wrap the right sentinel; nothing panics.
func TestDecodeRejects(t *testing.T) {
	cases := []struct {
		name, value string
		want        error
		detail      string
	}{
		{"not json", `{"schema_version":1,`, ErrMalformedValue, "invalid JSON"},
		{"not an object", `[1,2]`, ErrMalformedValue, "invalid JSON"},
		{"empty", ``, ErrMalformedValue, "invalid JSON"},
		{"no version", `{"name":"east","role":"primary"}`, ErrMalformedValue, "schema_version: missing"},
		{"version 2", `{"schema_version":2,"name":"east","role":"primary","future":true}`, ErrUnknownSchemaVersion, "unknown schema_version 2 (this build reads 1)"},
		{"version string", `{"schema_version":"1","name":"east","role":"primary"}`, ErrMalformedValue, "invalid JSON"},
		{"unknown field", `{"schema_version":1,"name":"east","role":"primary","x":1}`, ErrMalformedValue, `unknown field "x"`},
		{"other name", `{"schema_version":1,"name":"west","role":"primary"}`, ErrMalformedValue, `does not match the key's region "east"`},
		{"bad role", `{"schema_version":1,"name":"east","role":"king"}`, ErrMalformedValue, `role: must be primary`},
		{"trailing", `{"schema_version":1,"name":"east","role":"primary"} {}`, ErrMalformedValue, "invalid JSON"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := DecodeRegionSpec("east", []byte(c.value))
			if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.detail) {
				t.Fatalf("got %v; want %v with %q", err, c.want, c.detail)
			}
		})
	}
	if _, err := DecodeWorkerInfo("east", "w2", []byte(`{"schema_version":1,"id":"w1","region":"east","started_at":"2026-01-01T00:00:00Z"}`)); !errors.Is(err, ErrMalformedValue) {
		t.Errorf("worker id not matching its key: %v", err)
	}
}

// TestSchemas validates every example in schemas/testdata against its JSON
// Schema (santhosh-tekuri/jsonschema, draft 2020-12, formats asserted) and
// against the Go decoder: good examples pass both and round-trip through the
// Go type unchanged; bad ones (*.bad.json) fail both.
func TestSchemas(t *testing.T) {
	for _, kind := range []string{"region", "worker"} {
		files, err := filepath.Glob(filepath.Join("..", "schemas", "testdata", kind+"-*.json"))
		if err != nil || len(files) < 4 {
			t.Fatalf("%s examples: %v %v", kind, files, err)
		}
		for _, f := range files {
			t.Run(filepath.Base(f), func(t *testing.T) {
				raw, err := os.ReadFile(f)
				if err != nil {
					t.Fatal(err)
				}
				doc := loadJSON(t, f)
				schemaErr := schemas.Validate(kind, raw)
				goErr := decodeExample(kind, doc, raw)
				if strings.HasSuffix(f, ".bad.json") {
					if schemaErr == nil {
						t.Errorf("the schema accepts a bad example")
					}
					if goErr == nil {
						t.Errorf("the Go decoder accepts a bad example")
					}
					t.Logf("schema: %v; go: %v", schemaErr, goErr)
					return
				}
				if schemaErr != nil {
					t.Errorf("schema rejects a good example: %v", schemaErr)
				}
				if goErr != nil {
					t.Errorf("Go rejects a good example: %v", goErr)
				}
			})
		}
	}
}

// decodeExample decodes with the Go type and checks the round trip.
func decodeExample(kind string, doc any, raw []byte) error {
	m, _ := doc.(map[string]any)
	var v any
	var err error
	switch kind {
	case "region":
		name, _ := m["name"].(string)
		v, err = DecodeRegionSpec(name, raw)
	case "worker":
		region, _ := m["region"].(string)
		id, _ := m["id"].(string)
		v, err = DecodeWorkerInfo(region, id, raw)
	}
	if err != nil {
		return err
	}
	out, err := json.Marshal(v)
	if err != nil {
		return err
	}
	var back any
	if err := json.Unmarshal(out, &back); err != nil {
		return err
	}
	if !reflect.DeepEqual(back, doc) {
		return fmt.Errorf("round trip changed the record:\n in: %s\nout: %s", bytes.TrimSpace(raw), out)
	}
	return nil
}

func loadJSON(t *testing.T, path string) any {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return v
}
