package topology

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Topology is regionsync's coordination state at one revision: the region
// registry, registered workers, each region's leader, the malformed values
// found, and (when asked for) etcd's health.
type Topology struct {
	Prefix string
	// Revision the registry, workers and leaders were read at. For a
	// Node's live view it is the highest revision of its three watches.
	Revision int64
	// Stale: a linearizable read failed and this state was read
	// serializably from whichever member answered; it may be old.
	Stale bool
	// ReadError is why the linearizable read failed (with Stale), or why
	// nothing could be read at all.
	ReadError string
	// Regions of the registry, sorted by name.
	Regions []RegionSpec
	// Workers registered, sorted by region then id.
	Workers []Worker
	// Leaders, one per region that has election keys, sorted by region.
	Leaders []LeaderInfo
	// Errors are the malformed values, ignored, sorted by key.
	Errors []ValueError
	// Health of etcd as seen from the reading process; nil if not checked.
	Health *Health
}

// ErrNoLeader: a region has no elected leader.
var ErrNoLeader = errors.New("no leader")

// LeaderInfo is a region's current leader: the election key with the lowest
// create revision.
type LeaderInfo struct {
	Region string
	Worker string
	Key    string
	// CreateRevision of the election key, which the leader's fence compares.
	CreateRevision int64
	Lease          int64
	// Candidates in the election, the leader included.
	Candidates int
}

// Leader returns region's leader, or an error wrapping ErrNoLeader.
func (t Topology) Leader(region string) (LeaderInfo, error) {
	for _, l := range t.Leaders {
		if l.Region == region {
			return l, nil
		}
	}
	return LeaderInfo{}, fmt.Errorf("topology: region %q: %w", region, ErrNoLeader)
}

// WorkersOf returns the workers registered in region.
func (t Topology) WorkersOf(region string) []Worker {
	var out []Worker
	for _, w := range t.Workers {
		if w.Region == region {
			out = append(out, w)
		}
	}
	return out
}

// build assembles a Topology from decoded items.
func build(prefix string, rev int64, regions map[string]RegionSpec, workers map[string]Worker, cands map[string]Candidate, errs []ValueError) Topology {
	t := Topology{Prefix: prefix, Revision: rev, Errors: errs}
	for _, k := range sortedKeys(regions) {
		t.Regions = append(t.Regions, regions[k])
	}
	for _, k := range sortedKeys(workers) {
		t.Workers = append(t.Workers, workers[k])
	}
	byRegion := map[string][]Candidate{}
	for _, c := range cands {
		byRegion[c.Region] = append(byRegion[c.Region], c)
	}
	for _, r := range sortedKeys(byRegion) {
		cs := byRegion[r]
		sort.Slice(cs, func(i, j int) bool { return cs[i].CreateRevision < cs[j].CreateRevision })
		c := cs[0]
		t.Leaders = append(t.Leaders, LeaderInfo{Region: r, Worker: c.Worker, Key: c.Key, CreateRevision: c.CreateRevision, Lease: c.Lease, Candidates: len(cs)})
	}
	sort.Slice(t.Errors, func(i, j int) bool { return t.Errors[i].Key < t.Errors[j].Key })
	return t
}

// ShowOptions tune Show.
type ShowOptions struct {
	// Observer names the region the caller reads from, in Health.
	Observer string
	// Timeout of the linearizable read and of each health probe. Default 3 s.
	Timeout time.Duration
	// NoHealth skips the etcd health check (Topology.Health stays nil).
	NoHealth bool
	// Log receives nothing on success; nil discards.
	Log *slog.Logger
}

