package gateserver_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/regionsync/regionsync/readiness"
	"github.com/regionsync/regionsync/readiness/gateclient"
	"github.com/regionsync/regionsync/readiness/gateserver"
	"github.com/regionsync/regionsync/readiness/readinesstest"
	"github.com/regionsync/regionsync/schemas"
	"github.com/regionsync/regionsync/topology"
	"github.com/regionsync/regionsync/topology/etcdtest"
)

// An override set through the HTTP gate is recorded in etcd and audited on
// the stream; a decision is audited; a request the rules reject gets 409
// with its reasons; a bad override gets 400 naming the field.
func TestGateServerAudit(t *testing.T) {
	etcd := etcdtest.Start(t, 1)
	cli := etcd.Client(t)
	_, nc := readinesstest.StartNATS(t)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	bus, err := readiness.OpenBus(ctx, js, 1)
	if err != nil {
		t.Fatal(err)
	}
	gc := gateclient.New(bus.KV(), gateclient.Options{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); _ = gc.Run(ctx) }()
	defer func() { cancel(); wg.Wait() }()
	keys := topology.NewKeys("/gate-test/")
	srv := gateserver.New(gateserver.Options{Client: func() *gateclient.Client { return gc }, Bus: func() *readiness.Bus { return bus },
		Etcd: cli, Keys: keys, MaxOverride: 24 * time.Hour, Source: "regionsync://test/gate", Log: slog.New(slog.DiscardHandler)})
	mux := http.NewServeMux()
	srv.Register(func(p string, h http.Handler) { mux.Handle(p, h) })
	hs := httptest.NewServer(mux)
	defer hs.Close()

	do := func(method, path, body string) (int, string) {
		req, _ := http.NewRequest(method, hs.URL+path, strings.NewReader(body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := do("PUT", "/v1/overrides/west", `{"state":"READY","by":"alice","reason":"drill","for":"48h"}`); code != 400 || !strings.Contains(body, "longer than the allowed") {
		t.Fatalf("too long override: %d %s", code, body)
	}
	if code, body := do("PUT", "/v1/overrides/west", `{"state":"NOT_READY","by":"alice","reason":"maintenance","for":"30m"}`); code != 200 {
		t.Fatalf("override: %d %s", code, body)
	}
	g, err := cli.Get(ctx, keys.Override("west"))
	if err != nil || len(g.Kvs) != 1 {
		t.Fatalf("override not in etcd: %v %v", g, err)
	}
	code, body := do("GET", "/v1/gate?from=east&to=west", "")
	var d readiness.Decision
	if err := json.Unmarshal([]byte(body), &d); err != nil || code != 409 || d.Allowed {
		t.Fatalf("gate with no verdicts: %d %s", code, body)
	}
	// Both the override and the decision are in the audit stream.
	cons, err := js.OrderedConsumer(ctx, readiness.AuditStream, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	subjects := map[string]int{}
	for range 2 {
		m, err := cons.Next(jetstream.FetchMaxWait(5 * time.Second))
		if err != nil {
			t.Fatalf("audit stream: %v (so far %v)", err, subjects)
		}
		subjects[m.Subject()]++
		if err := schemas.Validate("cloudevent", m.Data()); err != nil {
			t.Fatalf("audit record on %s does not match the schema: %v", m.Subject(), err)
		}
		var ce map[string]any
		if err := json.Unmarshal(m.Data(), &ce); err != nil || ce["specversion"] != "1.0" || m.Headers().Get("Nats-Msg-Id") != ce["id"] {
			t.Fatalf("audit record is not a CloudEvent with its id as Nats-Msg-Id: %s", m.Data())
		}
	}
	if subjects["regionsync.gate.override"] != 1 || subjects["regionsync.gate.decision"] != 1 {
		t.Fatalf("audit subjects %v", subjects)
	}
	if code, _ := do("DELETE", "/v1/overrides/west", ""); code != 400 {
		t.Fatalf("clearing without who/why: %d", code)
	}
	if code, body := do("DELETE", "/v1/overrides/west?by=alice&reason=done", ""); code != 200 {
		t.Fatalf("clear: %d %s", code, body)
	}
	if g, _ := cli.Get(ctx, keys.Override("west")); len(g.Kvs) != 0 {
		t.Fatal("override still in etcd after clear")
	}
}
