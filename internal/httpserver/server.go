// Package httpserver serves a process's operational endpoints: /metrics from
// the registry passed in (never the global one), /healthz (the process is
// alive) and /readyz (its dependencies are connected). Other packages may
// mount their own handlers (the readiness gate, for one) with Handle.
package httpserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// ReadyFunc reports whether the process can serve, with one entry per
// dependency: name → "" when healthy, or the reason it is not.
type ReadyFunc func() (ready bool, detail map[string]string)

// Server is the operational HTTP server. Construct it with New; it does no
// I/O until Run.
type Server struct {
	addr   string
	log    *slog.Logger
	mux    *http.ServeMux
	ready  ReadyFunc
	bound  chan struct{}
	mu     sync.Mutex
	listen net.Addr
}

// New returns a server that will listen on addr ("host:port"; port 0 picks a
// free port, see Addr). gatherer backs /metrics; ready backs /readyz and may
// be nil (always ready).
func New(addr string, gatherer prometheus.Gatherer, ready ReadyFunc, log *slog.Logger) *Server {
	s := &Server{addr: addr, log: log, mux: http.NewServeMux(), ready: ready, bound: make(chan struct{})}
	s.mux.Handle("GET /metrics", promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{ErrorLog: slogErrorLog{log}}))
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = fmt.Fprintln(w, "ok")
	})
	s.mux.HandleFunc("GET /readyz", s.serveReady)
	return s
}

// Handle mounts h on pattern (net/http ServeMux syntax). Call before Run.
func (s *Server) Handle(pattern string, h http.Handler) { s.mux.Handle(pattern, h) }

func (s *Server) serveReady(w http.ResponseWriter, _ *http.Request) {
	ok, detail := true, map[string]string{}
	if s.ready != nil {
		ok, detail = s.ready()
	}
	w.Header().Set("Content-Type", "application/json")
	if !ok {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	_ = json.NewEncoder(w).Encode(struct {
		Ready        bool              `json:"ready"`
		Dependencies map[string]string `json:"dependencies"`
	}{ok, detail})
}

// Addr blocks until the server is listening (or ctx ends) and returns the
// bound address.
func (s *Server) Addr(ctx context.Context) (net.Addr, error) {
	select {
	case <-s.bound:
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.listen, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Run listens and serves until ctx is cancelled, then shuts down gracefully,
// giving in-flight requests up to 3 s. It returns nil after a clean shutdown
// and an error naming the address when it cannot listen.
func (s *Server) Run(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.addr)
	if err != nil {
		return fmt.Errorf("httpserver: listen on %q: %w", s.addr, err)
	}
	s.mu.Lock()
	s.listen = ln.Addr()
	s.mu.Unlock()
	close(s.bound)
	srv := &http.Server{Handler: s.mux, ReadHeaderTimeout: 5 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	s.log.Info("http server listening", "addr", ln.Addr().String())
	select {
	case err := <-errc:
		return fmt.Errorf("httpserver: serve on %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		_ = srv.Close()
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("httpserver: serve on %s: %w", ln.Addr(), err)
	}
	return nil
}

type slogErrorLog struct{ log *slog.Logger }

func (l slogErrorLog) Println(v ...any) { l.log.Error(fmt.Sprint(v...)) }
