// Command mirrorbench measures regionsync's mirror side by side with Kafka
// MirrorMaker 2 on the lab (issue #4): drain throughput of a pre-filled
// topic, CPU-seconds per 1,000,000 records, end-to-end replication latency
// at a steady rate, and peak RSS. Each mirror runs alone, as one process
// with one worker/task, on the same source topic, record size and
// compression (LZ4 on the target). It prints a Markdown table.
//
//	go run ./loadtests/mirrorbench            # from the repo root; brings the lab up
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/regionsync/regionsync/loadtests/procstat"
	"github.com/regionsync/regionsync/mirror"
)

type options struct {
	records    int
	size       int
	partitions int
	rate       int
	warmup     time.Duration
	latDur     time.Duration
	keep       bool
	skipMM2    bool
	bin        string
	quiet      bool
	settle     time.Duration
}

func main() {
	var o options
	flag.IntVar(&o.records, "records", 2_000_000, "records pre-filled in the source topic")
	flag.IntVar(&o.size, "size", 1024, "record value size in bytes")
	flag.IntVar(&o.partitions, "partitions", 12, "partitions of the source topics")
	flag.IntVar(&o.rate, "rate", 5000, "records/s for the latency phase")
	flag.DurationVar(&o.warmup, "warmup", 5*time.Second, "latency phase: time before records are counted")
	flag.DurationVar(&o.latDur, "latency-duration", 30*time.Second, "latency phase: measured time")
	flag.DurationVar(&o.settle, "settle", 10*time.Second, "pause (after a sync) before each mirror's drain and before each latency phase")
	flag.BoolVar(&o.keep, "keep", false, "keep the benchmark topics afterwards")
	flag.BoolVar(&o.skipMM2, "skip-mm2", false, "measure regionsync only")
	flag.StringVar(&o.bin, "bin", "", "regionsync binary to measure (default: built from this checkout)")
	flag.BoolVar(&o.quiet, "pause-cassandra", true, "SIGSTOP the lab's two Cassandra nodes while measuring (they share the CPUs and take no part), SIGCONT after")
	flag.Parse()
	log.SetFlags(log.Ltime)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o); err != nil {
		log.Fatalf("mirrorbench: %v", err)
	}
}

// result is one mirror's figures.
type result struct {
	name   string
	drain  drain
	lat    latency
	rssMiB float64
}

func run(ctx context.Context, o options) error {
	lab, err := labUp(ctx)
	if err != nil {
		return err
	}
	if o.quiet {
		if err := lab.signal(ctx, "pause", "cassandra-east", "cassandra-west"); err != nil {
			return err
		}
		defer func() { _ = lab.signal(context.Background(), "resume", "cassandra-east", "cassandra-west") }()
	}
	id := rand.Uint32()
	bench := fmt.Sprintf("bench_%d", id)
	latRS, latMM := fmt.Sprintf("lat_rs_%d", id), fmt.Sprintf("lat_mm_%d", id)
	latBase := fmt.Sprintf("lat_base_%d", id)
	parts := int32(o.partitions)
	for _, t := range []string{bench, latRS, latMM, latBase} {
		if err := createTopic(lab.east, t, parts); err != nil {
			return err
		}
	}
	if !o.keep {
		defer deleteTopics(lab.east, bench, latRS, latMM, latBase)
		defer deleteTopics(lab.west, bench, latRS, "east."+bench, "east."+latMM)
	}
	log.Printf("pre-filling %s with %d records of %d bytes over %d partitions", bench, o.records, o.size, o.partitions)
	took, err := prefill(lab.east, bench, parts, o.records, o.size)
	if err != nil {
		return fmt.Errorf("prefill: %w", err)
	}
	log.Printf("pre-filled in %s (%.0f records/s)", took.Round(time.Millisecond), float64(o.records)/took.Seconds())

	// The floor: the same producer and consumer on one cluster, no mirror.
	log.Printf("latency floor: producer → east → consumer, no mirror")
	floor, err := measureLatency(ctx, lab.east, lab.east, latBase, latBase, parts, o.rate, o.size, o.warmup, o.latDur)
	if err != nil {
		return fmt.Errorf("latency floor: %w", err)
	}
	log.Printf("floor: p50 %s p99 %s max %s", floor.P50, floor.P99, floor.Max)
	logSlow("floor", floor)

	rs, err := benchRegionsync(ctx, lab, o, bench, latRS)
	if err != nil {
		return fmt.Errorf("regionsync: %w", err)
	}
	results := []result{rs}
	if !o.skipMM2 {
		mm, err := benchMM2(ctx, lab, o, bench, latMM)
		if err != nil {
			return fmt.Errorf("mirrormaker 2: %w", err)
		}
		results = append(results, mm)
	}
	fmt.Print(report(o, results))
	fmt.Printf("\nLatency floor (same producer and consumer, one cluster, no mirror): p50 %.1f ms, p99 %.1f ms, max %.1f ms.\n",
		ms(floor.P50), ms(floor.P99), ms(floor.Max))
	return nil
}

func benchRegionsync(ctx context.Context, lab *lab, o options, bench, lat string) (result, error) {
	// Each run starts as a fresh deployment would: without the offset-sync
	// log of the runs before it (read at start-up, it would count in the
	// drain).
	deleteTopics(lab.west, mirror.OffsetSyncTopic(benchFlow))
	settle(ctx, o, "regionsync", "drain")
	p, err := startRegionsync(ctx, lab, o.bin, []string{bench, lat})
	if err != nil {
		return result{}, err
	}
	defer p.stop()
	return measure(ctx, lab, o, "regionsync", p.pid(), bench, bench, lat, lat)
}

