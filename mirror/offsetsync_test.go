package mirror

import (
	"errors"
	"testing"
)

func TestOffsetSyncRoundTrip(t *testing.T) {
	s := OffsetSync{Topic: "orders", Partition: 7, Upstream: 1 << 40, Downstream: 12, Count: 500}
	b, _ := s.MarshalBinary()
	var got OffsetSync
	if err := got.UnmarshalBinary(b); err != nil || got != s {
		t.Fatalf("round trip = %+v, %v", got, err)
	}
	for _, bad := range [][]byte{nil, {2}, {1, 200}, b[:len(b)-1]} {
		if err := new(OffsetSync).UnmarshalBinary(bad); !errors.Is(err, ErrBadOffsetSync) {
			t.Errorf("UnmarshalBinary(%v) = %v", bad, err)
		}
	}
}

func TestRunsAndTranslate(t *testing.T) {
	// Upstream 10..14 copied, 15 is a transaction marker (absent), 16..17
	// copied, 18 skipped (loop), 19 copied. Downstream is contiguous.
	up := []int64{10, 11, 12, 13, 14, 16, 17, 19}
	down := []int64{100, 101, 102, 103, 104, 105, 106, 107}
	rs := runs("t", 0, up, down)
	if len(rs) != 3 || rs[0].Count != 5 || rs[1].Upstream != 16 || rs[1].Downstream != 105 || rs[2].Count != 1 {
		t.Fatalf("runs = %+v", rs)
	}
	tr := NewTranslator()
	for i := len(rs) - 1; i >= 0; i-- { // out of order on purpose
		tr.Add(rs[i])
	}
	for _, c := range []struct {
		committed, want int64
		ok              bool
	}{
		{0, 100, true}, {10, 100, true}, {12, 102, true}, {15, 105, true}, {16, 105, true},
		{17, 106, true}, {18, 107, true}, {19, 107, true}, {20, 0, false},
	} {
		got, ok := tr.Translate("t", 0, c.committed)
		if ok != c.ok || (ok && got != c.want) {
			t.Errorf("Translate(%d) = %d,%v want %d,%v", c.committed, got, ok, c.want, c.ok)
		}
	}
	if _, ok := tr.Translate("t", 1, 0); ok {
		t.Error("unknown partition translated")
	}
}

// Contiguous batches merge into one run; a re-copy after a crash (the same
// upstream offsets at new downstream offsets) wins for what it covers.
func TestTranslatorMergesAndOverrides(t *testing.T) {
	tr := NewTranslator()
	for b := range int64(100) { // 100 batches of 10, contiguous on both sides
		tr.Add(OffsetSync{Topic: "t", Upstream: b * 10, Downstream: 1000 + b*10, Count: 10})
	}
	if n := tr.Runs("t", 0); n != 1 {
		t.Fatalf("%d runs after 100 contiguous batches, want 1", n)
	}
	// Crash: upstream 500..519 copied again at downstream 2000..2019.
	tr.Add(OffsetSync{Topic: "t", Upstream: 500, Downstream: 2000, Count: 20})
	for _, c := range []struct{ committed, want int64 }{
		{0, 1000}, {499, 1499}, {500, 2000}, {519, 2019}, {520, 1520}, {999, 1999},
	} {
		if got, ok := tr.Translate("t", 0, c.committed); !ok || got != c.want {
			t.Errorf("Translate(%d) = %d,%v want %d", c.committed, got, ok, c.want)
		}
	}
	if n := tr.Runs("t", 0); n != 3 {
		t.Errorf("%d runs after an overlapping re-copy, want 3", n)
	}
	// The mirror goes on after the re-copy, contiguous with it.
	tr.Add(OffsetSync{Topic: "t", Upstream: 520, Downstream: 2020, Count: 480})
	tr.Add(OffsetSync{Topic: "t", Upstream: 1000, Downstream: 2500, Count: 5})
	if got, _ := tr.Translate("t", 0, 700); got != 2200 {
		t.Errorf("Translate(700) = %d, want 2200", got)
	}
	if n := tr.Runs("t", 0); n != 2 {
		t.Errorf("%d runs, want 2 (before the crash, after it)", n)
	}
}

