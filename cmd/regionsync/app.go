package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/pprof"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"golang.org/x/sync/errgroup"

	"github.com/regionsync/regionsync/internal/clients"
	"github.com/regionsync/regionsync/internal/config"
	"github.com/regionsync/regionsync/internal/health"
	"github.com/regionsync/regionsync/internal/httpserver"
	"github.com/regionsync/regionsync/internal/logging"
	"github.com/regionsync/regionsync/mirror"
	"github.com/regionsync/regionsync/readiness"
	"github.com/regionsync/regionsync/replicate"
	"github.com/regionsync/regionsync/topology"
)

// runnable is every long-running component: Run blocks until ctx ends.
type runnable interface {
	Run(ctx context.Context) error
}

// app is what `run` and `dev` share: one registry, one logger, one HTTP
// server, the dependency checker and the region workers, run in one errgroup.
type app struct {
	log     *slog.Logger
	reg     *prometheus.Registry
	checker *health.Checker
	server  *httpserver.Server
	probes  []*clients.Probe

	mirrorMetrics *mirror.Metrics
	flows         []*mirror.Flow

	topoMetrics *topology.Metrics
	nodes       map[string]*topology.Node // region → this process's topology node

	kafkaObs *replicate.Kafka     // replication observer of every flow
	cassObs  *replicate.Cassandra // replication observer of every Cassandra DC; nil without Cassandra

	publishers map[string]*readiness.Publisher // region → its leader's publisher
	busConns   []*busConnector
	gates      []*gateRunner
	busMu      sync.Mutex
	buses      map[string]*readiness.Bus // region → NATS bus, once connected
}

func newApp(stderr io.Writer, g *globalFlags, listen string) (*app, error) {
	log, err := logging.New(stderr, g.logFormat, g.logLevel)
	if err != nil {
		return nil, err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		collectors.NewBuildInfoCollector(),
	)
	info := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "regionsync_build_info",
		Help: "Always 1; labels carry the regionsync version.",
	}, []string{"version"})
	info.WithLabelValues(buildVersion()).Set(1)
	reg.MustRegister(info)
	a := &app{log: log, reg: reg, checker: health.New(2*time.Second, 2*time.Second, reg, log)}
	a.server = httpserver.New(listen, reg, a.checker.Ready, log)
	if g.pprof {
		a.server.Handle("GET /debug/pprof/", http.HandlerFunc(pprof.Index))
		a.server.Handle("GET /debug/pprof/profile", http.HandlerFunc(pprof.Profile))
		a.server.Handle("GET /debug/pprof/trace", http.HandlerFunc(pprof.Trace))
	}
	return a, nil
}

// addRegion registers probes of every dependency region r configures.
func (a *app) addRegion(cfg *config.Config, r config.Region) error {
	if len(r.Kafka.Brokers) > 0 {
		kc, err := clients.Kafka(r.Name, r.Kafka)
		if err != nil {
			return err
		}
		a.addProbe(r.Name, "kafka", clients.KafkaProbe(r.Kafka.Brokers, kc))
	}
	ec, err := clients.Etcd(r.Name, r.Etcd)
	if err != nil {
		return err
	}
	a.addProbe(r.Name, "etcd", clients.EtcdProbe(ec, cfg.EtcdPrefix+"health"))
	nopts, err := clients.NATS(r.Name, r.NATS)
	if err != nil {
		return err
	}
	a.addProbe(r.Name, "nats", clients.NATSProbe(r.NATS.URL, nopts))
	if len(r.Cassandra.ContactPoints) > 0 {
		cc, err := clients.Cassandra(r.Name, r.Cassandra)
		if err != nil {
			return err
		}
		a.addProbe(r.Name, "cassandra", clients.CassandraProbe(cc))
	}
	return nil
}

// addNode creates the topology node of region r: worker presence, leader
// election, the registry/worker/leader watches and etcd health. workerID ""
// means "<hostname>-<pid>".
func (a *app) addNode(cfg *config.Config, r config.Region, workerID string) error {
	ec, err := clients.Etcd(r.Name, r.Etcd)
	if err != nil {
		return err
	}
	if a.topoMetrics == nil {
		a.topoMetrics = topology.NewMetrics(a.reg)
		a.nodes = map[string]*topology.Node{}
	}
	n, err := topology.NewNode(topology.NodeOptions{
		Etcd: ec, Prefix: cfg.EtcdPrefix, Region: r.Name, WorkerID: workerID, Version: buildVersion(),
	}, a.topoMetrics, a.log)
	if err != nil {
		return fmt.Errorf("region %q: topology: %w", r.Name, err)
	}
	a.nodes[r.Name] = n
	return nil
}

// topologyStatus summarises region's leader and workers for the console.
func (a *app) topologyStatus(region string) string {
	n, ok := a.nodes[region]
	if !ok {
		return ""
	}
	return n.Topology().Summary(region)
}

func (a *app) addProbe(region, dep string, p *clients.Probe) {
	a.probes = append(a.probes, p)
	a.checker.Add(region, dep, p.Check)
}

// run runs the server, the checker and extra components until ctx ends or
// one of them fails; then it cancels the rest, waits for them and closes the
// probes' clients. A clean shutdown returns nil.
func (a *app) run(ctx context.Context, extra ...runnable) error {
	defer func() {
		for _, p := range a.probes {
			p.Close()
		}
	}()
	g, ctx := errgroup.WithContext(ctx)
	all := append([]runnable{a.server, a.checker}, extra...)
	for _, f := range a.flows {
		all = append(all, f)
	}
	for _, n := range a.nodes {
		all = append(all, n)
	}
	if a.kafkaObs != nil {
		all = append(all, a.kafkaObs)
	}
	if a.cassObs != nil {
		all = append(all, a.cassObs)
	}
	for _, b := range a.busConns {
		all = append(all, b)
	}
	for _, g := range a.gates {
		all = append(all, g)
	}
	for _, r := range all {
		g.Go(func() error { return r.Run(ctx) })
	}
	return g.Wait()
}

// statusLine renders one region's dependency states for the console.
func statusLine(region string, rs []health.Result) string {
	s := region + ":"
	for _, r := range rs {
		if r.Region != region {
			continue
		}
		switch {
		case r.Up:
			s += fmt.Sprintf(" %s=up(%s)", r.Dependency, r.Latency.Round(100*time.Microsecond))
		case r.CheckedAt.IsZero():
			s += fmt.Sprintf(" %s=pending", r.Dependency)
		default:
			s += fmt.Sprintf(" %s=DOWN", r.Dependency)
		}
	}
	return s
}

func (a *app) setBus(region string, b *readiness.Bus) {
	a.busMu.Lock()
	defer a.busMu.Unlock()
	if a.buses == nil {
		a.buses = map[string]*readiness.Bus{}
	}
	a.buses[region] = b
}

func (a *app) bus(region string) *readiness.Bus {
	a.busMu.Lock()
	defer a.busMu.Unlock()
	return a.buses[region]
}
