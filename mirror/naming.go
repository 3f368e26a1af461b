package mirror

import (
	"fmt"
	"strings"

	"github.com/IBM/sarama"
)

// ProvenanceHeader is added to every mirrored record. Its value is the
// comma-separated list of cluster aliases the record has been in, oldest
// first. A record whose provenance already names the target is never copied
// there again, which prevents loops even with identity naming.
const ProvenanceHeader = "regionsync-provenance"

// Naming maps a source topic to its name on the target cluster.
type Naming interface {
	// Remote returns the target topic for topic of cluster sourceAlias.
	Remote(sourceAlias, topic string) string
	// FromCluster reports whether topic on a source is itself a copy of a
	// topic from cluster alias (so mirroring it back to alias is a loop).
	FromCluster(alias, topic string) bool
}

// NewNaming returns the policy called kind: "prefix" (east.orders) or
// "identity" (orders).
func NewNaming(kind string) (Naming, error) {
	switch kind {
	case "", "prefix":
		return prefixNaming{}, nil
	case "identity":
		return identityNaming{}, nil
	}
	return nil, fmt.Errorf("mirror: unknown naming %q (want prefix or identity)", kind)
}

type prefixNaming struct{}

func (prefixNaming) Remote(alias, topic string) string { return alias + "." + topic }

func (prefixNaming) FromCluster(alias, topic string) bool { return strings.HasPrefix(topic, alias+".") }

type identityNaming struct{}

func (identityNaming) Remote(_, topic string) string { return topic }

// FromCluster cannot tell from the name; provenance headers catch loops.
func (identityNaming) FromCluster(string, string) bool { return false }

// provenance returns the aliases in a record's provenance header.
func provenance(headers []*sarama.RecordHeader) []string {
	for _, h := range headers {
		if string(h.Key) == ProvenanceHeader {
			if len(h.Value) == 0 {
				return nil
			}
			return strings.Split(string(h.Value), ",")
		}
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// targetHeaders lists headers in order (the same header values, not
// copies), replacing the provenance header by one that also names
// sourceAlias.
func targetHeaders(headers []*sarama.RecordHeader, sourceAlias string) []*sarama.RecordHeader {
	out := make([]*sarama.RecordHeader, 0, len(headers)+1)
	prov := provenance(headers)
	for _, h := range headers {
		if string(h.Key) != ProvenanceHeader {
			out = append(out, h)
		}
	}
	if !contains(prov, sourceAlias) {
		prov = append(prov, sourceAlias)
	}
	return append(out, &sarama.RecordHeader{Key: []byte(ProvenanceHeader), Value: []byte(strings.Join(prov, ","))})
}
