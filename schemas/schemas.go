package schemas

import (
	"bytes"
	"embed"
	"fmt"
	"io/fs"
	"strings"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
)

//go:embed *.schema.json
var files embed.FS

// Base is the $id prefix of every schema.
const Base = "https://github.com/regionsync/regionsync/schemas/"

var (
	once     sync.Once
	compiled map[string]*jsonschema.Schema
	loadErr  error
)

// Kinds lists the schema names (file name without .schema.json), sorted.
func Kinds() []string {
	entries, _ := fs.Glob(files, "*.schema.json")
	var out []string
	for _, e := range entries {
		out = append(out, strings.TrimSuffix(e, ".schema.json"))
	}
	return out
}

func load() {
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	compiled = map[string]*jsonschema.Schema{}
	for _, k := range Kinds() {
		raw, err := files.ReadFile(k + ".schema.json")
		if err != nil {
			loadErr = err
			return
		}
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
		if err != nil {
			loadErr = fmt.Errorf("schemas: %s.schema.json: %w", k, err)
			return
		}
		if err := c.AddResource(Base+k+".schema.json", doc); err != nil {
			loadErr = fmt.Errorf("schemas: %s.schema.json: %w", k, err)
			return
		}
	}
	for _, k := range Kinds() {
		s, err := c.Compile(Base + k + ".schema.json")
		if err != nil {
			loadErr = fmt.Errorf("schemas: compile %s: %w", k, err)
			return
		}
		compiled[k] = s
	}
}

// Validate checks the JSON document doc against the schema kind (e.g.
// "verdict"); the error names the failing location (JSON pointer) and why.
func Validate(kind string, doc []byte) error {
	once.Do(load)
	if loadErr != nil {
		return loadErr
	}
	s, ok := compiled[kind]
	if !ok {
		return fmt.Errorf("schemas: no schema %q (have %s)", kind, strings.Join(Kinds(), ", "))
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(doc))
	if err != nil {
		return fmt.Errorf("schemas: %s: not JSON: %w", kind, err)
	}
	if err := s.Validate(v); err != nil {
		return fmt.Errorf("schemas: %s: %s", kind, describe(err))
	}
	return nil
}

// describe lists every failing location of a validation error (the
// leaves of its cause tree) as "at /pointer: why".
func describe(err error) string {
	ve, ok := err.(*jsonschema.ValidationError)
	if !ok {
		return err.Error()
	}
	var parts []string
	seen := map[string]bool{}
	var walk func(e *jsonschema.ValidationError)
	walk = func(e *jsonschema.ValidationError) {
		if len(e.Causes) > 0 {
			for _, c := range e.Causes {
				walk(c)
			}
			return
		}
		msg := "at /" + strings.Join(e.InstanceLocation, "/") + ": " + e.ErrorKind.LocalizedString(printer)
		if !seen[msg] {
			seen[msg] = true
			parts = append(parts, msg)
		}
	}
	walk(ve)
	return strings.Join(parts, "; ")
}

var printer = message.NewPrinter(language.English)