// A run written again, longer, under its first offset (runLog) replaces
// the shorter record in the translator, in any replay order; a re-copy
// (same upstream, new downstream) breaks the run and wins for what it covers.
func TestRunLogGrowsOneRecordPerRun(t *testing.T) {
	tr := NewTranslator()
	tr.Add(OffsetSync{Topic: "t", Partition: 1, Upstream: 0, Downstream: 50, Count: 10})
	l := newRunLog(tr, "t", 1)
	recs, run := l.records([]OffsetSync{
		{Topic: "t", Partition: 1, Upstream: 10, Downstream: 60, Count: 5},
		{Topic: "t", Partition: 1, Upstream: 15, Downstream: 65, Count: 5},
	})
	want := OffsetSync{Topic: "t", Partition: 1, Upstream: 0, Downstream: 50, Count: 20}
	if len(recs) != 1 || recs[0] != want || run != want {
		t.Fatalf("records = %+v, run %+v; want one %+v", recs, run, want)
	}
	if string(recs[0].Key()) != "t/1/0" {
		t.Fatalf("key = %s, want the run's first offset", recs[0].Key())
	}
	// Not committed (a failed write): the next call starts from the old run.
	if again, _ := l.records([]OffsetSync{{Topic: "t", Partition: 1, Upstream: 10, Downstream: 60, Count: 1}}); again[0].Upstream != 0 || again[0].Count != 11 {
		t.Fatalf("uncommitted run leaked: %+v", again)
	}
	l.commit(run)
	// A gap upstream (a transaction marker) starts a new run.
	recs, run = l.records([]OffsetSync{
		{Topic: "t", Partition: 1, Upstream: 21, Downstream: 70, Count: 3},
		{Topic: "t", Partition: 1, Upstream: 24, Downstream: 73, Count: 2},
	})
	if len(recs) != 1 || recs[0] != (OffsetSync{Topic: "t", Partition: 1, Upstream: 21, Downstream: 70, Count: 5}) {
		t.Fatalf("after a gap: %+v", recs)
	}
	l.commit(run)
	for _, s := range []OffsetSync{want, recs[0]} {
		tr.Add(s)
	}
	if n := tr.Runs("t", 1); n != 2 {
		t.Fatalf("translator holds %d runs, want 2", n)
	}
	for committed, want := range map[int64]int64{0: 50, 19: 69, 20: 70, 21: 70, 25: 74} {
		if got, ok := tr.Translate("t", 1, committed); !ok || got != want {
			t.Errorf("Translate(%d) = %d, %v; want %d", committed, got, ok, want)
		}
	}
	// A re-copy of 15.. at new downstream offsets wins from 15 on.
	tr.Add(OffsetSync{Topic: "t", Partition: 1, Upstream: 15, Downstream: 200, Count: 11})
	if got, _ := tr.Translate("t", 1, 16); got != 201 {
		t.Errorf("after re-copy Translate(16) = %d, want 201", got)
	}
	if got, _ := tr.Translate("t", 1, 14); got != 64 {
		t.Errorf("after re-copy Translate(14) = %d, want 64", got)
	}
	// The shorter, older record of a run replayed after the longer one
	// (same mapping) changes nothing.
	tr2 := NewTranslator()
	tr2.Add(want)
	tr2.Add(OffsetSync{Topic: "t", Partition: 1, Upstream: 0, Downstream: 50, Count: 10})
	if got, ok := tr2.Translate("t", 1, 19); !ok || got != 69 || tr2.Runs("t", 1) != 1 {
		t.Errorf("replayed short record: Translate(19) = %d, %v, runs %d", got, ok, tr2.Runs("t", 1))
	}
}
