// Package consistency runs periodic reconcile jobs that find divergence
// between regions: an audit of mirrored Kafka topics and a cross-DC Cassandra
// diff that repairs only what diverged.
package consistency
