package consistency

import (
	"math"
	"testing"
	"time"
)

// The token ranges cover the Murmur3 ring without gap or overlap.
func TestTokenRanges(t *testing.T) {
	for _, n := range []int{1, 2, 7, 256} {
		rs := TokenRanges(n)
		if len(rs) != n || rs[0][0] != math.MinInt64 || rs[n-1][1] != math.MaxInt64 {
			t.Fatalf("%d ranges: %v … %v", n, rs[0], rs[len(rs)-1])
		}
		for i := 1; i < n; i++ {
			if rs[i][0] != rs[i-1][1] || rs[i][0] >= rs[i][1] {
				t.Fatalf("%d ranges: range %d %v after %v", n, i, rs[i], rs[i-1])
			}
		}
	}
}

// Cell hashes separate values, and types, and are stable.
func TestHashValue(t *testing.T) {
	at := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	vals := []any{"a", "b", "", []byte("a"), 1, 2, int64(1), int32(1), true, false, at, at.Add(time.Microsecond), 1.5, nil}
	seen := map[uint64]any{}
	for _, v := range vals {
		h := hashValue(v)
		if prev, ok := seen[h]; ok {
			t.Fatalf("%#v and %#v hash alike", v, prev)
		}
		seen[h] = v
		if hashValue(v) != h {
			t.Fatalf("%#v: unstable hash", v)
		}
	}
	if hashValue(at) != hashValue(at.In(time.FixedZone("x", 3600))) {
		t.Fatal("the same instant in two zones hashes differently")
	}
}

// compareRows reports missing rows on the right side and the newer cell.
func TestCompareRows(t *testing.T) {
	sh := tableShape{regular: []string{`"n"`, `"v"`}}
	mk := func(key string, cells []uint64, wt []int64) row {
		r := row{key: key, cells: cells, wt: wt}
		for i := range cells {
			r.sum = r.sum*1099511628211 ^ cells[i] ^ uint64(wt[i])
		}
		return r
	}
	a := map[string]row{"1": mk("1", []uint64{1, 2}, []int64{10, 10}), "2": mk("2", []uint64{1, 2}, []int64{10, 10}), "3": mk("3", []uint64{1, 2}, []int64{10, 10})}
	b := map[string]row{"1": mk("1", []uint64{1, 2}, []int64{10, 10}), "2": mk("2", []uint64{1, 3}, []int64{10, 20}), "4": mk("4", []uint64{1, 2}, []int64{10, 10})}
	ds := compareRows(a, b, "A", "B", sh)
	if len(ds) != 3 || ds[0].Key != "2" || ds[0].Kind != "cells" || len(ds[0].Cells) != 1 || ds[0].Cells[0].Column != "v" || ds[0].Cells[0].Newer != "B" ||
		ds[1].Key != "3" || ds[1].MissingIn != "B" || ds[2].Key != "4" || ds[2].MissingIn != "A" {
		t.Fatalf("%+v", ds)
	}
	if !contains(ds, "3") || contains(ds, "1") {
		t.Fatal("contains")
	}
}
