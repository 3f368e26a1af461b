//go:build lab

package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os/exec"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/regionsync/regionsync/deploy/lab/labtest"
	"github.com/regionsync/regionsync/mirror/mirrortest"
)

const (
	killRecords    = 1_000_000
	killPartitions = 12
	killCount      = 5
)

// TestLabMirrorKill9 is issue #4's crash acceptance on real Kafka: the
// `regionsync run` binary mirrors 1,000,000 varied records (null keys,
// tombstones, empty values, headers) over 12 partitions east→west while it
// is killed with SIGKILL 5 times at random points and restarted each time.
// An independent checker then reads both clusters (read_committed) and
// compares every partition in order: nothing may be missing, reordered or
// altered; at-least-once may duplicate (reported), exactly-once may not.
func TestLabMirrorKill9(t *testing.T) {
	l := labtest.Require(t)
	bin := filepath.Join(t.TempDir(), "regionsync")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	for _, eos := range []bool{false, true} {
		name := "AtLeastOnce"
		if eos {
			name = "ExactlyOnce"
		}
		t.Run(name, func(t *testing.T) { kill9Run(t, l, bin, eos) })
	}
}

// worker is one incarnation of `regionsync run` after another.
type worker struct {
	t         *testing.T
	bin, cfg  string
	cmd       *exec.Cmd
	exited    chan error
	logs      *syncBuffer
	started   int
	lastStart time.Time
}

func (w *worker) start() {
	w.t.Helper()
	w.logs = &syncBuffer{}
	w.cmd = exec.Command(w.bin, "run", "--config", w.cfg, "--region", "west", "--listen", "127.0.0.1:0")
	w.cmd.Stdout, w.cmd.Stderr = w.logs, w.logs
	if err := w.cmd.Start(); err != nil {
		w.t.Fatal(err)
	}
	w.exited = make(chan error, 1)
	go func(c *exec.Cmd, ch chan error) { ch <- c.Wait() }(w.cmd, w.exited)
	w.started++
	w.lastStart = time.Now()
}

// kill9 kills the running incarnation with SIGKILL and waits for it.
func (w *worker) kill9() {
	w.t.Helper()
	if err := w.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		w.t.Fatalf("kill -9: %v", err)
	}
	<-w.exited
}

// alive fails the test if the incarnation exited on its own.
func (w *worker) alive() {
	w.t.Helper()
	select {
	case err := <-w.exited:
		w.t.Fatalf("worker exited by itself (%v); log tail:\n%s", err, tailString(w.logs.String(), 4000))
	default:
	}
}

func (w *worker) stop() {
	if w.cmd == nil || w.cmd.ProcessState != nil {
		return
	}
	_ = w.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-w.exited:
	case <-time.After(15 * time.Second):
		_ = w.cmd.Process.Kill()
		<-w.exited
	}
}

