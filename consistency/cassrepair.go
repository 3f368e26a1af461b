package consistency

import (
	"context"
	"fmt"
	"sort"
	"strings"

	gocql "github.com/apache/cassandra-gocql-driver/v2"
	"golang.org/x/time/rate"
)

// repairer repairs the divergent rows of one token range. Cassandra's own
// repair would converge both DCs to the last write of every cell, deletions
// included; this does the same through CQL, with every write carrying the
// original write time (USING TIMESTAMP) and the remaining TTL, so nothing
// newer than what was read can be shadowed:
//
//  1. the newer cell of each differing pair, and every cell of a row one DC
//     lacks, is written with its write time and TTL (EACH_QUORUM, through
//     the lacking DC). A write loses against a newer deletion in the other
//     DC, which CQL does not show;
//  2. the range is read again: a row still missing, or a cell still null on
//     one side, is there because a newer deletion shadowed the copy, so the
//     deletion is propagated: the row (or cell) is deleted with a time just
//     above the newest write time read for it;
//  3. the range is read a third time, and every row that still differs is
//     an error.
type repairer struct {
	o        TableDiffOptions
	sh       tableShape
	from, to int64
	lim      *rate.Limiter
}

// repairRange returns how many of ds read identical afterwards, and errors.
func (rp repairer) repairRange(ctx context.Context, a, b map[string]row, ds []RowDiff) (int, []string) {
	var errs []string
	failed := map[string]bool{}
	note := func(key string, err error) {
		if err != nil {
			failed[key] = true
			errs = append(errs, fmt.Sprintf("%s.%s row %s: %v", rp.o.Keyspace, rp.o.Table, key, err))
		}
	}
	for _, d := range ds {
		ra, inA := a[d.Key]
		rb, inB := b[d.Key]
		switch {
		case !inB:
			note(d.Key, rp.copyRow(ctx, ra, rp.o.B))
		case !inA:
			note(d.Key, rp.copyRow(ctx, rb, rp.o.A))
		default:
			note(d.Key, rp.copyCells(ctx, ra, rb))
		}
		if ctx.Err() != nil {
			return 0, append(errs, ctx.Err().Error())
		}
	}
	a, b, err := rp.reread(ctx)
	if err != nil {
		return 0, append(errs, err.Error())
	}
	for _, d := range compareRows(a, b, rp.o.A.Name, rp.o.B.Name, rp.sh) {
		if failed[d.Key] || !contains(ds, d.Key) {
			continue // a failed copy is not a deletion; a new divergence is the next run's
		}
		ra, inA := a[d.Key]
		rb, inB := b[d.Key]
		switch {
		case !inB:
			note(d.Key, rp.deleteRow(ctx, ra))
		case !inA:
			note(d.Key, rp.deleteRow(ctx, rb))
		default:
			note(d.Key, rp.deleteCells(ctx, ra, rb))
		}
	}
	a, b, err = rp.reread(ctx)
	if err != nil {
		return 0, append(errs, err.Error())
	}
	left := 0
	for _, d := range compareRows(a, b, rp.o.A.Name, rp.o.B.Name, rp.sh) {
		if contains(ds, d.Key) {
			left++
			if !failed[d.Key] {
				errs = append(errs, fmt.Sprintf("%s.%s row %s: still differs after repair (%s)", rp.o.Keyspace, rp.o.Table, d.Key, describe(d)))
			}
		}
	}
	return len(ds) - left, errs
}

func contains(ds []RowDiff, key string) bool {
	i := sort.Search(len(ds), func(i int) bool { return ds[i].Key >= key })
	return i < len(ds) && ds[i].Key == key
}

func describe(d RowDiff) string {
	if d.Kind == "missing" {
		return "missing in " + d.MissingIn
	}
	var cs []string
	for _, c := range d.Cells {
		cs = append(cs, c.Column)
	}
	return "cells " + strings.Join(cs, ", ")
}

func (rp repairer) reread(ctx context.Context) (map[string]row, map[string]row, error) {
	a, _, b, _, err := readBoth(ctx, rp.o, rp.sh, rp.from, rp.to)
	return a, b, err
}

// copyRow writes every cell of src into dst's DC with its write time and
// TTL; INSERT, so the row exists there even if later cells are deleted.
func (rp repairer) copyRow(ctx context.Context, src row, dst DiffDC) error {
	var cols []int
	for i := range rp.sh.regular {
		cols = append(cols, i)
	}
	return rp.writeCells(ctx, dst, src, cols, true)
}

// copyCells writes the newer of each differing cell into the other DC. At
// equal write times both values are written, so Cassandra's own tie-break
// (the greater value) decides in both DCs.
func (rp repairer) copyCells(ctx context.Context, ra, rb row) error {
	var toA, toB []int
	for i, c := range rp.sh.regular {
		if ra.cells[i] == rb.cells[i] && ra.wt[i] == rb.wt[i] {
			continue
		}
		if !rp.sh.writetime[c] {
			return fmt.Errorf("column %s differs and is a non-frozen collection, whose cells have no single write time: not repaired", c)
		}
		if ra.wt[i] >= rb.wt[i] && ra.wt[i] > 0 {
			toB = append(toB, i)
		}
		if rb.wt[i] >= ra.wt[i] && rb.wt[i] > 0 {
			toA = append(toA, i)
		}
	}
	if err := rp.writeCells(ctx, rp.o.B, ra, toB, false); err != nil {
		return err
	}
	return rp.writeCells(ctx, rp.o.A, rb, toA, false)
}

