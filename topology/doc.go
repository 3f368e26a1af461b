// Package topology keeps regionsync's coordination in the cross-DC etcd
// cluster: the region registry, worker membership by lease, one leader per
// region, and the health of etcd as seen from each region.
//
// # Keys
//
// Under a prefix (config etcd_prefix, default "/regionsync/"; see Keys):
//
//	regions/<region>               RegionSpec as JSON (schemas/region.schema.json)
//	workers/<region>/<worker-id>   WorkerInfo as JSON (schemas/worker.schema.json), bound to the worker's lease
//	leaders/<region>/<lease-hex>   concurrency.Election keys; the lowest create revision leads
//
// # Components
//
// Every long-running component has Run(ctx) error, does no I/O in its
// constructor, and returns nil when ctx is cancelled; etcd errors are logged,
// counted and retried inside Run, never returned. A component never closes
// the etcd client it was given; close it after Run has returned.
//
//   - Node: what a worker runs. It dials etcd from a clientv3.Config (built by
//     internal/clients.Etcd, with TLS and user/password), runs the pieces
//     below and closes its client when they have stopped.
//   - Member: presence under a concurrency.Session lease, the region's
//     election, and leader-only work (LeaderFunc) under a context that is
//     cancelled at once when the term ends.
//   - Leader: one leadership term. Put, Delete and Txn are fenced: they run
//     in a transaction conditioned on the election key's create revision, and
//     fail with ErrNotLeader once the key is gone.
//   - Watcher[T]: a decoded, coalesced view of a prefix that resumes from the
//     last revision + 1, rebuilds after compaction, ends watches on members
//     without a leader (WithRequireLeader) and reports malformed values
//     (ValueError) without stopping.
//   - HealthMonitor: per-endpoint Maintenance.Status and linearizable reads,
//     the member list, and the quorum verdict (Health, regionsync_etcd_*).
//
// One-shot functions for the CLI: Apply (compare-and-swap write of region
// specs, ErrConflict), Show (registry, workers, leaders and health at one
// revision; Topology.WriteText renders it), CheckHealth, LoadSpecFile.
//
// Metrics are registered once per registry with NewMetrics and shared by
// all components of the process (each series carries the observing region).
package topology
