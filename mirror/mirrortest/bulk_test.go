package mirrortest

import (
	"testing"
)

func digests(sums ...uint64) []digest {
	out := make([]digest, len(sums))
	for i, s := range sums {
		out[i] = digest{offset: int64(100 + i), sum: s}
	}
	return out
}

// The checker must tell apart what at-least-once allows (a replayed run of
// records) from what no mirror may do (lose, reorder or invent records).
func TestComparePartition(t *testing.T) {
	src := digests(1, 2, 3, 4, 5)
	cases := []struct {
		name                              string
		dst                               []digest
		missing, dups, reordered, foreign int
		sumsEqual                         bool
	}{
		{"exact", digests(1, 2, 3, 4, 5), 0, 0, 0, 0, true},
		{"replay after crash", digests(1, 2, 3, 2, 3, 4, 5), 0, 2, 0, 0, true},
		{"missing one", digests(1, 2, 4, 5), 1, 0, 0, 0, false},
		{"missing tail", digests(1, 2, 3), 2, 0, 0, 0, false},
		{"swapped", digests(1, 3, 2, 4, 5), 0, 0, 1, 0, false},
		{"one moved far back", digests(2, 3, 4, 5, 1), 0, 0, 1, 0, false},
		{"foreign", digests(1, 2, 3, 9, 4, 5), 0, 0, 0, 1, true},
		{"empty target", nil, 5, 0, 0, 0, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			pc := comparePartition(7, src, c.dst)
			if pc.Missing != c.missing || pc.Duplicates != c.dups || pc.Reordered != c.reordered || pc.Foreign != c.foreign {
				t.Errorf("missing=%d dups=%d reordered=%d foreign=%d, want %d %d %d %d (problems %q)",
					pc.Missing, pc.Duplicates, pc.Reordered, pc.Foreign, c.missing, c.dups, c.reordered, c.foreign, pc.Problems)
			}
			if (pc.SourceSum == pc.TargetSum) != c.sumsEqual {
				t.Errorf("checksums equal = %v, want %v", pc.SourceSum == pc.TargetSum, c.sumsEqual)
			}
		})
	}
}
