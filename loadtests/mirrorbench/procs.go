package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// lab is the running lab as `lab.sh env` describes it.
type lab struct {
	root        string
	east, west  []string
	etcd        []string
	nats, state string
}

// labUp brings the lab up (a no-op when it runs) and reads its addresses.
func labUp(ctx context.Context) (*lab, error) {
	root, err := repoRoot()
	if err != nil {
		return nil, err
	}
	script := filepath.Join(root, "deploy/lab/lab.sh")
	up := exec.CommandContext(ctx, script, "up")
	up.Stdout, up.Stderr = os.Stderr, os.Stderr
	if err := up.Run(); err != nil {
		return nil, fmt.Errorf("deploy/lab/lab.sh up: %w", err)
	}
	out, err := exec.CommandContext(ctx, script, "env").Output()
	if err != nil {
		return nil, fmt.Errorf("deploy/lab/lab.sh env: %w", err)
	}
	env := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if k, v, ok := strings.Cut(strings.TrimPrefix(sc.Text(), "export "), "="); ok {
			env[k] = strings.Trim(v, `"'`)
		}
	}
	l := &lab{root: root, east: []string{env["KAFKA_EAST"]}, west: []string{env["KAFKA_WEST"]},
		etcd: strings.Split(env["ETCD_ENDPOINTS"], ","), nats: env["NATS_URL"], state: env["LAB_STATE"]}
	if l.east[0] == "" || l.west[0] == "" || l.nats == "" || l.state == "" {
		return nil, fmt.Errorf("deploy/lab/lab.sh env lacks KAFKA_EAST, KAFKA_WEST, NATS_URL or LAB_STATE:\n%s", out)
	}
	return l, nil
}

// signal runs `lab.sh pause|resume PROC` for each process.
func (l *lab) signal(ctx context.Context, verb string, procs ...string) error {
	for _, p := range procs {
		cmd := exec.CommandContext(ctx, filepath.Join(l.root, "deploy/lab/lab.sh"), verb, p)
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("lab.sh %s %s: %w", verb, p, err)
		}
	}
	return nil
}

func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "deploy/lab/lab.sh")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("run mirrorbench inside the regionsync repository (no deploy/lab/lab.sh above %s)", dir)
		}
		dir = parent
	}
}

// mirrorProc is a running mirror process.
type mirrorProc interface {
	pid() int
	stop()
}

type regionsyncProc struct {
	cmd    *exec.Cmd
	exited chan error
	logf   *os.File
}

func (p *regionsyncProc) pid() int { return p.cmd.Process.Pid }

func (p *regionsyncProc) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(15 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
	_ = p.logf.Close()
}

// benchFlow names regionsync's flow.
const benchFlow = "mirrorbench"

// startRegionsync builds the binary and runs `regionsync run --region west`
// with one flow east→west (identity naming) for topics.
func startRegionsync(ctx context.Context, l *lab, bin string, topics []string) (mirrorProc, error) {
	dir, err := os.MkdirTemp("", "mirrorbench-")
	if err != nil {
		return nil, err
	}
	if bin == "" {
		bin = filepath.Join(dir, "regionsync")
		build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/regionsync")
		build.Dir = l.root
		if out, err := build.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("go build: %v\n%s", err, out)
		}
	}
	quoted := make([]string, len(topics))
	for i, t := range topics {
		quoted[i] = strconv.Quote(t)
	}
	etcd := make([]string, len(l.etcd))
	for i, e := range l.etcd {
		etcd[i] = strconv.Quote(e)
	}
	cfg := fmt.Sprintf(`version: 1
regions:
  - name: east
    kafka: {brokers: [%q]}
    etcd: {endpoints: [%s]}
    nats: {url: %q}
  - name: west
    kafka: {brokers: [%q]}
    etcd: {endpoints: [%s]}
    nats: {url: %q}
flows:
  - name: %s
    source: east
    target: west
    naming: identity
    topics: {include: [%s]}
# The mirror alone is compared with MirrorMaker 2; the audit's own cost is
# auditbench's figure.
reconcile:
  kafka_audit: {disabled: true}
server:
  listen: 127.0.0.1:19464
  # A heap bound, as MirrorMaker 2 has one (-Xmx512m). Measured (2026-12-01):
  # 100 → 5.4–5.6 CPU-s per million records, peak RSS 132 MiB; 110 →
  # 5.0–5.2, 141–142 MiB; 120 → 4.9–5.0, 150–151 MiB.
  memory_limit_mib: 110
  log_format: json
`, l.east[0], strings.Join(etcd, ", "), l.nats, l.west[0], strings.Join(etcd, ", "), l.nats, benchFlow, strings.Join(quoted, ", "))
	cfgPath := filepath.Join(dir, "regionsync.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		return nil, err
	}
	logf, err := os.Create(filepath.Join(dir, "regionsync.log"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "run", "--config", cfgPath, "--region", "west", "--pprof")
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	log.Printf("regionsync started (pid %d), log %s, metrics and /debug/pprof/ on 127.0.0.1:19464", cmd.Process.Pid, logf.Name())
	p := &regionsyncProc{cmd: cmd, exited: make(chan error, 1), logf: logf}
	go func() { p.exited <- cmd.Wait() }()
	return p, nil
}

type mm2Proc struct {
	l    *lab
	pidN int
}

func (p *mm2Proc) pid() int { return p.pidN }

func (p *mm2Proc) stop() {
	cmd := exec.Command(filepath.Join(p.l.root, "deploy/lab/kafka/mm2.sh"), "stop")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		log.Printf("mm2.sh stop: %v", err)
	}
}

// startMM2 starts MirrorMaker 2 (dedicated mode, one task, LZ4 on the
// target producer) for topics; group offset sync is pointed at no group.
func startMM2(ctx context.Context, l *lab, topics []string) (mirrorProc, error) {
	script := filepath.Join(l.root, "deploy/lab/kafka/mm2.sh")
	stop := exec.CommandContext(ctx, script, "stop") // a leftover from a lab test
	stop.Stdout, stop.Stderr = os.Stderr, os.Stderr
	_ = stop.Run()
	cmd := exec.CommandContext(ctx, script, "start")
	cmd.Env = append(os.Environ(),
		"MM2_TOPICS="+strings.Join(topics, "|"),
		"MM2_GROUPS=mirrorbench-no-such-group",
		"MM2_TASKS=1",
		"MM2_EXTRA=west.producer.compression.type = lz4")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("mm2.sh start: %w", err)
	}
	b, err := os.ReadFile(filepath.Join(l.state, "pids/mm2.pid"))
	if err != nil {
		return nil, err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return nil, fmt.Errorf("mm2.pid: %w", err)
	}
	comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	if strings.TrimSpace(string(comm)) != "java" {
		return nil, fmt.Errorf("mm2.pid %d is %q, not the java process", pid, strings.TrimSpace(string(comm)))
	}
	return &mm2Proc{l: l, pidN: pid}, nil
}
