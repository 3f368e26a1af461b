package readiness

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/regionsync/regionsync/mirror"
	"github.com/regionsync/regionsync/replicate"
	"github.com/regionsync/regionsync/schemas"
)

var update = flag.Bool("update", false, "rewrite the golden files in schemas/testdata")

// goldenValues are deterministic instances of every Go type the schemas
// describe, built the way regionsync builds them (signed with a fixed key).
func goldenValues(t *testing.T) map[string]any {
	t.Helper()
	at := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	signer := &Signer{KeyID: "prod-2026", Key: ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, 32))}
	e := NewEvaluator("east", budgets)
	in := Inputs{Region: "west", Now: at, EtcdQuorum: true, Workers: 2, ExpectedStores: []string{replicate.StoreKafka},
		Statuses: []replicate.Status{kafkaStatus(1.5)}}
	in.Statuses[0].ObservedAt = at
	v := e.Evaluate(in)
	if err := signer.SignVerdict(&v); err != nil {
		t.Fatal(err)
	}
	a := AggregateVerdicts("west", []Verdict{v}, at, 4242, "east", 10*time.Second)
	if err := signer.SignAggregate(&a); err != nil {
		t.Fatal(err)
	}
	o := Override{SchemaVersion: SchemaVersion, Region: "west", State: NotReady, By: "alice@example.com", Reason: "planned maintenance",
		CreatedAt: at, ExpiresAt: at.Add(time.Hour)}
	d := Decide("east", "west", View{Aggregates: map[string]Aggregate{"west": a}, Overrides: map[string]*Override{"west": &o}}, Rules{}, at)
	al := Alert{Kind: "readiness", Severity: "critical", Region: "west", From: Ready, To: NotReady, At: at, Revision: 4242,
		Summary: "region west is NOT_READY: kafka lag_seconds over budget"}
	ev, err := NewEvent("readiness-west-4242", "regionsync://east", TypeReadiness, "west", "aggregate.schema.json", a, at)
	if err != nil {
		t.Fatal(err)
	}
	return map[string]any{
		"verdict":         v,
		"aggregate":       a,
		"override":        o,
		"gate-decision":   d,
		"alert":           al,
		"override-change": OverrideChange{Action: "set", Override: o, At: at},
		"cloudevent":      ev,
		"heartbeat":       mirror.Heartbeat{Flow: "east-to-west", Source: "east", Target: "west", SentAt: at.UnixMilli()},
	}
}

// TestSchemaGolden: every Go value validates against its schema, equals its
// golden file (go test -run TestSchemaGolden -update rewrites them), and
// the golden file decodes into the Go type and encodes back unchanged.
func TestSchemaGolden(t *testing.T) {
	for kind, v := range goldenValues(t) {
		t.Run(kind, func(t *testing.T) {
			got, err := json.MarshalIndent(v, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, '\n')
			if err := schemas.Validate(kind, got); err != nil {
				t.Fatalf("the Go value does not match its schema: %v\n%s", err, got)
			}
			path := filepath.Join("..", "schemas", "testdata", kind+"-golden.json")
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to write it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("%s differs from the Go value:\n got %s\nwant %s", path, got, want)
			}
			back := reflect.New(reflect.TypeOf(v))
			if kind == "cloudevent" {
				return // the SDK's event type round-trips through its own codec
			}
			if err := json.Unmarshal(want, back.Interface()); err != nil {
				t.Fatal(err)
			}
			again, _ := json.MarshalIndent(back.Elem().Interface(), "", "  ")
			if !bytes.Equal(append(again, '\n'), want) {
				t.Fatalf("round trip through %T changed it:\n%s", v, again)
			}
		})
	}
}

// TestSchemaBad: every schemas/testdata/<kind>-*.bad.json of the readiness
// kinds is rejected, and the error names where.
func TestSchemaBad(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join("..", "schemas", "testdata", "*.bad.json"))
	n := 0
	for _, f := range files {
		base := filepath.Base(f)
		kind := ""
		for _, k := range schemas.Kinds() {
			if strings.HasPrefix(base, k+"-") && len(k) > len(kind) {
				kind = k
			}
		}
		if kind == "region" || kind == "worker" {
			continue // topology's TestSchemas
		}
		n++
		t.Run(base, func(t *testing.T) {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			err = schemas.Validate(kind, b)
			if err == nil || !strings.Contains(err.Error(), "at /") {
				t.Fatalf("bad %s accepted or not located: %v", kind, err)
			}
			t.Log(err)
		})
	}
	if n < 6 {
		t.Fatalf("only %d bad examples", n)
	}
}
