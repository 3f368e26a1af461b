//go:build loadtest

// Package auditbench measures the continuous Kafka mirror audit on the lab:
// whether `regionsync reconcile run --follow` keeps up with a mirror
// carrying 5,000 records/s of 1 KiB, and the CPU it uses (target: ≤ 25 % of
// one core). Run it with `make loadtest` or:
//
//	go test -tags loadtest -run TestAuditBench -v -timeout 30m ./loadtests/auditbench
package auditbench

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/regionsync/regionsync/deploy/lab/labtest"
	"github.com/regionsync/regionsync/loadtests/procstat"
	"github.com/regionsync/regionsync/mirror/mirrortest"
)

var (
	rate     = flag.Int("rate", 5000, "records/s")
	duration = flag.Duration("duration", 90*time.Second, "traffic time")
)

func TestAuditBench(t *testing.T) {
	l := labtest.Require(t)
	bin := filepath.Join(t.TempDir(), "regionsync")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/regionsync/regionsync/cmd/regionsync").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	id := rand.Uint32()
	topic, flow := fmt.Sprintf("auditbench_%d", id), fmt.Sprintf("auditbench-%d", id)
	mirrortest.CreateTopic(t, l.KafkaEast, topic, 12)
	env := mirrortest.Env{East: l.KafkaEast, West: l.KafkaWest, Log: slog.New(slog.DiscardHandler)}
	mirrortest.StartStoppableFlow(t, env, flow, "east", "west", l.KafkaEast, l.KafkaWest, "prefix", topic)
	cfg := l.WriteConfig(t, false, fmt.Sprintf("flows:\n  - name: %s\n    source: east\n    target: west\n    topics: {include: [%q]}\n", flow, topic))
	// Wait for the remote topic, so the auditor follows it from the start.
	time.Sleep(3 * time.Second)
	audit := exec.Command(bin, "reconcile", "run", "--config", cfg, "--flow", flow, "--follow", "--window", "10s", "--settle", "20s")
	stdout, _ := audit.StdoutPipe()
	audit.Stderr = os.Stderr
	if err := audit.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = audit.Process.Kill(); _ = audit.Wait() }()
	var (
		mu              sync.Mutex
		judged, divergt int64
	)
	clean := regexp.MustCompile(`: clean \((\d+) records\)`)
	div := regexp.MustCompile(`: source (\d+), target (\d+) records`)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			mu.Lock()
			if m := clean.FindStringSubmatch(sc.Text()); m != nil {
				n, _ := strconv.ParseInt(m[1], 10, 64)
				judged += n
			} else if m := div.FindStringSubmatch(sc.Text()); m != nil {
				n, _ := strconv.ParseInt(m[1], 10, 64)
				judged += n
				divergt++
				t.Logf("divergent window: %s", sc.Text())
			}
			mu.Unlock()
		}
	}()
	time.Sleep(2 * time.Second)
	produced := produceAt(t, l.KafkaEast, topic, *rate, *duration, audit.Process.Pid)
	t.Log("traffic done; waiting for the last windows to be judged")
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		mu.Lock()
		j := judged
		mu.Unlock()
		if j >= produced.n {
			break
		}
		time.Sleep(time.Second)
	}
	mu.Lock()
	defer mu.Unlock()
	rss, _ := procstat.PeakRSS(audit.Process.Pid)
	cpuPct := 100 * produced.auditCPU / produced.steady.Seconds()
	fmt.Printf("\n### Continuous Kafka audit beside a mirror at %d records/s (1 KiB, 12 partitions)\n\n", *rate)
	fmt.Println("| produced | judged | divergent windows | audit CPU-seconds | over | of one core | peak RSS |")
	fmt.Println("|---|---|---|---|---|---|---|")
	fmt.Printf("| %d | %d | %d | %.2f s | %s | %.1f %% | %.0f MiB |\n", produced.n, judged, divergt, produced.auditCPU, produced.steady.Round(time.Second), cpuPct, rss)
	if judged < produced.n {
		t.Errorf("the audit judged %d of %d records within 60 s of the end", judged, produced.n)
	}
}

type traffic struct {
	n        int64
	steady   time.Duration
	auditCPU float64
}

// produceAt writes 1 KiB records at rate for d, measuring the auditor's CPU
// (process pid) from 20 s in (warm-up) to the end of the traffic.
func produceAt(t *testing.T, brokers []string, topic string, rate int, d time.Duration, pid int) traffic {
	c := mirrortest.Config()
	c.Producer.Return.Successes = true
	c.Producer.Compression = sarama.CompressionLZ4
	p, err := sarama.NewAsyncProducer(brokers, c)
	if err != nil {
		t.Fatal(err)
	}
	var acked int64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for range p.Successes() {
			acked++
		}
	}()
	go func() {
		for err := range p.Errors() {
			t.Errorf("produce: %v", err)
		}
	}()
	val := make([]byte, 1024)
	for i := range val {
		val[i] = byte('a' + i%26)
	}
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	perTick := rate / 100
	var sent int64
	var tr traffic
	start := time.Now()
	var meter *procstat.CPUMeter
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case <-tick.C:
		}
		if meter == nil && time.Since(start) > 20*time.Second {
			if meter, err = procstat.StartCPU(pid); err != nil {
				t.Fatal(err)
			}
		}
		for range perTick {
			p.Input() <- &sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder(strconv.FormatInt(sent%1000, 10)), Value: sarama.ByteEncoder(val)}
			sent++
		}
	}
	if meter != nil {
		if tr.auditCPU, tr.steady, err = meter.Since(); err != nil {
			t.Fatal(err)
		}
	}
	p.AsyncClose()
	wg.Wait()
	tr.n = acked
	return tr
}
