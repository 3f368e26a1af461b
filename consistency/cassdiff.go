package consistency

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"
	"golang.org/x/time/rate"
)

// DiffDC is one data center as the diff reads it: a session whose host
// filter keeps every query in DC (internal/clients.Cassandra), so a
// LOCAL_ONE read never silently lands in the other DC.
type DiffDC struct {
	Name    string
	Session *gocql.Session
}

// TableDiffOptions configure a cross-DC diff (and repair) of one table.
type TableDiffOptions struct {
	Keyspace, Table string
	A, B            DiffDC
	// Splits of the token ring (Murmur3). Default 256.
	Splits int
	// Consistency of the reads in each DC: LOCAL_ONE (default) or
	// LOCAL_QUORUM; never ALL or EACH_QUORUM, whose blocking read repair
	// would hide the divergence being looked for.
	Consistency gocql.Consistency
	PageSize    int
	// Repair writes the winning cells where they are missing (see
	// repairRange). Default false: a dry run that writes nothing.
	Repair bool
	// RateLimit caps the rows read per second from each DC; 0 is no limit.
	RateLimit int
	// Resume continues an interrupted diff of the same table with the same
	// splits: ranges before Resume.Next are not read again, and the
	// report's counts continue from Resume's.
	Resume *TableDiffReport
	// OnRange, when set, is called after every completed range with the
	// report so far (rep.Next ranges done); an error stops the diff (the
	// progress could not be saved, or the run lost its lock).
	OnRange func(rep *TableDiffReport) error
	// Progress, when set, is called after every range.
	Progress func(done, total int)
}

// RowDiff is one row that differs between the DCs.
type RowDiff struct {
	// Key renders the primary key (partition key, then clustering columns).
	Key string `json:"key"`
	// Kind: "missing" (the row is absent in MissingIn — never written
	// there, or deleted there later: CQL does not show tombstones) or
	// "cells" (present in both, some cell values or write times differ).
	Kind      string `json:"kind"`
	MissingIn string `json:"missingIn,omitempty"`
	// Cells that differ, with each DC's write time (µs).
	Cells []CellDiff `json:"cells,omitempty"`
	Token int64      `json:"token"`
}

// CellDiff is one regular column that differs.
type CellDiff struct {
	Column     string `json:"column"`
	WriteTimeA int64  `json:"writeTimeA"`
	WriteTimeB int64  `json:"writeTimeB"`
	// Newer names the DC whose cell wins last-write-wins.
	Newer string `json:"newer"`
}

// TableDiffReport is the diff of one table.
type TableDiffReport struct {
	Keyspace string `json:"keyspace"`
	Table    string `json:"table"`
	A        string `json:"a"`
	B        string `json:"b"`
	// Mode: "dry-run" or "repair".
	Mode   string `json:"mode"`
	Ranges int    `json:"ranges"`
	// Next: ranges completed (the next one to compare); Ranges when done.
	Next int `json:"next"`
	// RangesResumed: ranges an interrupted earlier process completed, not
	// read again by this one.
	RangesResumed   int   `json:"rangesResumed"`
	RangesDiffering int   `json:"rangesDiffering"`
	RowsA           int64 `json:"rowsA"`
	RowsB           int64 `json:"rowsB"`
	// MissingInA, MissingInB and CellRows count the divergent rows by kind
	// (as found, before any repair).
	MissingInA int `json:"missingInA"`
	MissingInB int `json:"missingInB"`
	CellRows   int `json:"cellRows"`
	// Repaired: divergent rows that read identical in both DCs after the
	// repair's writes.
	Repaired int `json:"repaired"`
	// Divergent lists the divergent rows (stored reports keep the first
	// ListedRows; the counts above are complete).
	Divergent []RowDiff `json:"divergent"`
	Errors    []string  `json:"errors"`
	// Took: time spent by the processes that ran it.
	Took time.Duration `json:"took"`
}

// DivergentRows is every divergent row found.
func (r TableDiffReport) DivergentRows() int { return r.MissingInA + r.MissingInB + r.CellRows }

// Unrepaired is the divergent rows not repaired.
func (r TableDiffReport) Unrepaired() int { return r.DivergentRows() - r.Repaired }

func (r *TableDiffReport) count(ds []RowDiff) {
	for _, d := range ds {
		switch {
		case d.Kind == "cells":
			r.CellRows++
		case d.MissingIn == r.A:
			r.MissingInA++
		default:
			r.MissingInB++
		}
	}
	r.Divergent = append(r.Divergent, ds...)
}