func benchMM2(ctx context.Context, lab *lab, o options, bench, lat string) (result, error) {
	settle(ctx, o, "MirrorMaker 2", "drain")
	p, err := startMM2(ctx, lab, []string{bench, lat})
	if err != nil {
		return result{}, err
	}
	defer p.stop()
	return measure(ctx, lab, o, "MirrorMaker 2", p.pid(), bench, "east."+bench, lat, "east."+lat)
}

// measure runs the drain and latency phases against a running mirror.
func measure(ctx context.Context, lab *lab, o options, name string, pid int, bench, benchDst, lat, latDst string) (result, error) {
	r := result{name: name}
	dctx, cancel := context.WithTimeout(ctx, 15*time.Minute)
	defer cancel()
	log.Printf("%s (pid %d): draining %s", name, pid, bench)
	d, err := measureDrain(dctx, lab.west, benchDst, int64(o.records), pid)
	if err != nil {
		return r, err
	}
	r.drain = d
	log.Printf("%s: %d records in %s (%.0f records/s), %.1f CPU-s", name, d.Records, d.Elapsed.Round(time.Millisecond), float64(d.Records)/d.Elapsed.Seconds(), d.CPUSeconds)
	settle(ctx, o, name, "latency phase")
	log.Printf("%s: latency at %d records/s for %s after %s warm-up", name, o.rate, o.latDur, o.warmup)
	r.lat, err = measureLatency(dctx, lab.east, lab.west, lat, latDst, int32(o.partitions), o.rate, o.size, o.warmup, o.latDur)
	if err != nil {
		return r, fmt.Errorf("latency: %w", err)
	}
	log.Printf("%s: p50 %s p99 %s max %s over %d records", name, r.lat.P50, r.lat.P99, r.lat.Max, r.lat.N)
	logSlow(name, r.lat)
	if r.rssMiB, err = procstat.PeakRSS(pid); err != nil {
		return r, err
	}
	return r, nil
}

// settle writes out dirty pages and waits: the pre-fill and each drain
// leave gigabytes of them, and the kernel writing them back competes with
// whatever runs next. Both mirrors start each phase from the same state.
func settle(ctx context.Context, o options, name, before string) {
	log.Printf("%s: sync and %s settle before the %s", name, o.settle, before)
	_ = exec.CommandContext(ctx, "sync").Run()
	time.Sleep(o.settle)
}

// logSlow prints where the records slower than the target were, by 100 ms
// slot of record time: many partitions in one slot is a stall of the whole
// path (CPU, GC, a broker); one partition at a time is that partition's.
func logSlow(name string, l latency) {
	n := 0
	for _, s := range l.Slow {
		n += s.Records
	}
	log.Printf("%s: %d records slower than %s, in %d slots of 100 ms", name, n, slowThreshold, len(l.Slow))
	for _, s := range l.Slow {
		log.Printf("  at %6.1f s: %4d records, %2d partitions, worst %s", s.At.Seconds(), s.Records, len(s.Partitions), s.Worst.Round(time.Millisecond))
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func report(o options, rs []result) string {
	var b strings.Builder
	mb := func(d drain) float64 { return float64(d.Records) * float64(o.size) / d.Elapsed.Seconds() / 1e6 }
	rps := func(d drain) float64 { return float64(d.Records) / d.Elapsed.Seconds() }
	cpu := func(d drain) float64 { return d.CPUSeconds / float64(d.Records) * 1e6 }
	fmt.Fprintf(&b, "\n%d records × %d B, %d partitions, one process each, LZ4 on the target; latency at %d records/s for %s; Cassandra paused: %v.\n\n",
		o.records, o.size, o.partitions, o.rate, o.latDur, o.quiet)
	fmt.Fprintf(&b, "| figure | %s |", rs[0].name)
	if len(rs) > 1 {
		fmt.Fprintf(&b, " %s | regionsync / MM2 | target |", rs[1].name)
	}
	b.WriteString("\n|---|---|")
	if len(rs) > 1 {
		b.WriteString("---|---|---|")
	}
	b.WriteString("\n")
	row := func(name, unit string, f func(result) float64, target string, format string) {
		fmt.Fprintf(&b, "| %s (%s) | "+format+" |", name, unit, f(rs[0]))
		if len(rs) > 1 {
			fmt.Fprintf(&b, " "+format+" | %.2f× | %s |", f(rs[1]), f(rs[0])/f(rs[1]), target)
		}
		b.WriteString("\n")
	}
	row("drain throughput", "records/s", func(r result) float64 { return rps(r.drain) }, "≥ 1.5×", "%.0f")
	row("drain throughput", "MB/s", func(r result) float64 { return mb(r.drain) }, "≥ 1.5×", "%.1f")
	row("CPU per 1,000,000 records", "CPU-s", func(r result) float64 { return cpu(r.drain) }, "≤ 0.5×", "%.2f")
	row("latency p50", "ms", func(r result) float64 { return ms(r.lat.P50) }, "", "%.1f")
	row("latency p99", "ms", func(r result) float64 { return ms(r.lat.P99) }, "≤ 50 ms", "%.1f")
	row("latency max", "ms", func(r result) float64 { return ms(r.lat.Max) }, "", "%.1f")
	row("peak RSS", "MiB", func(r result) float64 { return r.rssMiB }, "≤ 150 MiB", "%.0f")
	return b.String()
}
