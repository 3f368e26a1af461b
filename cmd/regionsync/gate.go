package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/regionsync/regionsync/internal/clients"
	"github.com/regionsync/regionsync/internal/config"
	"github.com/regionsync/regionsync/readiness"
	"github.com/regionsync/regionsync/readiness/gateclient"
	"github.com/regionsync/regionsync/readiness/gateserver"
	"github.com/regionsync/regionsync/topology"
)

// gateRules are the gate's rules from cfg.
func gateRules(cfg *config.Config) readiness.Rules {
	return readiness.Rules{MinFlipInterval: cfg.Readiness.Gate.MinFlipInterval.Std(), RequireSigned: len(cfg.Readiness.TrustedKeys) > 0}
}

// gateRunner serves the HTTP gate of region: once the region's NATS bus is
// connected it runs a gate client on the KV bucket, which the handlers use.
type gateRunner struct {
	a        *app
	region   string
	verifier *readiness.Verifier
	rules    readiness.Rules
	client   atomic.Pointer[gateclient.Client]
	etcd     *clientv3.Client
}

// addGate registers the HTTP gate (/v1/gate, /v1/regions, /v1/overrides)
// of region on the app's server.
func (a *app) addGate(cfg *config.Config, region string) error {
	r, _ := cfg.Region(region)
	_, verifier, err := readinessKeys(cfg)
	if err != nil {
		return err
	}
	ec, err := clients.Etcd(region, r.Etcd)
	if err != nil {
		return err
	}
	cli, err := clientv3.New(ec)
	if err != nil {
		return fmt.Errorf("region %q: gate etcd client: %w", region, err)
	}
	g := &gateRunner{a: a, region: region, verifier: verifier, rules: gateRules(cfg), etcd: cli}
	srv := gateserver.New(gateserver.Options{
		Client: g.client.Load, Bus: func() *readiness.Bus { return a.bus(region) },
		Etcd: cli, Keys: topology.NewKeys(cfg.EtcdPrefix), MaxOverride: cfg.Readiness.Gate.MaxOverride.Std(),
		Source: "regionsync://" + region + "/gate", Log: a.log,
	})
	srv.Register(a.server.Handle)
	a.gates = append(a.gates, g)
	return nil
}

func (g *gateRunner) Run(ctx context.Context) error {
	defer g.etcd.Close()
	for g.a.bus(g.region) == nil {
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(100 * time.Millisecond):
		}
	}
	bus := g.a.bus(g.region)
	c := gateclient.New(bus.KV(), gateclient.Options{Verifier: g.verifier, Rules: g.rules, Log: g.a.log, Conn: bus.Conn()})
	g.client.Store(c)
	return c.Run(ctx)
}

func newGateCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "gate", Short: "Ask the failover gate, or set and clear manual overrides"}
	var (
		configPath, region, from, to, url string
		timeout                           time.Duration
	)
	check := &cobra.Command{
		Use:   "check --from A --to B (--config FILE [--region R] | --url http://HOST:PORT)",
		Short: "May traffic move from A to B now? Exit 0 allowed, 3 denied",
		Long: `check answers like a router would: with --config it watches the readiness
KV bucket on NATS (the region's NATS, default the first region), verifies
signatures with the config's trusted keys and applies the gate's rules in
process; with --url it asks a running worker's HTTP gate. It prints the
decision with every reason, and exits 0 when allowed, 3 when denied.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var d readiness.Decision
			var err error
			if url != "" {
				d, err = askHTTPGate(cmd.Context(), url, from, to)
			} else {
				d, err = askKVGate(cmd.Context(), configPath, region, from, to, timeout)
			}
			if err != nil {
				return err
			}
			printDecision(cmd.OutOrStdout(), d)
			if !d.Allowed {
				return exitError{3}
			}
			return nil
		},
	}
	check.Flags().StringVarP(&configPath, "config", "c", "", "path of the YAML config")
	check.Flags().StringVar(&region, "region", "", "whose NATS to read (default: the first region)")
	check.Flags().StringVar(&url, "url", "", "base URL of a worker's HTTP gate instead of NATS")
	check.Flags().StringVar(&from, "from", "", "region traffic would move away from (required)")
	check.Flags().StringVar(&to, "to", "", "region traffic would move to (required)")
	check.Flags().DurationVar(&timeout, "timeout", 10*time.Second, "how long to wait for the readiness bucket")
	_ = check.MarkFlagRequired("from")
	_ = check.MarkFlagRequired("to")
	cmd.AddCommand(check, newOverrideCmd())
	return cmd
}

func printDecision(w interface{ Write([]byte) (int, error) }, d readiness.Decision) {
	verdict := "DENIED"
	if d.Allowed {
		verdict = "ALLOWED"
	}
	fmt.Fprintf(w, "%s → %s: %s (target %s)\n", d.From, d.To, verdict, d.TargetState)
	for _, r := range d.Reasons {
		fmt.Fprintf(w, "  - %s\n", r)
	}
}

func askHTTPGate(ctx context.Context, base, from, to string) (readiness.Decision, error) {
	u := strings.TrimSuffix(base, "/") + "/v1/gate?from=" + from + "&to=" + to
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return readiness.Decision{}, err
	}
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		return readiness.Decision{}, fmt.Errorf("gate %s: %w", u, err)
	}
	defer resp.Body.Close()
	var d readiness.Decision
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusConflict {
		var e struct{ Error string }
		_ = json.NewDecoder(resp.Body).Decode(&e)
		return d, fmt.Errorf("gate %s: %s: %s", u, resp.Status, e.Error)
	}
	return d, json.NewDecoder(resp.Body).Decode(&d)
}

func askKVGate(ctx context.Context, configPath, region, from, to string, timeout time.Duration) (readiness.Decision, error) {
	if configPath == "" {
		return readiness.Decision{}, fmt.Errorf("gate check needs --config FILE or --url URL")
	}
	cfg, err := config.Load(configPath)
	if err != nil {
		return readiness.Decision{}, err
	}
	r := cfg.Regions[0]
	if region != "" {
		var ok bool
		if r, ok = cfg.Region(region); !ok {
			return readiness.Decision{}, fmt.Errorf("--region %q: not in %s", region, configPath)
		}
	}
	_, verifier, err := readinessKeys(cfg)
	if err != nil {
		return readiness.Decision{}, err
	}
	nopts, err := clients.NATS(r.Name, r.NATS)
	if err != nil {
		return readiness.Decision{}, err
	}
	nc, err := nats.Connect(r.NATS.URL, nopts...)
	if err != nil {
		return readiness.Decision{}, fmt.Errorf("region %q nats %s: %w", r.Name, r.NATS.URL, err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return readiness.Decision{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	kv, err := js.KeyValue(ctx, readiness.Bucket)
	if err != nil {
		return readiness.Decision{}, fmt.Errorf("readiness bucket %s on %s: %w (has a worker published yet?)", readiness.Bucket, r.NATS.URL, err)
	}
	c := gateclient.New(kv, gateclient.Options{Verifier: verifier, Rules: gateRules(cfg), Conn: nc})
	done := make(chan struct{})
	go func() { defer close(done); _ = c.Run(ctx) }()
	for !c.Current() && ctx.Err() == nil {
		time.Sleep(20 * time.Millisecond)
	}
	d := c.Allowed(from, to)
	cancel()
	<-done
	if !d.Allowed && ctx.Err() != nil && len(c.View().Aggregates) == 0 {
		return d, fmt.Errorf("no readiness view from %s within %s", r.NATS.URL, timeout)
	}
	return d, nil
}

func newOverrideCmd() *cobra.Command {
	var (
		region, state, by, reason, url string
		dur                            time.Duration
	)
	cmd := &cobra.Command{
		Use:   "override --url http://HOST:PORT --region R (--state READY|NOT_READY --for 1h | --clear) --by WHO --reason WHY",
		Short: "Set or clear a manual override of a region's readiness (audited)",
		Long: `override asks a running worker's gate to set (or, with --clear, remove) a
manual override of region R: READY lets traffic move there whatever the
verdicts say, NOT_READY keeps it away, until it expires (at most
readiness.gate.max_override). Who and why are required; every change is
audited on the REGIONSYNC_AUDIT stream, and refused when it cannot be.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			clear, _ := cmd.Flags().GetBool("clear")
			base := strings.TrimSuffix(url, "/") + "/v1/overrides/" + region
			var req *http.Request
			var err error
			if clear {
				req, err = http.NewRequestWithContext(cmd.Context(), http.MethodDelete, base+"?by="+by+"&reason="+strings.ReplaceAll(reason, " ", "+"), nil)
			} else {
				body, _ := json.Marshal(gateserver.OverrideRequest{State: readiness.State(state), By: by, Reason: reason, For: dur.String()})
				req, err = http.NewRequestWithContext(cmd.Context(), http.MethodPut, base, strings.NewReader(string(body)))
			}
			if err != nil {
				return err
			}
			resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			var out json.RawMessage
			_ = json.NewDecoder(resp.Body).Decode(&out)
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("override: %s: %s", resp.Status, out)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s\n", out)
			return nil
		},
	}
	cmd.Flags().StringVar(&url, "url", "", "base URL of a worker's HTTP gate (required)")
	cmd.Flags().StringVar(&region, "region", "", "region to override (required)")
	cmd.Flags().StringVar(&state, "state", "", "READY or NOT_READY")
	cmd.Flags().DurationVar(&dur, "for", time.Hour, "how long the override lasts")
	cmd.Flags().Bool("clear", false, "remove the region's override")
	cmd.Flags().StringVar(&by, "by", "", "who (required)")
	cmd.Flags().StringVar(&reason, "reason", "", "why (required)")
	for _, f := range []string{"url", "region", "by", "reason"} {
		_ = cmd.MarkFlagRequired(f)
	}
	return cmd
}

func newKeysCmd() *cobra.Command {
	var dir, keyID string
	gen := &cobra.Command{
		Use:   "generate --dir DIR --key-id ID",
		Short: "Write an ed25519 key pair for signing verdicts (ID.pem private, ID.pub public)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			priv, pub, err := readiness.GenerateKeyPEM()
			if err != nil {
				return err
			}
			privPath, pubPath := filepath.Join(dir, keyID+".pem"), filepath.Join(dir, keyID+".pub")
			if err := os.WriteFile(privPath, priv, 0o600); err != nil {
				return err
			}
			if err := os.WriteFile(pubPath, pub, 0o644); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "readiness:\n  signing_key:\n    key_id: %s\n    private_key_file: %s\n  trusted_keys:\n    %s: %s\n", keyID, privPath, keyID, pubPath)
			return nil
		},
	}
	gen.Flags().StringVar(&dir, "dir", ".", "where to write the files")
	gen.Flags().StringVar(&keyID, "key-id", "", "key id (required)")
	_ = gen.MarkFlagRequired("key-id")
	cmd := &cobra.Command{Use: "keys", Short: "Manage the keys verdicts are signed with"}
	cmd.AddCommand(gen)
	return cmd
}
