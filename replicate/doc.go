// Package replicate measures replication health per store and region pair:
// Kafka mirror lag in records and seconds, and whether a Cassandra DC can serve
// LOCAL_QUORUM and has caught up.
package replicate
