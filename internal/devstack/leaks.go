package devstack

import (
	"fmt"
	"os"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// ignoredLeaks are goroutines that libraries start once per process and never
// stop; they are not ours to stop.
func ignoredLeaks() []goleak.Option {
	return []goleak.Option{
		// sarama registers go-metrics meters; their arbiter goroutine is global.
		goleak.IgnoreTopFunction("github.com/rcrowley/go-metrics.(*meterArbiter).tick"),
	}
}

// VerifyTestMain runs the tests and then fails the binary if goroutines are
// left running. Unlike goleak.VerifyTestMain it waits up to 15 s: embedded
// etcd's peer HTTP connections finish closing a few seconds after Close
// returns, and that is not a leak.
func VerifyTestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		if err := waitNoLeaks(15 * time.Second); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

func waitNoLeaks(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		err := goleak.Find(ignoredLeaks()...)
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(250 * time.Millisecond)
	}
}
