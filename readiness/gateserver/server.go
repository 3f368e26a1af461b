// Package gateserver serves regionsync's failover gate over HTTP:
//
//	GET  /v1/gate?from=A&to=B        may traffic move from A to B now? (200 allowed, 409 denied)
//	POST /v1/gate?from=A&to=B&by=W   the same, and when allowed records the move (wait period)
//	GET  /v1/regions                 every region's aggregated verdict and effective state
//	GET  /v1/regions/{region}        one region's
//	PUT  /v1/overrides/{region}      set an override {"state","by","reason","for"}
//	DELETE /v1/overrides/{region}?by=W&reason=R   clear it
//
// Decisions come from a gateclient (the same rules routers apply in
// process); every decision and override change is audited on the
// REGIONSYNC_AUDIT stream.
package gateserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sort"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/regionsync/regionsync/readiness"
	"github.com/regionsync/regionsync/readiness/gateclient"
	"github.com/regionsync/regionsync/topology"
)

// Options configure a Server.
type Options struct {
	// Client returns the gate client once NATS answered (nil before: 503).
	Client func() *gateclient.Client
	// Bus returns the NATS bus once connected (nil before): audit and flips.
	Bus func() *readiness.Bus
	// Etcd is where overrides are recorded, under Keys.
	Etcd        *clientv3.Client
	Keys        topology.Keys
	MaxOverride time.Duration
	// Source names this gate in audit events, e.g. "regionsync://west/gate".
	Source string
	Log    *slog.Logger
}

// Server is the HTTP gate.
type Server struct{ o Options }

// New returns the gate server.
func New(o Options) *Server { return &Server{o: o} }