func tailString(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

func kill9Run(t *testing.T, l *labtest.Lab, bin string, eos bool) {
	id := rand.Uint32()
	mode := "alo"
	if eos {
		mode = "eos"
	}
	topic := fmt.Sprintf("acc_%s_%d", mode, id)
	flow := fmt.Sprintf("kill9-%s-%d", mode, id)
	mirrortest.CreateTopic(t, l.KafkaEast, topic, killPartitions)
	cfg := l.WriteConfig(t, false, fmt.Sprintf(`flows:
  - name: %s
    source: east
    target: west
    topics: {include: [%q]}
    exactly_once: %v
server:
  log_format: json
  log_level: info
`, flow, topic, eos))
	w := &worker{t: t, bin: bin, cfg: cfg}
	w.start()
	t.Cleanup(w.stop)

	// Kill points: 5 random fractions of the run, by records on the target.
	var points []int64
	for range killCount {
		points = append(points, int64(float64(killRecords)*(0.05+0.85*rand.Float64())))
	}
	slices.Sort(points)
	t.Logf("flow %s, topic %s: kill -9 when the target holds %v records", flow, topic, points)

	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	produced := make(chan error, 1)
	start := time.Now()
	go func() {
		produced <- mirrortest.ProduceBulk(ctx, l.KafkaEast, topic, killPartitions, time.Now().Add(-time.Hour), 0, killRecords, 120, nil)
	}()
	target := "east." + topic
	admin := newAdmin(t, l.KafkaWest)
	for len(points) > 0 {
		w.alive()
		n := highWaterSum(admin, target)
		if n >= points[0] {
			time.Sleep(time.Duration(rand.IntN(300)) * time.Millisecond)
			w.kill9()
			t.Logf("kill -9 #%d at %s: target held %d records; restarted", w.started, time.Since(start).Round(time.Millisecond), n)
			points = points[1:]
			w.start()
			continue
		}
		if ctx.Err() != nil {
			t.Fatalf("target stuck at %d records; log tail:\n%s", n, tailString(w.logs.String(), 4000))
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := <-produced; err != nil {
		t.Fatal(err)
	}
	t.Logf("produced %d records in %s", killRecords, time.Since(start).Round(time.Millisecond))

	// Done when the flow's source group has committed every offset (the
	// flow commits only what the target acknowledged).
	src := newAdmin(t, l.KafkaEast)
	for {
		w.alive()
		if caughtUp(t, src, "regionsync-mirror-"+flow, topic) {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("flow did not catch up; log tail:\n%s", tailString(w.logs.String(), 4000))
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("mirrored %d records with %d kills in %s", killRecords, killCount, time.Since(start).Round(time.Millisecond))

	checkStart := time.Now()
	rep, err := mirrortest.Check(ctx, l.KafkaEast, l.KafkaWest, topic, target)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("checker (%s): %s", time.Since(checkStart).Round(time.Millisecond), rep)
	if rep.Source != killRecords {
		t.Fatalf("source holds %d records, want %d", rep.Source, killRecords)
	}
	if !rep.OK() {
		t.Errorf("mirror lost, reordered or altered records")
	}
	if eos && rep.Duplicates != 0 {
		t.Errorf("exactly-once: %d duplicates seen by a read_committed consumer", rep.Duplicates)
	}
}

func newAdmin(t *testing.T, brokers []string) sarama.ClusterAdmin {
	t.Helper()
	client, err := sarama.NewClient(brokers, mirrortest.Config())
	if err != nil {
		t.Fatal(err)
	}
	admin, err := sarama.NewClusterAdminFromClient(client)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = admin.Close() })
	return admin
}

// highWaterSum sums the high-water marks of topic (0 while it is missing).
func highWaterSum(admin sarama.ClusterAdmin, topic string) int64 {
	var sum int64
	offs, err := listOffsets(admin, topic)
	if err != nil {
		return 0
	}
	for _, o := range offs {
		sum += o
	}
	return sum
}

func listOffsets(admin sarama.ClusterAdmin, topic string) (map[int32]int64, error) {
	md, err := admin.DescribeTopics([]string{topic})
	if err != nil || len(md) == 0 || md[0].Err != sarama.ErrNoError {
		return nil, fmt.Errorf("describe %s: %v", topic, err)
	}
	req := map[string]map[int32]int64{topic: {}}
	for _, p := range md[0].Partitions {
		req[topic][p.ID] = sarama.OffsetNewest
	}
	resp, err := admin.ListOffsets(req, nil)
	if err != nil {
		return nil, err
	}
	out := map[int32]int64{}
	for p, r := range resp[topic] {
		if r.Err != nil && r.Err != sarama.ErrNoError {
			return nil, r.Err
		}
		out[p] = r.Offset
	}
	return out, nil
}

// caughtUp reports whether group has committed the high-water mark of every
// partition of topic.
func caughtUp(t *testing.T, admin sarama.ClusterAdmin, group, topic string) bool {
	hw, err := listOffsets(admin, topic)
	if err != nil || len(hw) != killPartitions {
		return false
	}
	parts := make([]int32, 0, len(hw))
	for p := range hw {
		parts = append(parts, p)
	}
	resp, err := admin.ListConsumerGroupOffsets(group, map[string][]int32{topic: parts})
	if err != nil {
		return false
	}
	for p, want := range hw {
		b := resp.GetBlock(topic, p)
		if b == nil || b.Offset != want {
			return false
		}
	}
	return true
}
