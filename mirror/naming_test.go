package mirror

import (
	"strings"
	"testing"

	"github.com/IBM/sarama"
)

func TestSelector(t *testing.T) {
	s, err := NewSelector([]string{"orders.*", "payments"}, []string{".*\\.tmp"})
	if err != nil {
		t.Fatal(err)
	}
	for topic, want := range map[string]bool{
		"orders": true, "orders-eu": true, "payments": true, "payments-x": false, // anchored
		"orders.tmp": false, "__consumer_offsets": false, "orders.internal": false,
		OffsetSyncTopicPrefix + "f": false, "inventory": false,
	} {
		if got := s.Match(topic); got != want {
			t.Errorf("Match(%q) = %v, want %v", topic, got, want)
		}
	}
	if _, err := NewSelector([]string{"orders(("}, nil); err == nil || !strings.HasPrefix(err.Error(), `mirror: topics.include[0] "orders(("`) {
		t.Fatalf("bad regex error = %v", err)
	}
}

func TestNamingAndProvenance(t *testing.T) {
	p, _ := NewNaming("prefix")
	if p.Remote("east", "orders") != "east.orders" || !p.FromCluster("west", "west.orders") || p.FromCluster("west", "orders") {
		t.Fatal("prefix naming")
	}
	id, _ := NewNaming("identity")
	if id.Remote("east", "orders") != "orders" || id.FromCluster("west", "orders") {
		t.Fatal("identity naming")
	}
	if _, err := NewNaming("mirror"); err == nil {
		t.Fatal("unknown naming accepted")
	}
	in := []*sarama.RecordHeader{{Key: []byte("a"), Value: []byte("1")}, {Key: []byte(ProvenanceHeader), Value: []byte("west")}}
	out := targetHeaders(in, "east")
	if len(out) != 2 || string(out[0].Key) != "a" || string(out[1].Value) != "west,east" {
		t.Fatalf("headers = %q, %q", out[0], out[1])
	}
	again := targetHeaders(out, "east")
	if string(again[1].Value) != "west,east" {
		t.Fatalf("provenance repeated an alias: %q", again[1].Value)
	}
}

func TestPermanentErrors(t *testing.T) {
	if !permanent(sarama.ErrMessageSizeTooLarge) || !permanent(sarama.ErrTopicAuthorizationFailed) {
		t.Fatal("size and ACL errors must be permanent")
	}
	if permanent(sarama.ErrNotLeaderForPartition) || permanent(sarama.ErrOutOfBrokers) {
		t.Fatal("leadership and connectivity errors must be retried")
	}
}