// Register adds the routes to mux.
func (s *Server) Register(handle func(pattern string, h http.Handler)) {
	handle("GET /v1/gate", http.HandlerFunc(s.gate))
	handle("POST /v1/gate", http.HandlerFunc(s.gate))
	handle("GET /v1/regions", http.HandlerFunc(s.regions))
	handle("GET /v1/regions/{region}", http.HandlerFunc(s.region))
	handle("PUT /v1/overrides/{region}", http.HandlerFunc(s.setOverride))
	handle("DELETE /v1/overrides/{region}", http.HandlerFunc(s.clearOverride))
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func fail(w http.ResponseWriter, status int, format string, args ...any) {
	writeJSON(w, status, map[string]string{"error": fmt.Sprintf(format, args...)})
}

// client returns the gate client, or answers 503 and nil.
func (s *Server) client(w http.ResponseWriter) *gateclient.Client {
	c := s.o.Client()
	if c == nil {
		fail(w, http.StatusServiceUnavailable, "the gate has no readiness view yet (NATS not connected)")
	}
	return c
}

func (s *Server) gate(w http.ResponseWriter, r *http.Request) {
	from, to := r.URL.Query().Get("from"), r.URL.Query().Get("to")
	if from == "" || to == "" {
		fail(w, http.StatusBadRequest, "query parameters from and to are required, e.g. /v1/gate?from=east&to=west")
		return
	}
	c := s.client(w)
	if c == nil {
		return
	}
	d := c.Allowed(from, to)
	bus := s.o.Bus()
	if r.Method == http.MethodPost && d.Allowed {
		by := r.URL.Query().Get("by")
		if by == "" {
			fail(w, http.StatusBadRequest, "recording a move needs by=<who>")
			return
		}
		if bus == nil {
			fail(w, http.StatusServiceUnavailable, "NATS is not connected: the move cannot be recorded, so it is not allowed")
			return
		}
		if err := bus.RecordFlip(r.Context(), readiness.Flip{From: from, To: to, At: d.DecidedAt, By: by}); err != nil {
			fail(w, http.StatusServiceUnavailable, "recording the move: %v", err)
			return
		}
	}
	if bus != nil {
		if err := bus.AuditDecision(r.Context(), s.o.Source, d); err != nil {
			s.o.Log.Warn("gate: decision not audited", "from", from, "to", to, "err", err)
		}
	}
	status := http.StatusOK
	if !d.Allowed {
		status = http.StatusConflict
	}
	writeJSON(w, status, d)
}

// RegionView is one region as /v1/regions shows it.
type RegionView struct {
	Region string `json:"region"`
	// State a router must act on now (override, expiry applied).
	State     readiness.State      `json:"state"`
	Reason    string               `json:"reason"`
	Override  *readiness.Override  `json:"override,omitempty"`
	Aggregate *readiness.Aggregate `json:"aggregate,omitempty"`
}

func (s *Server) view(c *gateclient.Client, region string, now time.Time) (RegionView, bool) {
	v := c.View()
	a, ok := v.Aggregates[region]
	o := v.Overrides[region]
	if !ok && o == nil {
		return RegionView{}, false
	}
	d := readiness.Decide("", region, *v, readiness.Rules{}, now)
	rv := RegionView{Region: region, State: d.TargetState, Override: d.Override}
	if ok {
		rv.Aggregate, rv.Reason = &a, a.Reason
		if a.Expired(now) {
			rv.Reason = "expired at " + a.ExpiresAt.UTC().Format(time.RFC3339)
		}
	}
	if d.Override != nil {
		rv.Reason = "override by " + d.Override.By + ": " + d.Override.Reason
	}
	return rv, true
}

func (s *Server) regions(w http.ResponseWriter, _ *http.Request) {
	c := s.client(w)
	if c == nil {
		return
	}
	now := time.Now()
	v := c.View()
	var names []string
	for r := range v.Aggregates {
		names = append(names, r)
	}
	sort.Strings(names)
	out := []RegionView{}
	for _, r := range names {
		if rv, ok := s.view(c, r, now); ok {
			out = append(out, rv)
		}
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) region(w http.ResponseWriter, r *http.Request) {
	c := s.client(w)
	if c == nil {
		return
	}
	rv, ok := s.view(c, r.PathValue("region"), time.Now())
	if !ok {
		fail(w, http.StatusNotFound, "no verdict on region %q", r.PathValue("region"))
		return
	}
	writeJSON(w, http.StatusOK, rv)
}

// OverrideRequest is the body of PUT /v1/overrides/{region}.
type OverrideRequest struct {
	State  readiness.State `json:"state"`
	By     string          `json:"by"`
	Reason string          `json:"reason"`
	// For how long, as a Go duration ("30m").
	For string `json:"for"`
}

func (s *Server) setOverride(w http.ResponseWriter, r *http.Request) {
	var req OverrideRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		fail(w, http.StatusBadRequest, "override body: %v", err)
		return
	}
	dur, err := time.ParseDuration(req.For)
	if err != nil {
		fail(w, http.StatusBadRequest, "override body: for: %v", err)
		return
	}
	now := time.Now().UTC()
	o := readiness.Override{SchemaVersion: readiness.SchemaVersion, Region: r.PathValue("region"), State: req.State, By: req.By,
		Reason: req.Reason, CreatedAt: now, ExpiresAt: now.Add(dur)}
	if err := s.change(r.Context(), "set", o); err != nil {
		status := http.StatusServiceUnavailable
		var ve validationError
		if errors.As(err, &ve) {
			status = http.StatusBadRequest
		}
		fail(w, status, "%v", err)
		return
	}
	writeJSON(w, http.StatusOK, o)
}

func (s *Server) clearOverride(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	now := time.Now().UTC()
	o := readiness.Override{Region: r.PathValue("region"), State: readiness.NotReady, By: q.Get("by"), Reason: q.Get("reason"), CreatedAt: now, ExpiresAt: now}
	if o.By == "" || o.Reason == "" {
		fail(w, http.StatusBadRequest, "clearing an override needs by=<who>&reason=<why>")
		return
	}
	if err := s.change(r.Context(), "clear", o); err != nil {
		fail(w, http.StatusServiceUnavailable, "%v", err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"cleared": o.Region})
}

type validationError struct{ error }

// change records an override change in etcd and audits it. An override
// that cannot be audited is not written (an unaudited override must not
// exist).
func (s *Server) change(ctx context.Context, action string, o readiness.Override) error {
	bus := s.o.Bus()
	if bus == nil {
		return errors.New("NATS is not connected: override changes are audited, so none can be made now")
	}
	key := s.o.Keys.Override(o.Region)
	if action == "set" {
		if err := o.Validate(s.o.MaxOverride); err != nil {
			return validationError{err}
		}
	}
	if err := bus.AuditOverride(ctx, s.o.Source, readiness.OverrideChange{Action: action, Override: o, At: o.CreatedAt}); err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	if action == "clear" {
		_, err := s.o.Etcd.Delete(ctx, key)
		return err
	}
	return readiness.WriteOverride(ctx, s.o.Etcd, key, o, s.o.MaxOverride)
}
