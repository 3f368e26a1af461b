package consistency

import (
	"encoding/json"
	"fmt"
	"time"
)

// KafkaAuditReport is the result of one audit run over a flow's topics
// (schemas/reconcile-report.schema.json, kind "kafka-audit"): totals, and
// every window that is not an exact copy with the offsets that differ.
type KafkaAuditReport struct {
	SchemaVersion int    `json:"schemaVersion"`
	Kind          string `json:"kind"`
	Flow          string `json:"flow"`
	Source        string `json:"source"`
	Target        string `json:"target"`
	// ExactlyOnce: the flow promises no duplicates, so they count as
	// divergence.
	ExactlyOnce bool      `json:"exactlyOnce"`
	StartedAt   time.Time `json:"startedAt"`
	FinishedAt  time.Time `json:"finishedAt"`
	Topics      []string  `json:"topics"`
	// Windows judged, of them clean, and still waiting for the mirror.
	WindowsJudged  int `json:"windowsJudged"`
	WindowsClean   int `json:"windowsClean"`
	WindowsPending int `json:"windowsPending"`
	// RecordsCompared: source records in the judged windows.
	RecordsCompared int64 `json:"recordsCompared"`
	Missing         int   `json:"missing"`
	Duplicated      int   `json:"duplicated"`
	Reordered       int   `json:"reordered"`
	Unexpected      int   `json:"unexpected"`
	// Divergent windows, with the offsets.
	Divergent []WindowResult `json:"divergent"`
	Errors    []string       `json:"errors"`
}

// Clean reports whether every judged window is an exact copy.
func (r KafkaAuditReport) Clean() bool {
	return len(r.Divergent) == 0 && len(r.Errors) == 0
}

// Add folds a topic's windows into the report.
func (r *KafkaAuditReport) Add(ws []WindowResult, pending int) {
	r.WindowsPending += pending
	for _, w := range ws {
		r.WindowsJudged++
		r.RecordsCompared += int64(w.Source.Records)
		r.Missing += len(w.Missing)
		r.Duplicated += len(w.Duplicated)
		r.Reordered += len(w.Reordered)
		r.Unexpected += len(w.Unexpected)
		if w.Clean() {
			r.WindowsClean++
		} else {
			r.Divergent = append(r.Divergent, w)
		}
	}
}

// CassandraReport is the result of one run of a Cassandra diff job
// (schemas/reconcile-report.schema.json, kind "cassandra-diff"): one report
// per table, in the job's order.
type CassandraReport struct {
	SchemaVersion int    `json:"schemaVersion"`
	Kind          string `json:"kind"`
	Job           string `json:"job"`
	Keyspace      string `json:"keyspace"`
	// RegionA and RegionB are the regions whose DCs (DCA, DCB) were
	// compared.
	RegionA string `json:"regionA"`
	RegionB string `json:"regionB"`
	DCA     string `json:"dcA"`
	DCB     string `json:"dcB"`
	// Mode: "dry-run" or "repair".
	Mode       string    `json:"mode"`
	StartedAt  time.Time `json:"startedAt"`
	FinishedAt time.Time `json:"finishedAt"`
	// Resumed: the run continued one an earlier process left unfinished.
	Resumed bool `json:"resumed"`
	// ScheduleSeconds: the job's interval plus jitter, the longest wait for
	// the next run when all goes well; readiness allows this much on top of
	// max_since_reconcile before judging the report stale.
	ScheduleSeconds float64           `json:"scheduleSeconds"`
	Tables          []TableDiffReport `json:"tables"`
	Errors          []string          `json:"errors"`
}

// Totals sums the tables: ranges, rows compared (both DCs), divergent and
// repaired rows.
func (r CassandraReport) Totals() (ranges int, rows int64, divergent, repaired int) {
	for _, t := range r.Tables {
		ranges += t.Ranges
		rows += t.RowsA + t.RowsB
		divergent += t.DivergentRows()
		repaired += t.Repaired
	}
	return
}

// CassandraDivergence says whether a report shows unrepaired divergence
// (rows that differ and were not repaired, or errors), and why.
func CassandraDivergence(r CassandraReport) (bool, string) {
	_, _, div, rep := r.Totals()
	errs := len(r.Errors)
	for _, t := range r.Tables {
		errs += len(t.Errors)
	}
	if div == rep && errs == 0 {
		return false, ""
	}
	return true, fmt.Sprintf("cassandra diff %s (%s ⇄ %s, %s): %d divergent rows, %d repaired, %d errors", r.Job, r.DCA, r.DCB, r.Mode, div, rep, errs)
}

// DecodeReport parses a stored reconcile report by its kind: a
// KafkaAuditReport ("kafka-audit") or a CassandraReport ("cassandra-diff").
func DecodeReport(b []byte) (any, error) {
	var k struct {
		Kind string `json:"kind"`
	}
	if err := json.Unmarshal(b, &k); err != nil {
		return nil, err
	}
	switch k.Kind {
	case "kafka-audit":
		var r KafkaAuditReport
		return r, json.Unmarshal(b, &r)
	case "cassandra-diff":
		var r CassandraReport
		return r, json.Unmarshal(b, &r)
	}
	return nil, fmt.Errorf("unknown report kind %q", k.Kind)
}
