// Command router is an example router integration: it follows regionsync's
// readiness in process (readiness/gateclient on the JetStream KV bucket,
// signatures verified) and renders an Istio VirtualService whose route
// weights send all traffic to the active region. When the active region
// stops being READY it fails over to the first region the gate allows
// (READY by majority, not expired, wait period respected), records the move
// with the HTTP gate (which applies the wait period everywhere) and writes
// the new YAML — the failover pattern of seeds/000, where an orchestrator
// flips Istio weights. Apply the output with kubectl or a GitOps tool.
//
//	go run ./deploy/istio/router --nats nats://127.0.0.1:4222 --gate http://127.0.0.1:9464 \
//	    --regions east,west --host payments.prod.svc.cluster.local --out vs.yaml
package main

import (
	"context"
	"crypto/ed25519"
	"flag"
	"fmt"
	"log"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/regionsync/regionsync/readiness"
	"github.com/regionsync/regionsync/readiness/gateclient"
)

func main() {
	natsURL := flag.String("nats", "nats://127.0.0.1:4222", "NATS URL holding the regionsync_readiness bucket")
	gateURL := flag.String("gate", "", "base URL of a worker's HTTP gate, to record moves (and as fallback)")
	regions := flag.String("regions", "east,west", "regions in failover order; the first is active at start")
	host := flag.String("host", "payments.prod.svc.cluster.local", "service host")
	name := flag.String("name", "payments", "VirtualService name")
	ns := flag.String("namespace", "default", "namespace")
	out := flag.String("out", "-", "file to write the YAML to (- for stdout)")
	keys := flag.String("trusted-keys", "", "id=public-key.pem,... (verify signatures)")
	interval := flag.Duration("interval", time.Second, "how often to decide")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *natsURL, *gateURL, strings.Split(*regions, ","), Spec{Name: *name, Namespace: *ns, Host: *host}, *out, *keys, *interval); err != nil {
		log.Fatalf("router: %v", err)
	}
}

func run(ctx context.Context, natsURL, gateURL string, regions []string, spec Spec, out, keys string, every time.Duration) error {
	var verifier *readiness.Verifier
	if keys != "" {
		verifier = &readiness.Verifier{Keys: map[string]ed25519.PublicKey{}}
		for _, kv := range strings.Split(keys, ",") {
			id, path, _ := strings.Cut(kv, "=")
			k, err := readiness.LoadPublicKey(path)
			if err != nil {
				return err
			}
			verifier.Keys[id] = k
		}
	}
	nc, err := nats.Connect(natsURL, nats.MaxReconnects(-1))
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	kv, err := js.KeyValue(ctx, readiness.Bucket)
	if err != nil {
		return fmt.Errorf("bucket %s: %w", readiness.Bucket, err)
	}
	c := gateclient.New(kv, gateclient.Options{Verifier: verifier, Fallback: gateURL, Conn: nc})
	go func() { _ = c.Run(ctx) }()
	active, last := regions[0], ""
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		reason := "active region " + active + " is " + string(c.State(active))
		if c.State(active) != readiness.Ready {
			for _, r := range regions {
				if r == active {
					continue
				}
				d := c.Allowed(active, r)
				if d.Allowed && record(gateURL, active, r) == nil {
					reason = fmt.Sprintf("failed over %s → %s: %s", active, r, strings.Join(d.Reasons, "; "))
					active = r
					break
				}
				reason += fmt.Sprintf("; no failover to %s: %s", r, strings.Join(d.Reasons, "; "))
			}
		}
		spec.Reason = reason
		y, err := Render(spec, Weights(regions, active))
		if err != nil {
			return err
		}
		if string(y) != last {
			if err := write(out, y); err != nil {
				return err
			}
			last = string(y)
			log.Printf("routes: all traffic to %s (%s)", active, reason)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// record tells the HTTP gate the move happened (POST), so its wait period
// applies to every router; without a gate URL the move is not recorded.
func record(gateURL, from, to string) error {
	if gateURL == "" {
		return nil
	}
	u := strings.TrimSuffix(gateURL, "/") + "/v1/gate?from=" + url.QueryEscape(from) + "&to=" + url.QueryEscape(to) + "&by=istio-router"
	resp, err := http.Post(u, "application/json", nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("gate refused the move: %s", resp.Status)
	}
	return nil
}

func write(path string, b []byte) error {
	if path == "-" {
		_, err := os.Stdout.Write(b)
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