// Show reads the registry, workers and leaders at one revision (one
// transaction) and checks etcd's health, for `regionsync topology show`.
//
// If the linearizable read fails (no quorum), Show reads serializably from
// any member that answers and marks the result Stale, with ReadError saying
// why; if that fails too, the returned error says so and the Topology holds
// only the Health. Health is checked in every case (unless NoHealth), so an
// outage is described rather than just failing. Malformed values are listed
// in Errors, never fatal.
func Show(ctx context.Context, cli *clientv3.Client, prefix string, o ShowOptions) (Topology, error) {
	if o.Timeout <= 0 {
		o.Timeout = 3 * time.Second
	}
	log := orDiscard(o.Log)
	keys := NewKeys(prefix)
	var health *Health
	done := make(chan struct{})
	if !o.NoHealth {
		go func() {
			defer close(done)
			h := CheckHealth(ctx, cli, o.Observer, o.Timeout, nil, log)
			health = &h
		}()
	} else {
		close(done)
	}
	t, err := read(ctx, cli, keys, o.Timeout, false)
	if err != nil {
		lerr := err
		t, err = read(ctx, cli, keys, o.Timeout, true)
		if err == nil {
			t.Stale, t.ReadError = true, fmt.Sprintf("linearizable read failed (%v); showing a serializable read from one member", lerr)
		} else {
			t = Topology{Prefix: keys.Prefix, ReadError: fmt.Sprintf("linearizable read: %v; serializable read: %v", lerr, err)}
			err = fmt.Errorf("topology: read %s: %s", keys.Prefix, t.ReadError)
		}
	}
	<-done
	t.Health = health
	return t, err
}

func read(ctx context.Context, cli *clientv3.Client, keys Keys, timeout time.Duration, serializable bool) (Topology, error) {
	rctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	opts := []clientv3.OpOption{clientv3.WithPrefix()}
	if serializable {
		opts = append(opts, clientv3.WithSerializable())
	}
	prefixes := []string{keys.Regions(), keys.Workers(), keys.Leaders()}
	var ops []clientv3.Op
	for _, p := range prefixes {
		ops = append(ops, clientv3.OpGet(p, opts...))
	}
	resp, err := cli.Txn(rctx).Then(ops...).Commit()
	if err != nil {
		return Topology{}, err
	}
	regions, workers, cands := map[string]RegionSpec{}, map[string]Worker{}, map[string]Candidate{}
	var errs []ValueError
	for i, r := range resp.Responses {
		for _, kv := range r.GetResponseRange().Kvs {
			x := toKV(prefixes[i], kv.Key, kv.Value, kv.CreateRevision, kv.ModRevision, kv.Lease)
			var err error
			switch i {
			case 0:
				var s RegionSpec
				if s, err = RegionDecoder(x); err == nil {
					regions[x.Rel] = s
				}
			case 1:
				var w Worker
				if w, err = WorkerDecoder(x); err == nil {
					workers[x.Rel] = w
				}
			case 2:
				var c Candidate
				if c, err = CandidateDecoder(x); err == nil {
					cands[x.Rel] = c
				}
			}
			if err != nil {
				errs = append(errs, ValueError{Key: x.Key, Revision: x.ModRevision, Err: err})
			}
		}
	}
	return build(keys.Prefix, resp.Header.Revision, regions, workers, cands, errs), nil
}

