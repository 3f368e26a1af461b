package config

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Duration is a time.Duration written in YAML as a Go duration string
// ("500ms", "30s", "2h").
type Duration time.Duration

// Std returns d as a time.Duration.
func (d Duration) Std() time.Duration { return time.Duration(d) }

func (d Duration) String() string { return time.Duration(d).String() }

// checkScalar reports whether s is a valid duration; the walker calls it so
// the error carries the path.
func (*Duration) checkScalar(s string) error {
	if _, err := time.ParseDuration(s); err != nil {
		return fmt.Errorf("invalid duration %q (use e.g. 500ms, 30s, 5m, 2h)", s)
	}
	return nil
}

// UnmarshalYAML parses a duration string.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("invalid duration %q", n.Value)
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML writes the duration string.
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

const redacted = "[REDACTED]"

// Secret is a credential. In YAML it is a literal, "${ENV_VAR}" (the
// variable must be set) or "file:/path" (read at load, trailing newline
// trimmed). Every way of printing it — String, fmt, YAML, JSON, slog — shows
// "[REDACTED]"; only Value returns the secret.
type Secret struct {
	ref   string // as written
	value string // resolved
}

// Value returns the resolved secret.
func (s Secret) Value() string { return s.value }

// IsSet reports whether a secret was given.
func (s Secret) IsSet() bool { return s.ref != "" }

// String redacts.
func (s Secret) String() string {
	if s.ref == "" {
		return ""
	}
	return redacted
}

// GoString redacts (for %#v).
func (s Secret) GoString() string { return `config.Secret("` + s.String() + `")` }

// Format redacts for every fmt verb, %+v included.
func (s Secret) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(s.String())) }

// LogValue redacts in slog output.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// MarshalYAML redacts.
func (s Secret) MarshalYAML() (any, error) { return s.String(), nil }

// MarshalJSON redacts.
func (s Secret) MarshalJSON() ([]byte, error) { return json.Marshal(s.String()) }

// UnmarshalYAML keeps the reference; Parse resolves it.
func (s *Secret) UnmarshalYAML(n *yaml.Node) error {
	s.ref = n.Value
	return nil
}

// NewSecret returns a literal secret (for programmatic configs and tests).
func NewSecret(v string) Secret { return Secret{ref: v, value: v} }

// resolve reads the secret from the environment or a file.
func (s *Secret) resolve() error {
	ref := s.ref
	switch {
	case strings.HasPrefix(ref, "${") && strings.HasSuffix(ref, "}"):
		name := ref[2 : len(ref)-1]
		v, ok := os.LookupEnv(name)
		if !ok {
			return fmt.Errorf("environment variable %s is not set", name)
		}
		s.value = v
	case strings.HasPrefix(ref, "file:"):
		path := strings.TrimPrefix(ref, "file:")
		b, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("cannot read secret file %q: %v", path, unwrapPathErr(err))
		}
		s.value = strings.TrimRight(string(b), "\r\n")
	default:
		s.value = ref
	}
	return nil
}

func unwrapPathErr(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err
	}
	return err
}
