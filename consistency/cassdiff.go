package consistency

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"reflect"
	"sort"
	"strings"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"
)

// DiffDC is one data center as the diff reads it: a session whose host
// filter keeps every query in DC (internal/clients.Cassandra), so a
// LOCAL_ONE read never silently lands in the other DC.
type DiffDC struct {
	Name    string
	Session *gocql.Session
}

// TableDiffOptions configure a cross-DC diff of one table.
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
	Keyspace        string        `json:"keyspace"`
	Table           string        `json:"table"`
	A               string        `json:"a"`
	B               string        `json:"b"`
	Ranges          int           `json:"ranges"`
	RangesDiffering int           `json:"rangesDiffering"`
	RowsA           int64         `json:"rowsA"`
	RowsB           int64         `json:"rowsB"`
	Divergent       []RowDiff     `json:"divergent"`
	Took            time.Duration `json:"took"`
}

// tableShape is the table's columns by role.
type tableShape struct {
	partition, clustering []string
	regular               []string
	writetime             map[string]bool // regular columns whose write time CQL can select
}

func readShape(ctx context.Context, s *gocql.Session, ks, table string) (tableShape, error) {
	iter := s.Query(`SELECT column_name, kind, position, type FROM system_schema.columns WHERE keyspace_name = ? AND table_name = ?`, ks, table).
		Consistency(gocql.One).IterContext(ctx)
	type col struct {
		name, kind, typ string
		pos             int
	}
	var cols []col
	var c col
	for iter.Scan(&c.name, &c.kind, &c.pos, &c.typ) {
		cols = append(cols, c)
	}
	if err := iter.Close(); err != nil {
		return tableShape{}, fmt.Errorf("columns of %s.%s: %w", ks, table, err)
	}
	if len(cols) == 0 {
		return tableShape{}, fmt.Errorf("table %s.%s does not exist", ks, table)
	}
	sort.Slice(cols, func(i, j int) bool { return cols[i].pos < cols[j].pos })
	sh := tableShape{writetime: map[string]bool{}}
	for _, c := range cols {
		q := `"` + c.name + `"`
		switch c.kind {
		case "partition_key":
			sh.partition = append(sh.partition, q)
		case "clustering":
			sh.clustering = append(sh.clustering, q)
		default:
			sh.regular = append(sh.regular, q)
			// Non-frozen collections have one write time per element.
			multi := (strings.HasPrefix(c.typ, "list<") || strings.HasPrefix(c.typ, "set<") || strings.HasPrefix(c.typ, "map<")) && !strings.HasPrefix(c.typ, "frozen<")
			sh.writetime[q] = !multi
		}
	}
	sort.Strings(sh.regular)
	return sh, nil
}

// row is one row as the diff keeps it.
type row struct {
	key   string
	token int64
	cells []uint64 // hash of each regular column's value
	wt    []int64  // its write time (µs), 0 when null or not selectable
	sum   uint64
}

// readRange reads every row of (from, to] in one DC.
func readRange(ctx context.Context, dc DiffDC, o TableDiffOptions, sh tableShape, from, to int64) (map[string]row, uint64, error) {
	pk := strings.Join(sh.partition, ", ")
	sel := []string{"token(" + pk + ")"}
	sel = append(sel, sh.partition...)
	sel = append(sel, sh.clustering...)
	for _, c := range sh.regular {
		sel = append(sel, c)
		if sh.writetime[c] {
			sel = append(sel, "writetime("+c+")")
		}
	}
	q := fmt.Sprintf("SELECT %s FROM %q.%q WHERE token(%s) > ? AND token(%s) <= ?", strings.Join(sel, ", "), o.Keyspace, o.Table, pk, pk)
	iter := dc.Session.Query(q, from, to).Consistency(o.Consistency).PageSize(o.PageSize).IterContext(ctx)
	out := map[string]row{}
	var sum uint64
	nKey := len(sh.partition) + len(sh.clustering)
	for {
		vals, err := iter.RowData()
		if err != nil {
			break
		}
		if !iter.Scan(vals.Values...) {
			break
		}
		r := row{token: *(vals.Values[0].(*int64))}
		var kb strings.Builder
		for i := 1; i <= nKey; i++ {
			if i > 1 {
				kb.WriteByte('/')
			}
			fmt.Fprint(&kb, deref(vals.Values[i]))
		}
		r.key = kb.String()
		i := 1 + nKey
		for _, c := range sh.regular {
			h := fnv.New64a()
			fmt.Fprintf(h, "%#v", deref(vals.Values[i]))
			r.cells = append(r.cells, h.Sum64())
			i++
			var wt int64
			if sh.writetime[c] {
				if p, ok := vals.Values[i].(*int64); ok {
					wt = *p
				}
				i++
			}
			r.wt = append(r.wt, wt)
			r.sum = r.sum*1099511628211 ^ h.Sum64() ^ uint64(wt)
		}
		rh := fnv.New64a()
		rh.Write([]byte(r.key))
		r.sum ^= rh.Sum64()
		sum += r.sum
		out[r.key] = r
	}
	if err := iter.Close(); err != nil {
		return nil, 0, fmt.Errorf("dc %s, %s.%s tokens (%d, %d]: %w", dc.Name, o.Keyspace, o.Table, from, to, err)
	}
	return out, sum, nil
}

// deref turns the pointers RowData scans into into values.
func deref(v any) any {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		return v
	}
	e := rv.Elem().Interface()
	switch x := e.(type) {
	case time.Time:
		return x.UTC()
	case gocql.UUID:
		return x.String()
	}
	return e
}

// DiffTable compares a table DC by DC, token range by token range: both
// DCs' rows of a range are hashed, and only ranges whose hashes differ are
// compared row by row. Write times are part of the comparison, so equal
// values written at different times count as different cells.
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
	rep := TableDiffReport{Keyspace: o.Keyspace, Table: o.Table, A: o.A.Name, B: o.B.Name, Ranges: o.Splits, Divergent: []RowDiff{}}
	for i, r := range TokenRanges(o.Splits) {
		a, sumA, err := readRange(ctx, o.A, o, sh, r[0], r[1])
		if err != nil {
			return rep, err
		}
		b, sumB, err := readRange(ctx, o.B, o, sh, r[0], r[1])
		if err != nil {
			return rep, err
		}
		rep.RowsA += int64(len(a))
		rep.RowsB += int64(len(b))
		if sumA != sumB || len(a) != len(b) {
			rep.RangesDiffering++
			rep.Divergent = append(rep.Divergent, compareRows(a, b, o.A.Name, o.B.Name, sh)...)
		}
		if o.Progress != nil {
			o.Progress(i+1, o.Splits)
		}
	}
	rep.Took = time.Since(start)
	return rep, nil
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
