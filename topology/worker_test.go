package topology

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// The lab tests need workers that are real processes (kill -9 and SIGSTOP
// must hit a process, not a goroutine). The test binary re-executes itself
// with workerEnv set; TestMain then runs workerMain instead of the tests.
const (
	workerEnv          = "TOPOLOGY_LAB_WORKER"     // "1"
	workerEndpointsEnv = "TOPOLOGY_WORKER_ETCD"    // comma-separated
	workerPrefixEnv    = "TOPOLOGY_WORKER_PREFIX"  // key prefix
	workerRegionEnv    = "TOPOLOGY_WORKER_REGION"  // region
	workerIDEnv        = "TOPOLOGY_WORKER_ID"      // worker id
	workerTTLEnv       = "TOPOLOGY_WORKER_TTL"     // session TTL, Go duration
	workerRawEnv       = "TOPOLOGY_WORKER_RAW"     // "1": beats skip the local check, only etcd's fence decides
	workerBeatEnv      = "TOPOLOGY_WORKER_BEAT_MS" // beat period in ms (default 50)
)

// beatKey is where a leader worker writes its beats (fenced).
func beatKey(prefix, region string) string { return prefix + "labtest/beats/" + region }

// workerEvent is one line a worker prints on stdout.
type workerEvent struct {
	Event  string    `json:"event"` // registered, leader, fenced, term_end, exit
	Worker string    `json:"worker"`
	Key    string    `json:"key,omitempty"`
	Rev    int64     `json:"rev,omitempty"`
	Where  string    `json:"where,omitempty"` // fenced: etcd or local
	Detail string    `json:"detail,omitempty"`
	Seq    int       `json:"seq,omitempty"`
	At     time.Time `json:"at"`
}

// workerMain runs one worker until SIGTERM/SIGINT: a Member whose leader task
// writes a fenced beat "<id> <seq> <unix-nanos>" every beat period.
func workerMain() int {
	id := os.Getenv(workerIDEnv)
	region := os.Getenv(workerRegionEnv)
	prefix := os.Getenv(workerPrefixEnv)
	ttl, err := time.ParseDuration(os.Getenv(workerTTLEnv))
	if err != nil {
		fmt.Fprintf(os.Stderr, "worker: %s: %v\n", workerTTLEnv, err)
		return 2
	}
	beat := 50 * time.Millisecond
	if ms := os.Getenv(workerBeatEnv); ms != "" {
		var n int
		if _, err := fmt.Sscan(ms, &n); err == nil && n > 0 {
			beat = time.Duration(n) * time.Millisecond
		}
	}
	raw := os.Getenv(workerRawEnv) == "1"
	var outMu sync.Mutex
	emit := func(e workerEvent) {
		e.Worker, e.At = id, time.Now()
		b, _ := json.Marshal(e)
		outMu.Lock()
		fmt.Fprintf(os.Stdout, "%s\n", b)
		outMu.Unlock()
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	cli, err := clientv3.New(clientv3.Config{Endpoints: strings.Split(os.Getenv(workerEndpointsEnv), ","), DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		fmt.Fprintf(os.Stderr, "worker: etcd client: %v\n", err)
		return 1
	}
	defer cli.Close()
	mb, err := NewMember(cli, MemberOptions{Prefix: prefix, Region: region, WorkerID: id, SessionTTL: ttl}, nil, testLog().With("proc", id))
	if err != nil {
		fmt.Fprintf(os.Stderr, "worker: %v\n", err)
		return 2
	}
	mb.AddLeaderTask("beat", func(lctx context.Context, l *Leader) error {
		emit(workerEvent{Event: "leader", Key: l.Key(), Rev: l.Revision()})
		t := time.NewTicker(beat)
		defer t.Stop()
		for seq := 1; ; seq++ {
			// Block on the ticker only: after a SIGSTOP the pending tick
			// makes the first thing this task does on resuming a write.
			<-t.C
			val := fmt.Sprintf("%s %d %d", id, seq, time.Now().UnixNano())
			wctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			endedBefore := lctx.Err() != nil
			var err error
			if raw {
				_, err = l.do(wctx, clientv3.OpPut(beatKey(prefix, region), val), false)
			} else {
				_, err = l.Put(wctx, beatKey(prefix, region), val)
			}
			cancel()
			if errors.Is(err, ErrNotLeader) {
				where := "etcd" // the fence compare failed
				if endedBefore && !raw {
					where = "local" // Put refused without sending
				}
				emit(workerEvent{Event: "fenced", Key: l.Key(), Rev: l.Revision(), Where: where, Detail: err.Error(), Seq: seq})
			}
			if lctx.Err() != nil {
				emit(workerEvent{Event: "term_end", Key: l.Key(), Rev: l.Revision(), Detail: context.Cause(lctx).Error(), Seq: seq})
				return nil
			}
		}
	})
	go func() { // announce registration once the lease is live
		for ctx.Err() == nil {
			if mb.Lease() != 0 {
				emit(workerEvent{Event: "registered", Detail: fmt.Sprintf("lease %x", mb.Lease())})
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	err = mb.Run(ctx)
	emit(workerEvent{Event: "exit", Detail: fmt.Sprint(err)})
	if err != nil {
		return 1
	}
	return 0
}
