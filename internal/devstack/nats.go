package devstack

import (
	"fmt"
	"path/filepath"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// startNATS starts a real nats-server with JetStream on a free loopback port.
func startNATS(dir string, timeout time.Duration) (*server.Server, error) {
	opts := &server.Options{
		ServerName: "regionsync-dev",
		Host:       "127.0.0.1",
		Port:       server.RANDOM_PORT,
		JetStream:  true,
		StoreDir:   filepath.Join(dir, "nats"),
		NoLog:      true,
		NoSigs:     true,
	}
	s, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("devstack: nats server: %w", err)
	}
	go s.Start()
	if !s.ReadyForConnections(timeout) {
		s.Shutdown()
		s.WaitForShutdown()
		return nil, fmt.Errorf("devstack: nats server not ready after %s", timeout)
	}
	return s, nil
}
