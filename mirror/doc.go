// Package mirror copies Kafka topics from a source cluster to a target cluster
// (a flow), keeping partitions, keys, values, headers and timestamps, and
// translating consumer-group offsets so consumers can fail over without gaps.
package mirror
