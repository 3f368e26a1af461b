package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// syncBuffer is a bytes.Buffer safe for one writer and one reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

var (
	metricsURL    = regexp.MustCompile(`metrics:\s+(http://\S+/metrics)`)
	httpListening = regexp.MustCompile(`"msg":"http server listening","addr":"([^"]+)"`)
)

func waitOutput(t *testing.T, out *syncBuffer, re *regexp.Regexp, timeout time.Duration) []string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if m := re.FindStringSubmatch(out.String()); m != nil {
			return m
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("no %q in output after %s:\n%s", re, timeout, out.String())
	return nil
}

func getBody(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// waitMetric polls /metrics until it contains every substring.
func waitMetric(t *testing.T, url string, timeout time.Duration, want ...string) string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var body string
	for time.Now().Before(deadline) {
		body = getBody(t, url)
		ok := true
		for _, w := range want {
			ok = ok && strings.Contains(body, w)
		}
		if ok {
			return body
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("metrics lack %q after %s", want, timeout)
	return body
}

// TestDevBinary builds the real binary, runs `regionsync dev`, and checks it
// reaches "running" within 30 s, serves its own metrics, and exits 0 within
// 5 s of SIGINT.
func TestDevBinary(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "regionsync")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	var stdout, stderr syncBuffer
	cmd := exec.Command(bin, "dev", "--listen", "127.0.0.1:0", "--status-interval", "1s")
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			<-exited
		}
	}()
	start := time.Now()
	m := waitOutput(t, &stdout, metricsURL, 30*time.Second)
	t.Logf("running after %s", time.Since(start).Round(time.Millisecond))
	waitMetric(t, m[1], 20*time.Second,
		`regionsync_dependency_up{dependency="etcd",region="west"} 1`,
		`regionsync_dependency_up{dependency="kafka",region="east"} 1`,
		`regionsync_dependency_up{dependency="nats",region="east"} 1`,
		`regionsync_dev_produced_records_total{region="east",topic="orders"}`,
		`regionsync_build_info{`)
	if health := getBody(t, strings.TrimSuffix(m[1], "/metrics")+"/healthz"); !strings.Contains(health, "ok") {
		t.Fatalf("/healthz = %q", health)
	}
	waitOutput(t, &stdout, regexp.MustCompile(`east: .*kafka=up`), 10*time.Second)
	// Each region's topology node registered and won its election.
	waitOutput(t, &stdout, regexp.MustCompile(`east: .*leader=dev-east-\d+ workers=1`), 15*time.Second)
	waitOutput(t, &stdout, regexp.MustCompile(`west: .*leader=dev-west-\d+ workers=1`), 15*time.Second)
	// The east-to-west flow copies the synthetic traffic.
	waitMetric(t, m[1], 20*time.Second, `regionsync_mirror_records_total{flow="east-to-west",partition="0",topic="orders"}`,
		`regionsync_mirror_heartbeat_age_seconds{flow="east-to-west"}`, `regionsync_mirror_checkpoint_age_seconds{flow="east-to-west"}`)
	waitOutput(t, &stdout, regexp.MustCompile(`west: .*mirror\[east-to-west\] copied=[1-9]`), 10*time.Second)
	// The replication observer measures the lag into west from the clusters.
	waitOutput(t, &stdout, regexp.MustCompile(`west: .*lag east→west=[0-9.]+s .*cassandra=not-configured`), 15*time.Second)
	waitMetric(t, m[1], 10*time.Second, `regionsync_replication_kafka_lag_seconds{flow="east-to-west",source="east",target="west"}`,
		`regionsync_replication_rpo_seconds{source="east",store="kafka",target="west"}`)
	// regionsync status measures the same from the clusters, given the
	// effective config dev wrote.
	cfgPath := waitOutput(t, &stdout, regexp.MustCompile(`config:\s+(\S+\.yaml)`), time.Second)[1]
	out, err := exec.Command(bin, "status", "--config", cfgPath).CombinedOutput()
	if err != nil || !regexp.MustCompile(`(?m)^kafka east → west: (PASS|WARN) \(RPO [0-9.]+s`).Match(out) ||
		!regexp.MustCompile(`(?m)^\s+east-to-west\s+\d+\s+[0-9.]+s`).Match(out) {
		t.Fatalf("regionsync status --config %s: err %v, want a passing east → west table:\n%s", cfgPath, err, out)
	}
	t.Logf("regionsync status:\n%s", out)
	// Readiness: west turns READY after dev's 5 s hold period, and the gate
	// answers from the KV bucket (gate check --config) and over HTTP.
	waitOutput(t, &stdout, regexp.MustCompile(`west: .*verdict=READY`), 30*time.Second)
	out, err = exec.Command(bin, "gate", "check", "--config", cfgPath, "--from", "east", "--to", "west").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "east → west: ALLOWED (target READY)") {
		t.Fatalf("gate check --config: err %v\n%s", err, out)
	}
	t.Logf("regionsync gate check:\n%s", out)
	base := strings.TrimSuffix(m[1], "/metrics")
	if body := getBody(t, base+"/v1/regions/west"); !strings.Contains(body, `"state": "READY"`) {
		t.Fatalf("/v1/regions/west = %s", body)
	}
	out, err = exec.Command(bin, "gate", "check", "--url", base, "--from", "west", "--to", "nowhere").CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 3 || !strings.Contains(string(out), "no verdict on nowhere") {
		t.Fatalf("gate check to an unknown region: err %v, want exit 3 with a reason\n%s", err, out)
	}
	// The west leader audits the flow into west and reports clean windows.
	waitMetric(t, m[1], 30*time.Second, `regionsync_reconcile_kafka_audit_windows_total{flow="east-to-west",result="clean"}`,
		`regionsync_reconcile_kafka_audit_unrepaired_divergence{flow="east-to-west"} 0`)
	out, err = exec.Command(bin, "reconcile", "status", "--config", cfgPath).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "kafka audit of flow east-to-west (east → west): CLEAN") {
		t.Fatalf("reconcile status: err %v\n%s", err, out)
	}
	t.Logf("regionsync reconcile status:\n%s", out)
	http.DefaultClient.CloseIdleConnections()

	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	sig := time.Now()
	select {
	case err := <-exited:
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("exit code %d after SIGINT; stderr:\n%s", ee.ExitCode(), stderr.String())
		} else if err != nil {
			t.Fatal(err)
		}
		t.Logf("exited 0 %s after SIGINT", time.Since(sig).Round(time.Millisecond))
	case <-time.After(5 * time.Second):
		t.Fatalf("still running 5s after SIGINT; stderr:\n%s", stderr.String())
	}
}

// TestDevInProcess runs dev in this process and stops it; TestMain's leak
// check then proves shutdown stopped every goroutine.
func TestDevInProcess(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var stdout syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- runDev(ctx, &stdout, io.Discard, &globalFlags{logFormat: "text", logLevel: "error"},
			&devOptions{listen: "127.0.0.1:0", rate: 100, statusInterval: time.Second, dataDir: t.TempDir()})
	}()
	m := waitOutput(t, &stdout, metricsURL, 30*time.Second)
	waitMetric(t, m[1], 20*time.Second, `regionsync_dependency_up{dependency="etcd",region="east"} 1`)
	http.DefaultClient.CloseIdleConnections()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("runDev did not return 10s after cancel")
	}
}
