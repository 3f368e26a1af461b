// Package gateclient is the failover gate for routers, in process: it
// watches the readiness KV bucket on NATS JetStream, verifies every
// aggregate's signature as it arrives, and answers Allowed(from, to) from
// memory (a map lookup and the gate's rules, well under a microsecond)
// with the same rules as regionsync's HTTP gate. Expired verdicts count as
// NOT_READY. While the watch is not current (NATS down, not yet synced) it
// asks the HTTP gate when one is configured, and otherwise decides from
// what it last saw, which expiry turns into NOT_READY within a verdict TTL.
package gateclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/regionsync/regionsync/readiness"
)

// Options configure a Client.
type Options struct {
	// Verifier checks aggregate signatures; with it, unsigned or wrongly
	// signed aggregates are dropped (the region reads as NOT_READY).
	Verifier *readiness.Verifier
	// Rules of the gate (the wait period between flips).
	Rules readiness.Rules
	// Fallback is the base URL of an HTTP gate (e.g. http://host:9464),
	// asked while the watch is not current. Optional.
	Fallback   string
	HTTPClient *http.Client
	Log        *slog.Logger
	// Conn is the NATS connection under the bucket; when set, the view is
	// current only while it is connected (a JetStream watch does not end
	// when the server goes away).
	Conn *nats.Conn
}

// Client keeps the latest verified view of the bucket.
type Client struct {
	kv   jetstream.KeyValue
	opts Options
	view atomic.Pointer[readiness.View]
	// current: the watch delivered every initial value and is running.
	current  atomic.Bool
	rejected atomic.Int64

	mu sync.Mutex // serialises view updates (copy on write)
}

// New returns a client of kv; Run starts the watch.
func New(kv jetstream.KeyValue, opts Options) *Client {
	if opts.HTTPClient == nil {
		opts.HTTPClient = &http.Client{Timeout: 2 * time.Second}
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	c := &Client{kv: kv, opts: opts}
	c.view.Store(&readiness.View{Aggregates: map[string]readiness.Aggregate{}, Overrides: map[string]*readiness.Override{}})
	return c
}

// Run watches the bucket until ctx ends, re-establishing the watch when it
// breaks; it returns nil when ctx ends.
func (c *Client) Run(ctx context.Context) error {
	for wait := 200 * time.Millisecond; ctx.Err() == nil; wait = min(2*wait, 5*time.Second) {
		err := c.watch(ctx)
		c.current.Store(false)
		if ctx.Err() != nil {
			return nil
		}
		c.opts.Log.Warn("gateclient: readiness watch ended; re-watching", "err", err, "in", wait)
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
	}
	return nil
}

func (c *Client) watch(ctx context.Context) error {
	w, err := c.kv.WatchAll(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = w.Stop() }()
	for e := range w.Updates() {
		if e == nil { // every current value delivered
			c.current.Store(true)
			continue
		}
		c.apply(e)
	}
	return errors.New("watch closed")
}

// apply folds one KV entry into a copy of the view.
func (c *Client) apply(e jetstream.KeyValueEntry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.view.Load()
	nv := &readiness.View{Aggregates: make(map[string]readiness.Aggregate, len(old.Aggregates)),
		Overrides: make(map[string]*readiness.Override, len(old.Overrides)), LastFlip: old.LastFlip}
	for k, v := range old.Aggregates {
		nv.Aggregates[k] = v
	}
	for k, v := range old.Overrides {
		nv.Overrides[k] = v
	}
	key := e.Key()
	deleted := e.Operation() != jetstream.KeyValuePut
	switch {
	case key == readiness.FlipKey:
		nv.LastFlip = nil
		if !deleted {
			var f readiness.Flip
			if err := json.Unmarshal(e.Value(), &f); err != nil {
				c.reject(key, e.Revision(), err)
				return
			}
			nv.LastFlip = &f
		}
	case strings.HasPrefix(key, readiness.OverrideKeyPrefix):
		region := strings.TrimPrefix(key, readiness.OverrideKeyPrefix)
		delete(nv.Overrides, region)
		if !deleted {
			var o readiness.Override
			if err := json.Unmarshal(e.Value(), &o); err != nil || o.Region != region {
				c.reject(key, e.Revision(), fmt.Errorf("override: %v (region %q)", err, o.Region))
				return
			}
			nv.Overrides[region] = &o
		}
	default:
		delete(nv.Aggregates, key)
		if !deleted {
			var a readiness.Aggregate
			err := json.Unmarshal(e.Value(), &a)
			switch {
			case err != nil:
			case a.Region != key:
				err = fmt.Errorf("aggregate names region %q", a.Region)
			case c.opts.Verifier != nil:
				err = c.opts.Verifier.VerifyAggregate(a)
			}
			if err != nil {
				c.reject(key, e.Revision(), err)
				c.view.Store(nv) // the region now reads as missing: NOT_READY
				return
			}
			nv.Aggregates[key] = a
		}
	}
	c.view.Store(nv)
}

func (c *Client) reject(key string, rev uint64, err error) {
	c.rejected.Add(1)
	c.opts.Log.Warn("gateclient: value rejected", "bucket", readiness.Bucket, "key", key, "revision", rev, "err", err)
}

// Rejected counts values dropped as malformed or wrongly signed.
func (c *Client) Rejected() int64 { return c.rejected.Load() }

// Current reports whether the watch is synced and running (and, with
// Options.Conn, NATS connected).
func (c *Client) Current() bool {
	return c.current.Load() && (c.opts.Conn == nil || c.opts.Conn.IsConnected())
}

// View returns the latest verified view (do not modify it).
func (c *Client) View() *readiness.View { return c.view.Load() }

// State is region's effective state now: NOT_READY when missing or expired.
func (c *Client) State(region string) readiness.State {
	d := readiness.Decide("", region, *c.view.Load(), readiness.Rules{}, time.Now())
	return d.TargetState
}

// Allowed answers from memory while the watch is current; otherwise from
// the HTTP gate when configured (and from memory if that fails too).
func (c *Client) Allowed(from, to string) readiness.Decision {
	if !c.Current() && c.opts.Fallback != "" {
		if d, err := c.askGate(from, to); err == nil {
			return d
		}
	}
	return c.Decide(from, to, time.Now())
}

// Decide applies the gate's rules to the in-memory view at now.
func (c *Client) Decide(from, to string, now time.Time) readiness.Decision {
	return readiness.Decide(from, to, *c.view.Load(), c.opts.Rules, now)
}

func (c *Client) askGate(from, to string) (readiness.Decision, error) {
	u := strings.TrimSuffix(c.opts.Fallback, "/") + "/v1/gate?from=" + url.QueryEscape(from) + "&to=" + url.QueryEscape(to)
	resp, err := c.opts.HTTPClient.Get(u)
	if err != nil {
		return readiness.Decision{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusConflict {
		return readiness.Decision{}, fmt.Errorf("gate %s: %s", u, resp.Status)
	}
	var d readiness.Decision
	return d, json.NewDecoder(resp.Body).Decode(&d)
}
