package topology

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// AnyRevision makes Apply write without comparing revisions.
const AnyRevision int64 = -1

// ErrConflict: Apply's compare-and-swap failed because the registry changed
// after the expected revision.
var ErrConflict = errors.New("region registry changed since the expected revision")

// ConflictError is Apply's error when its compare-and-swap failed. It wraps
// ErrConflict.
type ConflictError struct {
	// Expected is the revision the caller expected the registry to be at.
	Expected int64
	// Revision of the cluster when the write was refused.
	Revision int64
	// Changed are the region keys modified after Expected, with their mod
	// revisions.
	Changed map[string]int64
}

// Error names the revisions and the changed regions.
func (e *ConflictError) Error() string {
	var parts []string
	for _, k := range sortedKeys(e.Changed) {
		parts = append(parts, fmt.Sprintf("%s (revision %d)", k, e.Changed[k]))
	}
	return fmt.Sprintf("topology: apply: %v: expected revision %d, cluster at %d; changed since: %s; read the registry again (topology show) and retry",
		ErrConflict, e.Expected, e.Revision, strings.Join(parts, ", "))
}

// Unwrap returns ErrConflict.
func (e *ConflictError) Unwrap() error { return ErrConflict }

// maxTxnOps is etcd's default --max-txn-ops.
const maxTxnOps = 128

// Apply writes specs to <prefix>regions/<name> in one transaction and returns
// the revision of the write.
//
// With expectedRevision >= 0 the write is a compare-and-swap: it happens
// only if no key under <prefix>regions/ was created or modified after
// expectedRevision (typically Topology.Revision from a Show just before);
// 0 means "the registry must be empty". Otherwise nothing is written and the
// error is a *ConflictError (errors.Is(err, ErrConflict)) listing the regions
// changed since. A deletion after expectedRevision is not detected (a
// deleted key leaves no revision to compare). AnyRevision writes
// unconditionally.
//
// Specs are validated first (every problem is reported, nothing written).
// Regions not in specs are left as they are.
func Apply(ctx context.Context, cli *clientv3.Client, prefix string, specs []RegionSpec, expectedRevision int64) (int64, error) {
	if len(specs) == 0 {
		return 0, errors.New("topology: apply: no regions given")
	}
	if len(specs) > maxTxnOps {
		return 0, fmt.Errorf("topology: apply: %d regions exceed etcd's %d operations per transaction", len(specs), maxTxnOps)
	}
	keys := NewKeys(prefix)
	var p problems
	var ops []clientv3.Op
	seen := map[string]bool{}
	for i, s := range specs {
		val, err := MarshalRegionSpec(s)
		var ve *ValidationError
		if errors.As(err, &ve) {
			for _, line := range ve.Problems {
				p.add(fmt.Sprintf("regions[%d].%s", i, line))
			}
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("topology: apply: regions[%d]: %w", i, err)
		}
		if seen[s.Name] {
			p.addf(fmt.Sprintf("regions[%d].name", i), "duplicate region %q", s.Name)
		}
		seen[s.Name] = true
		ops = append(ops, clientv3.OpPut(keys.Region(s.Name), string(val)))
	}
	if err := p.err(); err != nil {
		return 0, fmt.Errorf("topology: apply: %w", err)
	}
	txn := cli.Txn(ctx)
	if expectedRevision >= 0 {
		txn = txn.If(clientv3.Compare(clientv3.ModRevision(keys.Regions()), "<", expectedRevision+1).WithPrefix())
	}
	resp, err := txn.Then(ops...).Else(clientv3.OpGet(keys.Regions(), clientv3.WithPrefix(), clientv3.WithKeysOnly())).Commit()
	if err != nil {
		return 0, fmt.Errorf("topology: apply %d regions under %s: %w", len(specs), keys.Regions(), err)
	}
	if !resp.Succeeded {
		ce := &ConflictError{Expected: expectedRevision, Revision: resp.Header.Revision, Changed: map[string]int64{}}
		for _, kv := range resp.Responses[0].GetResponseRange().Kvs {
			if kv.ModRevision > expectedRevision {
				ce.Changed[strings.TrimPrefix(string(kv.Key), keys.Regions())] = kv.ModRevision
			}
		}
		return 0, ce
	}
	return resp.Header.Revision, nil
}

// Worker is a registered worker: its presence value and key.
type Worker struct {
	WorkerInfo
	Key   string
	Lease int64
}

// Candidate is one key of a region's election (concurrency.Election under
// <prefix>leaders/<region>/); the one with the lowest create revision leads.
type Candidate struct {
	Region         string
	Worker         string // the key's value: the campaigning worker's id
	Key            string
	CreateRevision int64
	Lease          int64
}

// RegionDecoder decodes <prefix>regions/<name> values (Watcher items are
// keyed by region name).
func RegionDecoder(kv KV) (RegionSpec, error) {
	if strings.Contains(kv.Rel, "/") {
		return RegionSpec{}, fmt.Errorf("%w: key is not <prefix>regions/<region>", ErrMalformedValue)
	}
	return DecodeRegionSpec(kv.Rel, kv.Value)
}

// WorkerDecoder decodes presence values (items keyed "<region>/<id>").
func WorkerDecoder(kv KV) (Worker, error) {
	region, id, err := splitRel(kv.Rel)
	if err != nil {
		return Worker{}, fmt.Errorf("%w: %v", ErrMalformedValue, err)
	}
	w, err := DecodeWorkerInfo(region, id, kv.Value)
	if err != nil {
		return Worker{}, err
	}
	return Worker{WorkerInfo: w, Key: kv.Key, Lease: kv.Lease}, nil
}

// CandidateDecoder decodes election keys (items keyed
// "<region>/<lease-hex>"). The value is whatever the campaigner proclaimed
// (regionsync writes its worker id); any value is accepted, since the key
// takes part in the election whatever it holds.
func CandidateDecoder(kv KV) (Candidate, error) {
	region, _, err := splitRel(kv.Rel)
	if err != nil {
		return Candidate{}, fmt.Errorf("%w: %v", ErrMalformedValue, err)
	}
	return Candidate{Region: region, Worker: string(kv.Value), Key: kv.Key, CreateRevision: kv.CreateRevision, Lease: kv.Lease}, nil
}

// NewRegionWatcher watches the region registry (<prefix>regions/).
func NewRegionWatcher(cli *clientv3.Client, prefix string, o WatchOptions, m *Metrics, log *slog.Logger) *Watcher[RegionSpec] {
	if o.Name == "" {
		o.Name = "regions"
	}
	return NewWatcher(cli, NewKeys(prefix).Regions(), RegionDecoder, o, m, log)
}

// NewWorkerWatcher watches worker presence (<prefix>workers/).
func NewWorkerWatcher(cli *clientv3.Client, prefix string, o WatchOptions, m *Metrics, log *slog.Logger) *Watcher[Worker] {
	if o.Name == "" {
		o.Name = "workers"
	}
	return NewWatcher(cli, NewKeys(prefix).Workers(), WorkerDecoder, o, m, log)
}

// NewLeaderWatcher watches every region's election (<prefix>leaders/).
func NewLeaderWatcher(cli *clientv3.Client, prefix string, o WatchOptions, m *Metrics, log *slog.Logger) *Watcher[Candidate] {
	if o.Name == "" {
		o.Name = "leaders"
	}
	return NewWatcher(cli, NewKeys(prefix).Leaders(), CandidateDecoder, o, m, log)
}