// DiffTable compares a table DC by DC, token range by token range: both
// DCs' rows of a range are hashed, and only ranges whose hashes differ are
// compared row by row. Write times are part of the comparison, so equal
// values written at different times count as different cells. With Repair,
// a differing range is repaired before the next one is read.
func DiffTable(ctx context.Context, o TableDiffOptions) (TableDiffReport, error) {
	start := time.Now()
	if o.Splits <= 0 {
		o.Splits = 256
	}
	if o.PageSize <= 0 {
		o.PageSize = 5000
	}
	switch o.Consistency {
	case 0:
		o.Consistency = gocql.LocalOne
	case gocql.LocalOne, gocql.LocalQuorum:
	default:
		return TableDiffReport{}, errors.New("consistency: the diff reads at LOCAL_ONE or LOCAL_QUORUM only (ALL and EACH_QUORUM repair what they read)")
	}
	sh, err := readShape(ctx, o.A.Session, o.Keyspace, o.Table)
	if err != nil {
		return TableDiffReport{}, err
	}
	mode := "dry-run"
	if o.Repair {
		mode = "repair"
		if sh.counter {
			return TableDiffReport{}, fmt.Errorf("%s.%s is a counter table: counters cannot be written back with USING TIMESTAMP; run the diff without repair", o.Keyspace, o.Table)
		}
	}
	rep, err := newReport(o, mode)
	if err != nil {
		return rep, err
	}
	took := rep.Took
	var lim *rate.Limiter
	if o.RateLimit > 0 {
		lim = rate.NewLimiter(rate.Limit(o.RateLimit), o.RateLimit)
	}
	ranges := TokenRanges(o.Splits)
	for i := rep.Next; i < len(ranges); i++ {
		r := ranges[i]
		a, sumA, b, sumB, err := readBoth(ctx, o, sh, r[0], r[1])
		if err != nil {
			return rep, err
		}
		rep.RowsA += int64(len(a))
		rep.RowsB += int64(len(b))
		if sumA != sumB || len(a) != len(b) {
			rep.RangesDiffering++
			ds := compareRows(a, b, o.A.Name, o.B.Name, sh)
			rep.count(ds)
			if o.Repair && len(ds) > 0 {
				rp := repairer{o: o, sh: sh, from: r[0], to: r[1], lim: lim}
				fixed, errs := rp.repairRange(ctx, a, b, ds)
				rep.Repaired += fixed
				rep.Errors = append(rep.Errors, errs...)
				if ctx.Err() != nil {
					return rep, ctx.Err()
				}
			}
		}
		if err := wait(ctx, lim, max(len(a), len(b))); err != nil {
			return rep, err
		}
		rep.Next = i + 1
		rep.Took = took + time.Since(start)
		if o.OnRange != nil {
			if err := o.OnRange(&rep); err != nil {
				return rep, err
			}
		}
		if o.Progress != nil {
			o.Progress(i+1, o.Splits)
		}
	}
	sort.Slice(rep.Divergent, func(i, j int) bool { return rep.Divergent[i].Key < rep.Divergent[j].Key })
	rep.Took = took + time.Since(start)
	return rep, nil
}

// newReport starts the report of a diff, or continues o.Resume.
func newReport(o TableDiffOptions, mode string) (TableDiffReport, error) {
	rep := TableDiffReport{Keyspace: o.Keyspace, Table: o.Table, A: o.A.Name, B: o.B.Name, Mode: mode, Ranges: o.Splits, Divergent: []RowDiff{}, Errors: []string{}}
	r := o.Resume
	if r == nil {
		return rep, nil
	}
	if r.Keyspace != o.Keyspace || r.Table != o.Table || r.Ranges != o.Splits || r.Mode != mode || r.A != o.A.Name || r.B != o.B.Name {
		return rep, fmt.Errorf("cannot resume %s.%s: the saved progress is of %s.%s %s⇄%s, %d ranges, %s", o.Keyspace, o.Table, r.Keyspace, r.Table, r.A, r.B, r.Ranges, r.Mode)
	}
	rep = *r
	rep.RangesResumed = r.Next
	rep.Divergent = append([]RowDiff{}, r.Divergent...)
	rep.Errors = append([]string{}, r.Errors...)
	return rep, nil
}

// readBoth reads (from, to] in both DCs at once.
func readBoth(ctx context.Context, o TableDiffOptions, sh tableShape, from, to int64) (a map[string]row, sumA uint64, b map[string]row, sumB uint64, err error) {
	var errB error
	done := make(chan struct{})
	go func() {
		defer close(done)
		b, sumB, errB = readRange(ctx, o.B, o, sh, from, to)
	}()
	a, sumA, err = readRange(ctx, o.A, o, sh, from, to)
	<-done
	return a, sumA, b, sumB, errors.Join(err, errB)
}

// wait takes n tokens from lim (nil: no limit), in bursts lim allows.
func wait(ctx context.Context, lim *rate.Limiter, n int) error {
	if lim == nil {
		return nil
	}
	for n > 0 {
		k := min(n, lim.Burst())
		if err := lim.WaitN(ctx, k); err != nil {
			return err
		}
		n -= k
	}
	return nil
}

func compareRows(a, b map[string]row, nameA, nameB string, sh tableShape) []RowDiff {
	var out []RowDiff
	for k, ra := range a {
		rb, ok := b[k]
		if !ok {
			out = append(out, RowDiff{Key: k, Kind: "missing", MissingIn: nameB, Token: ra.token})
			continue
		}
		if ra.sum == rb.sum {
			continue
		}
		d := RowDiff{Key: k, Kind: "cells", Token: ra.token}
		for i, c := range sh.regular {
			if ra.cells[i] == rb.cells[i] && ra.wt[i] == rb.wt[i] {
				continue
			}
			newer := nameA
			if rb.wt[i] > ra.wt[i] {
				newer = nameB
			}
			d.Cells = append(d.Cells, CellDiff{Column: strings.Trim(c, `"`), WriteTimeA: ra.wt[i], WriteTimeB: rb.wt[i], Newer: newer})
		}
		out = append(out, d)
	}
	for k, rb := range b {
		if _, ok := a[k]; !ok {
			out = append(out, RowDiff{Key: k, Kind: "missing", MissingIn: nameA, Token: rb.token})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

// TokenRanges splits the Murmur3 ring into n ranges (from, to], covering
// every token.
func TokenRanges(n int) [][2]int64 {
	out := make([][2]int64, 0, n)
	step := math.MaxUint64 / uint64(n)
	from := int64(math.MinInt64)
	for i := range n {
		to := int64(uint64(from) + step)
		if i == n-1 {
			to = math.MaxInt64
		}
		out = append(out, [2]int64{from, to})
		from = to
	}
	return out
}
