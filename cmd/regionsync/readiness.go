package main

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/regionsync/regionsync/internal/clients"
	"github.com/regionsync/regionsync/internal/config"
	"github.com/regionsync/regionsync/readiness"
	"github.com/regionsync/regionsync/replicate"
	"github.com/regionsync/regionsync/topology"
)

// readinessKeys loads the signing key and the trusted keys of cfg.
func readinessKeys(cfg *config.Config) (*readiness.Signer, *readiness.Verifier, error) {
	var signer *readiness.Signer
	if k := cfg.Readiness.SigningKey; k.PrivateKeyFile != "" {
		s, err := readiness.LoadSigner(k.KeyID, k.PrivateKeyFile)
		if err != nil {
			return nil, nil, err
		}
		signer = s
	}
	verifier, err := readiness.LoadVerifier(cfg.Readiness.TrustedKeys)
	return signer, verifier, err
}

// expectedStores says which stores must report into each region: kafka
// when a flow targets it, cassandra when it and another region have
// Cassandra.
func expectedStores(cfg *config.Config) func(string) []string {
	out := map[string][]string{}
	for _, f := range cfg.Flows {
		if !slices.Contains(out[f.Target], replicate.StoreKafka) {
			out[f.Target] = append(out[f.Target], replicate.StoreKafka)
		}
	}
	var withCassandra []string
	for _, r := range cfg.Regions {
		if len(r.Cassandra.ContactPoints) > 0 {
			withCassandra = append(withCassandra, r.Name)
		}
	}
	if len(withCassandra) > 1 {
		for _, r := range withCassandra {
			out[r] = append(out[r], replicate.StoreCassandra)
		}
	}
	return func(region string) []string { return out[region] }
}

// statuses is every replication status this process measures.
func (a *app) statuses() []replicate.Status {
	var out []replicate.Status
	if a.kafkaObs != nil {
		out = append(out, a.kafkaObs.Statuses()...)
	}
	if a.cassObs != nil {
		out = append(out, a.cassObs.Statuses()...)
	}
	return out
}

// addReadiness gives every topology node of the process a readiness
// publisher, run as its region's leader task, and a connector that
// attaches the region's NATS bus once NATS answers.
func (a *app) addReadiness(cfg *config.Config) error {
	signer, verifier, err := readinessKeys(cfg)
	if err != nil {
		return err
	}
	var regions []string
	for _, r := range cfg.Regions {
		regions = append(regions, r.Name)
	}
	if a.publishers == nil {
		a.publishers = map[string]*readiness.Publisher{}
	}
	for region, n := range a.nodes {
		r, _ := cfg.Region(region)
		p, err := readiness.NewPublisher(readiness.PublisherOptions{
			Observer: region, Keys: topology.NewKeys(cfg.EtcdPrefix), Regions: regions,
			ExpectedStores: expectedStores(cfg), Budgets: cfg.BudgetsFor, Signer: signer, Verifier: verifier,
			Interval: cfg.BudgetsFor(region).EvaluateInterval.Std(),
		}, readiness.Sources{Statuses: a.statuses, Topology: n.Topology}, a.reg, a.log)
		if err != nil {
			return err
		}
		nopts, err := clients.NATS(region, r.NATS)
		if err != nil {
			return err
		}
		n.AddLeaderTask("readiness", p.Task)
		a.publishers[region] = p
		a.busConns = append(a.busConns, &busConnector{region: region, worker: n.WorkerID(), url: r.NATS.URL, opts: nopts, pub: p, app: a})
	}
	return nil
}

// busConnector connects to a region's NATS, announces this worker there
// (heartbeats), watches every worker's heartbeats for the publisher, opens
// the readiness bus (retrying until NATS answers) and hands it to the
// publisher; it keeps the connection until ctx ends. nats.go reconnects by itself; the
// publisher writes the KV bucket every interval, so a reconnected bus gets
// the latest verdict at once.
type busConnector struct {
	region string
	worker string
	url    string
	opts   []nats.Option
	pub    *readiness.Publisher
	app    *app
}

func (b *busConnector) Run(ctx context.Context) error {
	opts := append(append([]nats.Option(nil), b.opts...), nats.RetryOnFailedConnect(true))
	nc, err := nats.Connect(b.url, opts...)
	if err != nil {
		return fmt.Errorf("region %q nats %s: %w", b.region, b.url, err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	live, err := readiness.WatchLiveness(nc)
	if err != nil {
		return fmt.Errorf("region %q nats: worker heartbeats: %w", b.region, err)
	}
	b.pub.SetLiveness(live)
	go readiness.Beat(ctx, nc, b.region, b.worker)
	for wait := 500 * time.Millisecond; ; wait = min(2*wait, 10*time.Second) {
		octx, cancel := context.WithTimeout(ctx, 10*time.Second)
		bus, err := readiness.OpenBus(octx, js, 1)
		cancel()
		if err == nil {
			b.pub.SetBus(bus)
			b.app.setBus(b.region, bus)
			break
		}
		b.app.log.Warn("readiness: NATS bus not ready; retrying", "region", b.region, "url", b.url, "err", err, "in", wait)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
	}
	<-ctx.Done()
	return nil
}

// readinessStatus renders the aggregated state of region for the console:
// "verdict=READY" from the freshest aggregate any publisher of the process
// computed.
func (a *app) readinessStatus(region string) string {
	var best readiness.Aggregate
	for _, p := range a.publishers {
		if ag, ok := p.Latest()[region]; ok && ag.ObservedAt.After(best.ObservedAt) {
			best = ag
		}
	}
	if best.State == "" {
		return "verdict=pending"
	}
	s := "verdict=" + string(best.EffectiveState(time.Now()))
	if best.State != readiness.Ready {
		var failing []string
		for _, v := range best.Verdicts {
			for _, c := range v.Checks {
				if c.Result != replicate.Pass {
					failing = append(failing, c.Store+"/"+c.Name)
				}
			}
		}
		sort.Strings(failing)
		if len(failing) > 0 {
			s += "(" + strings.Join(slices.Compact(failing), ",") + ")"
		}
	}
	return s
}
