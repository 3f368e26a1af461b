package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Load reads and parses the config file at path; see Parse.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return Parse(data, path)
}

// Parse parses data strictly, applies defaults, resolves secrets and
// validates. source names the file in messages. Any problem, of any kind,
// gives an Errors listing all of them; the returned Config is then nil.
func Parse(data []byte, source string) (*Config, error) {
	col := &collector{source: source, lines: map[string]int{}}
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			col.addf("", "the file is empty (want a mapping with version: 1 and regions)")
			return nil, col.err()
		}
		col.probs = append(col.probs, syntaxProblem(source, err))
		return nil, col.err()
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		col.probs = append(col.probs, Problem{Source: source, Line: extra.Line, Message: "more than one YAML document; want exactly one"})
		return nil, col.err()
	}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	w := &walker{col: col, budget: maxVisits(len(data))}
	w.walk(root, reflect.TypeFor[Config](), "")
	if len(col.probs) > 0 {
		return nil, col.err()
	}
	cfg := &Config{}
	if err := root.Decode(cfg); err != nil {
		col.addf("", "%v", err) // the walker should have caught it; never lose it
		return nil, col.err()
	}
	cfg.source, cfg.lines = source, col.lines
	cfg.applyDefaults()
	resolveSecrets(reflect.ValueOf(cfg).Elem(), "", col)
	cfg.validate(col)
	if err := col.err(); err != nil {
		return nil, err
	}
	return cfg, nil
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

func syntaxProblem(source string, err error) Problem {
	msg := err.Error()
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		return Problem{Source: source, Line: line, Message: "YAML syntax: " + m[2]}
	}
	return Problem{Source: source, Message: "YAML syntax: " + strings.TrimPrefix(msg, "yaml: ")}
}

// scalarChecker is implemented by types written as one scalar that can check
// its text (Duration).
type scalarChecker interface{ checkScalar(string) error }

var (
	scalarCheckerType = reflect.TypeFor[scalarChecker]()
	secretType        = reflect.TypeFor[Secret]()
)

// walker checks a YAML node tree against a Go type: unknown and duplicate
// keys, and the kind of every value, recording the line of every path.
type walker struct {
	col    *collector
	budget int  // nodes left to visit; aliases make the walk longer than the text
	over   bool // budget exhausted and reported
}

// maxVisits bounds the walk: a config without aliases visits fewer nodes than
// it has bytes, so aliases may at most multiply the work by a small factor.
func maxVisits(size int) int { return 10*size + 10000 }

func (w *walker) walk(n *yaml.Node, t reflect.Type, path string) {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if w.budget--; w.budget < 0 {
		if !w.over {
			w.over = true
			w.col.addf(path, "document contains excessive aliasing")
		}
		return
	}
	w.col.lines[path] = n.Line
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		delete(w.col.lines, path) // written as null: treated as absent, so the default applies
		return
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if reflect.PointerTo(t).Implements(scalarCheckerType) {
		if n.Kind != yaml.ScalarNode {
			w.col.addf(path, "expected a %s, got %s", typeName(t), describe(n))
			return
		}
		if err := reflect.New(t).Interface().(scalarChecker).checkScalar(n.Value); err != nil {
			w.col.addf(path, "%v", err)
		}
		return
	}
	if t == secretType {
		t = reflect.TypeFor[string]()
	}
	switch t.Kind() {
	case reflect.Struct:
		w.walkStruct(n, t, path)
	case reflect.Map:
		w.walkMap(n, t, path)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			w.col.addf(path, "expected a list of %ss, got %s", typeName(t.Elem()), describe(n))
			return
		}
		for i, item := range n.Content {
			w.walk(item, t.Elem(), fmt.Sprintf("%s[%d]", path, i))
		}
	default:
		w.walkScalar(n, t, path)
	}
}

func (w *walker) walkStruct(n *yaml.Node, t reflect.Type, path string) {
	if n.Kind != yaml.MappingNode {
		w.col.addf(path, "expected a mapping, got %s", describe(n))
		return
	}
	fields := map[string]reflect.Type{}
	var names []string
	for f := range t.Fields() {
		if tag, _, _ := strings.Cut(f.Tag.Get("yaml"), ","); tag != "" && tag != "-" {
			fields[tag] = f.Type
			names = append(names, tag)
		}
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		kp := joinPath(path, k.Value)
		ft, ok := fields[k.Value]
		switch {
		case !ok:
			w.col.lines[kp] = k.Line
			w.col.addf(kp, "unknown key %q (known keys here: %s)", k.Value, strings.Join(names, ", "))
		case seen[k.Value]:
			w.col.lines[kp] = k.Line
			w.col.addf(kp, "key %q given twice", k.Value)
		default:
			seen[k.Value] = true
			w.walk(v, ft, kp)
		}
	}
}

func (w *walker) walkMap(n *yaml.Node, t reflect.Type, path string) {
	if n.Kind != yaml.MappingNode {
		w.col.addf(path, "expected a mapping, got %s", describe(n))
		return
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		kp := joinPath(path, k.Value)
		if seen[k.Value] {
			w.col.lines[kp] = k.Line
			w.col.addf(kp, "key %q given twice", k.Value)
			continue
		}
		seen[k.Value] = true
		w.walk(v, t.Elem(), kp)
	}
}

func (w *walker) walkScalar(n *yaml.Node, t reflect.Type, path string) {
	if n.Kind != yaml.ScalarNode {
		w.col.addf(path, "expected %s, got %s", article(typeName(t)), describe(n))
		return
	}
	switch t.Kind() {
	case reflect.String:
		// Any scalar reads as its text (port: 9042 is the string "9042").
	case reflect.Int, reflect.Int64, reflect.Int32:
		if _, err := strconv.ParseInt(n.Value, 0, 64); err != nil || n.Tag != "!!int" {
			w.col.addf(path, "expected an integer, got %s", describe(n))
		}
	case reflect.Bool:
		if n.Tag != "!!bool" {
			w.col.addf(path, "expected true or false, got %s", describe(n))
		}
	default:
		w.col.addf(path, "unsupported field type %s", t)
	}
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func typeName(t reflect.Type) string {
	switch {
	case t == reflect.TypeFor[Duration]():
		return "duration string"
	case t.Kind() == reflect.String || t == secretType:
		return "string"
	case t.Kind() == reflect.Struct || t.Kind() == reflect.Map:
		return "mapping"
	case t.Kind() == reflect.Int || t.Kind() == reflect.Int64:
		return "integer"
	case t.Kind() == reflect.Bool:
		return "boolean"
	}
	return t.String()
}

func article(s string) string {
	if strings.IndexAny(s[:1], "aeiou") == 0 {
		return "an " + s
	}
	return "a " + s
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	switch n.Tag {
	case "!!int", "!!float":
		return "the number " + n.Value
	case "!!bool":
		return "the boolean " + n.Value
	case "!!null":
		return "null"
	}
	return fmt.Sprintf("the string %q", n.Value)
}
