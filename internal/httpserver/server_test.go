package httpserver

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestEndpoints(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "regionsync_test_total", Help: "test"})
	reg.MustRegister(c)
	c.Add(3)
	ready := false
	s := New("127.0.0.1:0", reg, func() (bool, map[string]string) {
		if ready {
			return true, map[string]string{"etcd": ""}
		}
		return false, map[string]string{"etcd": "connection refused"}
	}, slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	addr, err := s.Addr(ctx)
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + addr.String()
	get := func(path string) (int, string) {
		t.Helper()
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("/metrics"); code != 200 || !strings.Contains(body, "regionsync_test_total 3") {
		t.Fatalf("/metrics = %d %q", code, body)
	}
	if code, _ := get("/healthz"); code != 200 {
		t.Fatalf("/healthz = %d", code)
	}
	code, body := get("/readyz")
	var r struct {
		Ready        bool
		Dependencies map[string]string
	}
	if err := json.Unmarshal([]byte(body), &r); err != nil {
		t.Fatal(err)
	}
	if code != 503 || r.Ready || r.Dependencies["etcd"] != "connection refused" {
		t.Fatalf("/readyz not ready = %d %q", code, body)
	}
	ready = true
	if code, _ := get("/readyz"); code != 200 {
		t.Fatalf("/readyz ready = %d", code)
	}
	http.DefaultClient.CloseIdleConnections()
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run = %v", err)
	}
}

func TestListenError(t *testing.T) {
	s := New("256.0.0.1:bad", prometheus.NewRegistry(), nil, slog.New(slog.DiscardHandler))
	err := s.Run(context.Background())
	if err == nil || !strings.Contains(err.Error(), `listen on "256.0.0.1:bad"`) {
		t.Fatalf("err = %v", err)
	}
}
