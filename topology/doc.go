// Package topology keeps regionsync's coordination in the cross-DC etcd
// cluster: the region registry, worker membership by lease, one leader per
// region, and the health of etcd as seen from each region.
package topology
