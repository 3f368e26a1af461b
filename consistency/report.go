package consistency

import "time"

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
