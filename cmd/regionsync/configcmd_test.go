package main

import (
	"bytes"
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

// execute runs the CLI in-process and returns stdout, stderr and the exit code.
func execute(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	root := newRootCmd(&out, &errb)
	root.SetArgs(args)
	err := root.Execute()
	var ee exitError
	switch {
	case err == nil:
		return out.String(), errb.String(), 0
	case errors.As(err, &ee):
		return out.String(), errb.String(), ee.code
	default:
		return out.String(), errb.String() + err.Error(), 1
	}
}

func TestConfigValidateBadFiles(t *testing.T) {
	files, _ := filepath.Glob("../../internal/config/testdata/*.bad.yaml")
	if len(files) < 12 {
		t.Fatalf("only %d bad files", len(files))
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			_, stderr, code := execute(t, "config", "validate", f)
			if code == 0 {
				t.Fatal("exit 0 for a bad file")
			}
			if !strings.Contains(stderr, f+":") || !strings.Contains(stderr, "problem(s)") {
				t.Fatalf("stderr does not name the file and count problems:\n%s", stderr)
			}
		})
	}
}

func TestConfigValidateExample(t *testing.T) {
	for _, v := range []string{"KAFKA_EAST_PASSWORD", "KAFKA_WEST_PASSWORD", "ETCD_PASSWORD", "CASSANDRA_PASSWORD"} {
		t.Setenv(v, "secret-"+v)
	}
	stdout, stderr, code := execute(t, "config", "validate", "../../deploy/examples/regionsync.yaml")
	if code != 0 || !strings.Contains(stdout, "ok (3 regions, 2 flows)") {
		t.Fatalf("code %d stdout %q stderr %q", code, stdout, stderr)
	}
	if strings.Contains(stdout+stderr, "secret-") {
		t.Fatal("a secret was printed")
	}
}

func TestRunRejectsBadInput(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"run", "--config", "../../internal/config/testdata/good-minimal.yaml", "--region", "south"}, `--region "south": not in`},
		{[]string{"run", "--config", "../../internal/config/testdata/self-mirror.bad.yaml", "--region", "east"}, "self-mirroring flow"},
		{[]string{"run", "--region", "east"}, `required flag(s) "config" not set`},
		{[]string{"dev", "--log-format", "xml"}, `log format "xml"`},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			_, stderr, code := execute(t, tt.args...)
			if code == 0 || !strings.Contains(stderr, tt.want) {
				t.Fatalf("code %d, stderr %q, want %q", code, stderr, tt.want)
			}
		})
	}
}
