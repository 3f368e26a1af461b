package topology

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"
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
// Schema and against the Go decoder: good examples pass both and round-trip
// through the Go type unchanged; bad ones (*.bad.json) fail both.
//
// The validator here implements the draft 2020-12 keywords the two schemas
// use (type, const, enum, pattern, required, properties,
// additionalProperties, propertyNames, items, minimum, format date-time as
// an assertion); it fails on any other keyword so the schemas cannot outgrow
// it unnoticed.
func TestSchemas(t *testing.T) {
	for _, kind := range []string{"region", "worker"} {
		schema := loadJSON(t, filepath.Join("..", "schemas", kind+".schema.json"))
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
				schemaErr := validate(schema, doc, "$")
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

var knownKeywords = map[string]bool{
	"$schema": true, "$id": true, "title": true, "description": true,
	"type": true, "const": true, "enum": true, "pattern": true, "required": true,
	"properties": true, "additionalProperties": true, "propertyNames": true,
	"items": true, "minimum": true, "format": true,
}

// validate checks doc against schema (the subset described on TestSchemas).
func validate(schema, doc any, path string) error {
	s, ok := schema.(map[string]any)
	if !ok {
		if b, ok := schema.(bool); ok {
			if !b {
				return fmt.Errorf("%s: not allowed", path)
			}
			return nil
		}
		return fmt.Errorf("%s: schema is neither object nor boolean", path)
	}
	var errs []string
	fail := func(format string, args ...any) { errs = append(errs, path+": "+fmt.Sprintf(format, args...)) }
	for k := range s {
		if !knownKeywords[k] {
			return fmt.Errorf("%s: the test validator does not implement keyword %q", path, k)
		}
	}
	if ty, ok := s["type"].(string); ok && !hasType(doc, ty) {
		fail("want type %s, got %T", ty, doc)
		return errors.New(strings.Join(errs, "; "))
	}
	if c, ok := s["const"]; ok && !reflect.DeepEqual(c, doc) {
		fail("want const %v, got %v", c, doc)
	}
	if e, ok := s["enum"].([]any); ok {
		found := false
		for _, x := range e {
			found = found || reflect.DeepEqual(x, doc)
		}
		if !found {
			fail("%v not in enum %v", doc, e)
		}
	}
	if p, ok := s["pattern"].(string); ok {
		if str, ok := doc.(string); ok && !regexp.MustCompile(p).MatchString(str) {
			fail("%q does not match %s", str, p)
		}
	}
	if min, ok := s["minimum"].(float64); ok {
		if n, ok := doc.(float64); ok && n < min {
			fail("%v < minimum %v", n, min)
		}
	}
	if f, ok := s["format"].(string); ok {
		str, _ := doc.(string)
		if f != "date-time" {
			return fmt.Errorf("%s: format %q not implemented", path, f)
		}
		if _, err := time.Parse(time.RFC3339Nano, str); err != nil {
			fail("not an RFC 3339 date-time: %q", str)
		}
	}
	if obj, ok := doc.(map[string]any); ok {
		if req, ok := s["required"].([]any); ok {
			for _, r := range req {
				if _, ok := obj[r.(string)]; !ok {
					fail("missing required %q", r)
				}
			}
		}
		props, _ := s["properties"].(map[string]any)
		keys := make([]string, 0, len(obj))
		for k := range obj {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if pn, ok := s["propertyNames"]; ok {
				if err := validate(pn, k, path+".<name "+k+">"); err != nil {
					errs = append(errs, err.Error())
				}
			}
			if ps, ok := props[k]; ok {
				if err := validate(ps, obj[k], path+"."+k); err != nil {
					errs = append(errs, err.Error())
				}
			} else if ap, ok := s["additionalProperties"]; ok {
				if err := validate(ap, obj[k], path+"."+k); err != nil {
					errs = append(errs, err.Error())
				}
			}
		}
	}
	if arr, ok := doc.([]any); ok {
		if it, ok := s["items"]; ok {
			for i, x := range arr {
				if err := validate(it, x, fmt.Sprintf("%s[%d]", path, i)); err != nil {
					errs = append(errs, err.Error())
				}
			}
		}
	}
	if len(errs) > 0 {
		return errors.New(strings.Join(errs, "; "))
	}
	return nil
}

func hasType(doc any, ty string) bool {
	switch ty {
	case "object":
		_, ok := doc.(map[string]any)
		return ok
	case "array":
		_, ok := doc.([]any)
		return ok
	case "string":
		_, ok := doc.(string)
		return ok
	case "boolean":
		_, ok := doc.(bool)
		return ok
	case "integer":
		n, ok := doc.(float64)
		return ok && n == float64(int64(n))
	case "number":
		_, ok := doc.(float64)
		return ok
	}
	return false
}
