package replicate

import (
	"fmt"
	"math/big"
	"slices"
	"sort"
	"strings"
)

// ringNode is one Cassandra node as system.local / system.peers_v2 describe it.
type ringNode struct {
	HostID  string
	Address string
	DC      string
	Rack    string
	Tokens  []string
}

// ring is the token ring of a cluster: every token in order with its owner.
type ring struct {
	tokens []*big.Int // sorted
	owner  []int      // index into nodes, per token
	nodes  []ringNode
	racks  map[string]map[string]bool // dc → racks
}

// supportedPartitioner reports whether tokens of p compare as integers
// (Murmur3 and Random; byte-ordered partitioners are not supported).
func supportedPartitioner(p string) bool {
	return strings.HasSuffix(p, "Murmur3Partitioner") || strings.HasSuffix(p, ".RandomPartitioner")
}

// newRing builds the ring of nodes; a token that is not an integer is an
// error naming the node.
func newRing(nodes []ringNode) (*ring, error) {
	r := &ring{nodes: nodes, racks: map[string]map[string]bool{}}
	type tok struct {
		t *big.Int
		n int
	}
	var all []tok
	for i, n := range nodes {
		if r.racks[n.DC] == nil {
			r.racks[n.DC] = map[string]bool{}
		}
		r.racks[n.DC][n.Rack] = true
		for _, s := range n.Tokens {
			t, ok := new(big.Int).SetString(s, 10)
			if !ok {
				return nil, fmt.Errorf("node %s (%s): token %q is not an integer", n.HostID, n.Address, s)
			}
			all = append(all, tok{t, i})
		}
	}
	if len(all) == 0 {
		return nil, fmt.Errorf("no tokens in the ring (%d nodes)", len(nodes))
	}
	sort.Slice(all, func(i, j int) bool { return all[i].t.Cmp(all[j].t) < 0 })
	for _, t := range all {
		r.tokens = append(r.tokens, t.t)
		r.owner = append(r.owner, t.n)
	}
	return r, nil
}

// ranges is the number of token ranges: range i is (tokens[i-1], tokens[i]],
// range 0 wrapping around from the last token.
func (r *ring) ranges() int { return len(r.tokens) }

// replicas returns, for range i, the nodes (indexes) that hold it in dc
// under NetworkTopologyStrategy with rf replicas there: walking the ring
// clockwise from the range's end token, one node per rack first, then the
// nodes skipped for a repeated rack, as Cassandra places them.
func (r *ring) replicas(i int, dc string, rf int) []int {
	if rf <= 0 {
		return nil
	}
	racks := len(r.racks[dc])
	var (
		out       []int
		in        = map[int]bool{}
		seenRacks = map[string]bool{}
		skipped   []int
	)
	for k := 0; k < len(r.tokens) && len(out) < rf; k++ {
		n := r.owner[(i+k)%len(r.tokens)]
		node := r.nodes[n]
		if node.DC != dc || in[n] {
			continue
		}
		switch {
		case len(seenRacks) == racks:
			out, in[n] = append(out, n), true
		case !seenRacks[node.Rack]:
			out, in[n] = append(out, n), true
			seenRacks[node.Rack] = true
			if len(seenRacks) == racks {
				for _, s := range skipped {
					if len(out) == rf {
						break
					}
					out, in[s] = append(out, s), true
				}
			}
		default:
			if !slices.Contains(skipped, n) {
				skipped = append(skipped, n)
			}
		}
	}
	return out
}

// Availability of one keyspace in one DC: how many token ranges cannot be
// served at LOCAL_QUORUM and at LOCAL_ONE with the nodes that are up.
type Availability struct {
	Keyspace          string `json:"keyspace"`
	DC                string `json:"dc"`
	ReplicationFactor int    `json:"replicationFactor"`
	Ranges            int    `json:"ranges"`
	// QuorumUnavailable ranges have fewer than RF/2+1 replicas up in DC.
	QuorumUnavailable int `json:"localQuorumUnavailableRanges"`
	// OneUnavailable ranges have no replica up in DC.
	OneUnavailable int `json:"localOneUnavailableRanges"`
}

// availability judges keyspace ks with rf replicas in dc against up (host
// IDs that answer).
func (r *ring) availability(ks, dc string, rf int, up map[string]bool) Availability {
	a := Availability{Keyspace: ks, DC: dc, ReplicationFactor: rf, Ranges: r.ranges()}
	if rf <= 0 {
		a.QuorumUnavailable, a.OneUnavailable = a.Ranges, a.Ranges
		return a
	}
	quorum := rf/2 + 1
	for i := range r.tokens {
		alive := 0
		for _, n := range r.replicas(i, dc, rf) {
			if up[r.nodes[n].HostID] {
				alive++
			}
		}
		if alive < quorum {
			a.QuorumUnavailable++
		}
		if alive == 0 {
			a.OneUnavailable++
		}
	}
	return a
}