// WriteText renders t for a terminal: a table of regions (role, leader,
// workers), a table of workers, etcd's health as a table of members, and the
// malformed values.
func (t Topology) WriteText(w io.Writer) error {
	var b strings.Builder
	src := "linearizable read"
	if t.Stale {
		src = "STALE serializable read"
	}
	if t.Revision != 0 {
		fmt.Fprintf(&b, "etcd prefix %s at revision %d (%s)\n", t.Prefix, t.Revision, src)
	} else {
		fmt.Fprintf(&b, "etcd prefix %s: not read\n", t.Prefix)
	}
	if t.ReadError != "" {
		fmt.Fprintf(&b, "read error: %s\n", t.ReadError)
	}
	b.WriteString("\n")
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "REGION\tROLE\tLEADER\tWORKERS\tENDPOINTS")
	names := map[string]bool{}
	for _, r := range t.Regions {
		names[r.Name] = true
	}
	for _, wk := range t.Workers {
		names[wk.Region] = true
	}
	for _, l := range t.Leaders {
		names[l.Region] = true
	}
	roles := map[string]RegionSpec{}
	for _, r := range t.Regions {
		roles[r.Name] = r
	}
	for _, name := range sortedKeys(names) {
		spec, ok := roles[name]
		role := string(spec.Role)
		if !ok {
			role = "(not in registry)"
		}
		leader := "-"
		if l, err := t.Leader(name); err == nil {
			leader = l.Worker
		}
		var ids []string
		for _, wk := range t.WorkersOf(name) {
			ids = append(ids, wk.ID)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", name, role, leader, dash(strings.Join(ids, ",")), dash(endpointsText(spec.Endpoints)))
	}
	_ = tw.Flush()
	if len(t.Workers) > 0 {
		b.WriteString("\n")
		tw = tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "WORKER\tREGION\tLEADER\tHOST\tPID\tVERSION\tSTARTED\tLEASE")
		for _, wk := range t.Workers {
			lead := ""
			if l, err := t.Leader(wk.Region); err == nil && l.Lease == wk.Lease && l.Worker == wk.ID {
				lead = "*"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\t%x\n", wk.ID, wk.Region, dash(lead), dash(wk.Hostname), wk.PID, dash(wk.Version),
				wk.StartedAt.UTC().Format(time.RFC3339), wk.Lease)
		}
		_ = tw.Flush()
	}
	if t.Health != nil {
		b.WriteString("\n")
		t.Health.writeText(&b)
	}
	if len(t.Errors) > 0 {
		fmt.Fprintf(&b, "\nmalformed values (ignored):\n")
		for _, e := range t.Errors {
			fmt.Fprintf(&b, "  %s\n", e.Error())
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// Summary is one line about region for a status display:
// "leader=east-1 workers=2 (east-1,east-2)".
func (t Topology) Summary(region string) string {
	leader := "none"
	if l, err := t.Leader(region); err == nil {
		leader = l.Worker
	}
	var ids []string
	for _, w := range t.WorkersOf(region) {
		ids = append(ids, w.ID)
	}
	s := fmt.Sprintf("leader=%s workers=%d", leader, len(ids))
	if len(ids) > 0 {
		s += " (" + strings.Join(ids, ",") + ")"
	}
	if len(t.Errors) > 0 {
		s += fmt.Sprintf(" malformed=%d", len(t.Errors))
	}
	return s
}

func endpointsText(e Endpoints) string {
	var parts []string
	for _, x := range []struct {
		name string
		v    []string
	}{{"kafka", e.Kafka}, {"cassandra", e.Cassandra}, {"etcd", e.Etcd}, {"nats", e.NATS}} {
		if len(x.v) > 0 {
			parts = append(parts, x.name+"="+strings.Join(x.v, ","))
		}
	}
	return strings.Join(parts, " ")
}

func (h Health) writeText(b *strings.Builder) {
	fmt.Fprintf(b, "etcd as seen from %q: %s\n", h.Observer, strings.TrimPrefix(h.Summary(), "etcd "))
	if h.MembersError != "" {
		fmt.Fprintf(b, "member list: %s\n", h.MembersError)
	}
	tw := tabwriter.NewWriter(b, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "MEMBER\tID\tENDPOINT\tSTATUS\tLEADER\tRAFT TERM\tRAFT INDEX\tAPPLIED\tSTATUS LATENCY\tREAD\tERROR")
	for _, m := range h.Members {
		status, read, lead := "down", "fail", ""
		if m.Up {
			status = "up"
		}
		if m.ReadOK {
			read = "ok " + m.ReadLatency.Round(10*time.Microsecond).String()
		}
		if m.IsLeader {
			lead = "*"
		}
		errs := m.Error
		if m.ReadError != "" && m.ReadError != m.Error {
			errs = strings.TrimPrefix(errs+"; read: "+m.ReadError, "; ")
		}
		if len(m.Alarms) > 0 {
			errs = strings.TrimPrefix(errs+"; alarms: "+strings.Join(m.Alarms, ","), "; ")
		}
		lat := "-"
		if m.Up {
			lat = m.StatusLatency.Round(10 * time.Microsecond).String()
		}
		fmt.Fprintf(tw, "%s\t%x\t%s\t%s\t%s\t%d\t%d\t%d\t%s\t%s\t%s\n", dash(m.Name), m.ID, dash(m.Endpoint), status, dash(lead),
			m.RaftTerm, m.RaftIndex, m.RaftAppliedIndex, lat, read, dash(errs))
	}
	_ = tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
