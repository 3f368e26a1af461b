package consistency

import (
	"context"
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"reflect"
	"sort"
	"strings"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"
)

// tableShape is the table's columns by role.
type tableShape struct {
	partition, clustering []string // quoted names
	regular               []string // quoted names, sorted
	// writetime: regular columns whose write time and TTL CQL can select
	// (not non-frozen collections, which have one per element).
	writetime map[string]bool
	// counter tables cannot be written with USING TIMESTAMP.
	counter bool
}

// keyColumns are the primary key's columns, partition key first.
func (sh tableShape) keyColumns() []string {
	return append(append([]string{}, sh.partition...), sh.clustering...)
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
			multi := (strings.HasPrefix(c.typ, "list<") || strings.HasPrefix(c.typ, "set<") || strings.HasPrefix(c.typ, "map<")) && !strings.HasPrefix(c.typ, "frozen<")
			sh.writetime[q] = !multi
			sh.counter = sh.counter || c.typ == "counter"
		}
	}
	sort.Strings(sh.regular)
	return sh, nil
}

// row is one row as the diff keeps it: hashes for comparing, and the raw
// values, write times and TTLs for repairing.
type row struct {
	key     string
	token   int64
	keyVals []any    // primary key values, as the driver scanned them
	vals    []any    // each regular column's value
	cells   []uint64 // hash of each regular column's value
	wt      []int64  // its write time (µs); 0 when null or not selectable
	ttl     []int64  // its remaining TTL (s); 0 when none
	sum     uint64
}

// readRange reads every row of (from, to] in one DC.
func readRange(ctx context.Context, dc DiffDC, o TableDiffOptions, sh tableShape, from, to int64) (map[string]row, uint64, error) {
	pk := strings.Join(sh.partition, ", ")
	sel := []string{"token(" + pk + ")"}
	sel = append(sel, sh.keyColumns()...)
	for _, c := range sh.regular {
		sel = append(sel, c)
		if sh.writetime[c] && !sh.counter {
			sel = append(sel, "writetime("+c+")", "ttl("+c+")")
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
			r.keyVals = append(r.keyVals, raw(vals.Values[i]))
		}
		r.key = kb.String()
		i := 1 + nKey
		for _, c := range sh.regular {
			v := raw(vals.Values[i])
			hv := hashValue(v)
			r.vals = append(r.vals, v)
			r.cells = append(r.cells, hv)
			i++
			var wt, ttl int64
			if sh.writetime[c] && !sh.counter {
				wt, ttl = asInt64(vals.Values[i]), asInt64(vals.Values[i+1])
				i += 2
			}
			r.wt = append(r.wt, wt)
			r.ttl = append(r.ttl, ttl)
			r.sum = r.sum*1099511628211 ^ hv ^ uint64(wt)
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

// hashValue is a 64-bit FNV-1a of a cell value, typed so that equal values
// of the column's type hash alike; the common types without fmt.
func hashValue(v any) uint64 {
	h := fnv.New64a()
	var b [9]byte
	switch x := v.(type) {
	case string:
		b[0] = 's'
		h.Write(b[:1])
		h.Write([]byte(x))
	case []byte:
		b[0] = 'b'
		h.Write(b[:1])
		h.Write(x)
	case int:
		b[0] = 'i'
		binary.LittleEndian.PutUint64(b[1:], uint64(x))
		h.Write(b[:])
	case int64:
		b[0] = 'l'
		binary.LittleEndian.PutUint64(b[1:], uint64(x))
		h.Write(b[:])
	case int32:
		b[0] = 'w'
		binary.LittleEndian.PutUint64(b[1:], uint64(x))
		h.Write(b[:])
	case bool:
		b[0] = 'f'
		if x {
			b[0] = 't'
		}
		h.Write(b[:1])
	default:
		fmt.Fprintf(h, "%#v", deref(v))
	}
	return h.Sum64()
}

func asInt64(v any) int64 {
	switch p := v.(type) {
	case *int64:
		return *p
	case *int:
		return int64(*p)
	case *int32:
		return int64(*p)
	}
	return 0
}

// raw is the value a pointer from RowData points to, as the driver can
// bind it again.
func raw(v any) any {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		return v
	}
	return rv.Elem().Interface()
}

// deref turns the pointers RowData scans into into comparable values.
func deref(v any) any {
	e := raw(v)
	switch x := e.(type) {
	case time.Time:
		return x.UTC()
	case gocql.UUID:
		return x.String()
	}
	return e
}
