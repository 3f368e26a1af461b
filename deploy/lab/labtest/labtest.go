// Package labtest attaches tests to the real multi-region lab (deploy/lab):
// Apache Kafka ×2, Cassandra 5.0 in two DCs, a 3-member etcd cluster, NATS
// with JetStream and toxiproxy. Require brings the lab up once per test
// binary if it is not running. In CI (CI=true) a lab that cannot start fails
// the test; elsewhere LAB=0 skips lab tests.
package labtest

import (
	"bufio"
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// Lab is a running lab: its addresses and its fault controls.
type Lab struct {
	Root, Dir, State                   string
	KafkaEast, KafkaWest               []string
	CassandraEast, CassandraWest       string
	EtcdEndpoints                      []string
	NATSURL                            string
	ToxiproxyURL                       string
	ProxyKafkaWest, ProxyCassandraWest string
	ProxyEtcdWest, ProxyNATSWest       string
	JavaHome, Lib                      string
}

var (
	once   sync.Once
	lab    *Lab
	labErr error
)

// Require returns the running lab, starting it once per process if needed
// (`deploy/lab/lab.sh up`, a no-op that only reports state when the lab
// runs). A lab that cannot start fails the test with the reason and the tail
// of the failing component's log; outside CI, LAB=0 skips lab tests.
func Require(t testing.TB) *Lab {
	t.Helper()
	if os.Getenv("CI") != "true" && os.Getenv("LAB") == "0" {
		t.Skip("lab tests skipped (LAB=0); unset LAB to run them against deploy/lab (make lab-up)")
	}
	once.Do(func() { lab, labErr = up() })
	if labErr != nil {
		t.Fatalf("lab: %v", labErr)
	}
	return lab
}

func up() (*Lab, error) {
	root, err := repoRoot()
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(root, "deploy", "lab")
	slog.Info("labtest: deploy/lab/lab.sh up (no-op when the lab runs)")
	out, err := exec.Command(filepath.Join(dir, "lab.sh"), "up").CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("deploy/lab/lab.sh up: %v\n%s%s", err, tail(out, 40), downLogs(dir))
	}
	return load(root, dir)
}

// downLogs returns the tail of the log of every lab process that is not up
// after a failed start.
func downLogs(dir string) string {
	out, _ := exec.Command(filepath.Join(dir, "lab.sh"), "status").Output()
	var b strings.Builder
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) != 2 || f[1] != "down" {
			continue
		}
		log := filepath.Join(dir, ".state", "logs", f[0]+".log")
		data, err := os.ReadFile(log)
		if err != nil {
			continue
		}
		fmt.Fprintf(&b, "\n--- %s is down; tail of %s:\n%s", f[0], log, tail(data, 25))
	}
	return b.String()
}

func tail(b []byte, n int) string {
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func repoRoot() (string, error) {
	d, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d, nil
		}
		parent := filepath.Dir(d)
		if parent == d {
			return "", fmt.Errorf("no go.mod above the working directory")
		}
		d = parent
	}
}

// load reads .state/lab.env (export X=Y lines).
func load(root, dir string) (*Lab, error) {
	path := filepath.Join(dir, ".state", "lab.env")
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	env := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		k, v, ok := strings.Cut(strings.TrimPrefix(sc.Text(), "export "), "=")
		if ok {
			env[k] = v
		}
	}
	need := func(k string) string {
		if env[k] == "" && err == nil {
			err = fmt.Errorf("%s lacks %s", path, k)
		}
		return env[k]
	}
	l := &Lab{
		Root: root, Dir: dir, State: need("LAB_STATE"),
		KafkaEast: []string{need("KAFKA_EAST")}, KafkaWest: []string{need("KAFKA_WEST")},
		CassandraEast: need("CASSANDRA_EAST"), CassandraWest: need("CASSANDRA_WEST"),
		EtcdEndpoints: strings.Split(need("ETCD_ENDPOINTS"), ","), NATSURL: need("NATS_URL"),
		ToxiproxyURL: need("TOXIPROXY_URL"), ProxyKafkaWest: need("PROXY_KAFKA_WEST"),
		ProxyCassandraWest: need("PROXY_CASSANDRA_WEST"), ProxyEtcdWest: need("PROXY_ETCD_WEST"), ProxyNATSWest: need("PROXY_NATS_WEST"),
		JavaHome: need("LAB_JAVA_HOME"), Lib: need("LAB_LIB"),
	}
	return l, err
}

// Run runs a lab script (relative to deploy/lab) and returns its output; a
// failure fails the test with the output.
func (l *Lab) Run(t testing.TB, script string, args ...string) string {
	t.Helper()
	cmd := exec.Command(filepath.Join(l.Dir, script), args...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", script, strings.Join(args, " "), err, tail(out, 30))
	}
	return string(out)
}

// Kill sends SIGKILL to proc (a lab process name such as etcd-west).
func (l *Lab) Kill(t testing.TB, proc string) { l.Run(t, "lab.sh", "kill", proc) }

// Pause sends SIGSTOP to proc.
func (l *Lab) Pause(t testing.TB, proc string) { l.Run(t, "lab.sh", "pause", proc) }

// Resume sends SIGCONT to proc.
func (l *Lab) Resume(t testing.TB, proc string) { l.Run(t, "lab.sh", "resume", proc) }

// Start (re)starts proc with its usual arguments and data.
func (l *Lab) Start(t testing.TB, proc string) { l.Run(t, "lab.sh", "start", proc) }

// Nodetool runs nodetool against the node of dc ("east" or "west").
func (l *Lab) Nodetool(t testing.TB, dc string, args ...string) string {
	t.Helper()
	return l.Run(t, "cassandra/nodetool.sh", append([]string{dc}, args...)...)
}
