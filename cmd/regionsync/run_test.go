package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/regionsync/regionsync/internal/config"
	"github.com/regionsync/regionsync/internal/devstack/devstacktest"
)

// TestRunWorker runs `regionsync run` for region west against real etcd and
// NATS servers and a Kafka stand-in (the dev stack), and checks /readyz turns
// 200 with every dependency listed, then shuts it down cleanly.
func TestRunWorker(t *testing.T) {
	ep := devstacktest.Start(t)
	cfgPath := filepath.Join(t.TempDir(), "regionsync.yaml")
	cfg := fmt.Sprintf(`version: 1
regions:
  - name: east
    kafka: {brokers: [%q]}
    etcd: {endpoints: [%q]}
    nats: {url: %q}
  - name: west
    kafka: {brokers: [%q]}
    etcd: {endpoints: [%q, %q]}
    nats: {url: %q}
server:
  listen: 127.0.0.1:0
`, ep.Kafka["east"][0], ep.Etcd[0], ep.NATS, ep.Kafka["west"][0], ep.Etcd[1], ep.Etcd[2], ep.NATS)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	g := &globalFlags{logFormat: "json", logLevel: "info"}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	loaded, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	go func() { done <- runWorker(ctx, &logs, g, &runOptions{configPath: cfgPath, region: "west"}, loaded) }()
	// The listen address is port 0; find it in the log.
	m := waitOutput(t, &logs, httpListening, 20*time.Second)
	url := "http://" + m[1] + "/readyz"
	deadline := time.Now().Add(20 * time.Second)
	var code int
	var body string
	for time.Now().Before(deadline) {
		resp, err := http.Get(url)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			code, body = resp.StatusCode, string(b)
			if code == 200 {
				break
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	if code != 200 {
		t.Fatalf("/readyz = %d %s", code, body)
	}
	for _, dep := range []string{`"west/etcd":""`, `"west/kafka":""`, `"west/nats":""`} {
		if !strings.Contains(body, dep) {
			t.Errorf("/readyz body %s lacks %s", body, dep)
		}
	}
	if strings.Contains(body, "east/") {
		t.Errorf("worker of west probes east: %s", body)
	}
	http.DefaultClient.CloseIdleConnections()
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
