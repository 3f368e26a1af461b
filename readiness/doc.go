// Package readiness turns replication, topology and reconcile signals into a
// signed, expiring verdict per region (READY, DEGRADED, NOT_READY, UNKNOWN) and
// serves the failover gate that routers consult before moving traffic.
package readiness
