package main

import (
	"flag"
	"os"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/virtualservice-west.yaml")

// The YAML for a failover to west equals the golden file, and bad weights
// are refused.
func TestRender(t *testing.T) {
	got, err := Render(Spec{Name: "payments", Namespace: "prod", Host: "payments.prod.svc.cluster.local",
		Reason: "failed over east → west: target west is READY (2 of 2 live observers say READY)"}, Weights([]string{"east", "west"}, "west"))
	if err != nil {
		t.Fatal(err)
	}
	const golden = "testdata/virtualservice-west.yaml"
	if *update {
		_ = os.MkdirAll("testdata", 0o755)
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
	if _, err := Render(Spec{Name: "x", Namespace: "y", Host: "z"}, []Route{{Region: "east", Subset: "east", Weight: 60}}); err == nil {
		t.Fatal("weights summing to 60 accepted")
	}
}
