package logging

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func TestNew(t *testing.T) {
	tests := []struct {
		format, level string
		wantErr       string
	}{
		{"text", "info", ""},
		{"json", "debug", ""},
		{"", "", ""},
		{"xml", "info", `log format "xml"`},
		{"text", "loud", `log level "loud"`},
	}
	for _, tt := range tests {
		t.Run(tt.format+"/"+tt.level, func(t *testing.T) {
			var buf bytes.Buffer
			l, err := New(&buf, tt.format, tt.level)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			l.Info("hello", "k", "v")
			if !strings.Contains(buf.String(), "hello") {
				t.Fatalf("output %q lacks the message", buf.String())
			}
		})
	}
}

func TestJSONAndLevelFilter(t *testing.T) {
	var buf bytes.Buffer
	l, err := New(&buf, "json", "warn")
	if err != nil {
		t.Fatal(err)
	}
	l.Info("dropped")
	l.Warn("kept", "region", "east")
	var rec map[string]any
	if err := json.Unmarshal(buf.Bytes(), &rec); err != nil {
		t.Fatalf("not one JSON record: %q: %v", buf.String(), err)
	}
	if rec["msg"] != "kept" || rec["region"] != "east" {
		t.Fatalf("record = %v", rec)
	}
}
