package consistency

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// The Cassandra job metrics follow a resumed run's progress without
// counting the earlier process's rows twice, and reflect the report.
func TestCassandraMetrics(t *testing.T) {
	m := NewMetrics(prometheus.NewRegistry())
	r := &TableDiffReport{Table: "t", Ranges: 256, Next: 64, RangesResumed: 64, RowsA: 640, RowsB: 640, Took: 64 * time.Second}
	m.cassStarted("j", true)
	m.cassSeed("j", r) // 1,280 rows were counted by the process that died
	r.Next, r.RowsA, r.RowsB, r.Took = 128, 1280, 1279, 128*time.Second
	m.cassRange("j", r)
	c := &m.cass
	for name, pair := range map[string][2]float64{
		"ranges done":   {testutil.ToFloat64(c.rangesDone.WithLabelValues("j", "t")), 128},
		"ranges":        {testutil.ToFloat64(c.rangesTotal.WithLabelValues("j", "t")), 256},
		"eta seconds":   {testutil.ToFloat64(c.eta.WithLabelValues("j", "t")), 128},
		"rows compared": {testutil.ToFloat64(c.rows.WithLabelValues("j")), 1279},
		"resumed":       {testutil.ToFloat64(c.resumed.WithLabelValues("j")), 1},
	} {
		if pair[0] != pair[1] {
			t.Errorf("%s: %v, want %v", name, pair[0], pair[1])
		}
	}
	rep := CassandraReport{Job: "j", FinishedAt: time.Unix(1764504000, 0), Tables: []TableDiffReport{{MissingInA: 1, MissingInB: 2, CellRows: 3, Repaired: 6}}}
	m.cassReport(rep)
	if v := testutil.ToFloat64(c.unrepaired.WithLabelValues("j")); v != 0 {
		t.Errorf("unrepaired divergence %v with every row repaired", v)
	}
	if v := testutil.ToFloat64(c.divRows.WithLabelValues("j", "cells")); v != 3 {
		t.Errorf("cells %v", v)
	}
	rep.Tables[0].Repaired = 5
	m.cassReport(rep)
	if v := testutil.ToFloat64(c.unrepaired.WithLabelValues("j")); v != 1 {
		t.Errorf("unrepaired divergence %v with a row left", v)
	}
	if v := testutil.ToFloat64(c.runs.WithLabelValues("j", "divergent")); v != 1 {
		t.Errorf("divergent runs %v", v)
	}
}