// writeCells writes src's non-null cells cols through dst, one statement
// per distinct (write time, TTL).
func (rp repairer) writeCells(ctx context.Context, dst DiffDC, src row, cols []int, insert bool) error {
	type stamp struct{ wt, ttl int64 }
	groups := map[stamp][]int{}
	var skipped []string
	for _, i := range cols {
		c := rp.sh.regular[i]
		switch {
		case !rp.sh.writetime[c]:
			skipped = append(skipped, c)
		case src.wt[i] > 0:
			s := stamp{src.wt[i], src.ttl[i]}
			groups[s] = append(groups[s], i)
		}
	}
	if insert && len(groups) == 0 {
		return fmt.Errorf("no cell with a write time to copy into %s (a row of only primary key or collection columns): not repaired", dst.Name)
	}
	for s, is := range groups {
		var names []string
		var args []any
		for _, i := range is {
			names = append(names, rp.sh.regular[i])
			args = append(args, src.vals[i])
		}
		var q string
		if insert {
			keys := rp.sh.keyColumns()
			names = append(keys, names...)
			args = append(append([]any{}, src.keyVals...), args...)
			q = fmt.Sprintf("INSERT INTO %q.%q (%s) VALUES (%s) USING TIMESTAMP ? AND TTL ?", rp.o.Keyspace, rp.o.Table,
				strings.Join(names, ", "), strings.TrimSuffix(strings.Repeat("?, ", len(names)), ", "))
			args = append(args, s.wt, s.ttl)
		} else {
			var set []string
			for _, n := range names {
				set = append(set, n+" = ?")
			}
			q = fmt.Sprintf("UPDATE %q.%q USING TIMESTAMP ? AND TTL ? SET %s WHERE %s", rp.o.Keyspace, rp.o.Table, strings.Join(set, ", "), rp.where())
			args = append(append([]any{s.wt, s.ttl}, args...), src.keyVals...)
		}
		if err := rp.exec(ctx, dst, q, args...); err != nil {
			return fmt.Errorf("write into %s: %w", dst.Name, err)
		}
	}
	if len(skipped) > 0 {
		return fmt.Errorf("columns %s are non-frozen collections, whose cells have no single write time: not copied into %s", strings.Join(skipped, ", "), dst.Name)
	}
	return nil
}

// deleteRow deletes the row everywhere, just after the newest write time
// read for it: a row the other DC deleted later than these writes.
func (rp repairer) deleteRow(ctx context.Context, r row) error {
	var newest int64
	for _, wt := range r.wt {
		newest = max(newest, wt)
	}
	if newest == 0 {
		return fmt.Errorf("no write time to delete the row at")
	}
	q := fmt.Sprintf("DELETE FROM %q.%q USING TIMESTAMP ? WHERE %s", rp.o.Keyspace, rp.o.Table, rp.where())
	return rp.exec(ctx, rp.o.A, q, append([]any{newest + 1}, r.keyVals...)...)
}

// deleteCells deletes, everywhere, every cell null on one side and set on
// the other after the copy: the null side deleted it later.
func (rp repairer) deleteCells(ctx context.Context, ra, rb row) error {
	for i, c := range rp.sh.regular {
		if ra.cells[i] == rb.cells[i] && ra.wt[i] == rb.wt[i] {
			continue
		}
		var wt int64
		switch {
		case ra.wt[i] == 0 && rb.wt[i] > 0:
			wt = rb.wt[i]
		case rb.wt[i] == 0 && ra.wt[i] > 0:
			wt = ra.wt[i]
		default:
			continue // both set: the third read reports it
		}
		q := fmt.Sprintf("DELETE %s FROM %q.%q USING TIMESTAMP ? WHERE %s", c, rp.o.Keyspace, rp.o.Table, rp.where())
		if err := rp.exec(ctx, rp.o.A, q, append([]any{wt + 1}, ra.keyVals...)...); err != nil {
			return err
		}
	}
	return nil
}

func (rp repairer) where() string {
	var w []string
	for _, k := range rp.sh.keyColumns() {
		w = append(w, k+" = ?")
	}
	return strings.Join(w, " AND ")
}

// exec runs one repair write at EACH_QUORUM: acknowledged by a quorum in
// every DC, so a following LOCAL_ONE read in either DC sees it.
func (rp repairer) exec(ctx context.Context, dc DiffDC, q string, args ...any) error {
	if err := wait(ctx, rp.lim, 1); err != nil {
		return err
	}
	return dc.Session.Query(q, args...).Consistency(gocql.EachQuorum).ExecContext(ctx)
}
