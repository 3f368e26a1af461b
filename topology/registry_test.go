package topology

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/regionsync/regionsync/topology/etcdtest"
)

func spec(name string, role Role) RegionSpec {
	return RegionSpec{SchemaVersion: SchemaVersion, Name: name, Role: role}
}

// TestApplyCompareAndSwap: Apply writes only if the registry is unchanged
// since the expected revision, and names what changed when it is not.
func TestApplyCompareAndSwap(t *testing.T) {
	c := etcdtest.Start(t, 1)
	cli := c.Client(t)
	prefix := uniquePrefix(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	// 0: the registry must be empty.
	rev1, err := Apply(ctx, cli, prefix, []RegionSpec{spec("east", RolePrimary), spec("west", RoleSecondary)}, 0)
	if err != nil {
		t.Fatalf("first apply: %v", err)
	}
	if _, err := Apply(ctx, cli, prefix, []RegionSpec{spec("east", RoleSecondary)}, 0); !errors.Is(err, ErrConflict) {
		t.Fatalf("apply expecting an empty registry: %v, want ErrConflict", err)
	}

	// Someone else changes west after rev1.
	other := c.Client(t)
	rev2, err := Apply(ctx, other, prefix, []RegionSpec{spec("west", RoleWitness)}, rev1)
	if err != nil {
		t.Fatalf("second writer: %v", err)
	}
	// Our apply based on rev1 must now fail, naming west and its revision,
	// and write nothing.
	_, err = Apply(ctx, cli, prefix, []RegionSpec{spec("east", RoleSecondary)}, rev1)
	var ce *ConflictError
	if !errors.As(err, &ce) || !errors.Is(err, ErrConflict) {
		t.Fatalf("stale apply: %v, want a *ConflictError", err)
	}
	if ce.Expected != rev1 || ce.Changed["west"] != rev2 || len(ce.Changed) != 1 || ce.Revision < rev2 {
		t.Fatalf("conflict details: %+v (rev1 %d, rev2 %d)", ce, rev1, rev2)
	}
	if !strings.Contains(err.Error(), "west (revision") {
		t.Errorf("message does not name the changed region: %v", err)
	}
	got, err := Show(ctx, cli, prefix, ShowOptions{NoHealth: true})
	if err != nil {
		t.Fatal(err)
	}
	if got.Regions[0].Role != RolePrimary || got.Regions[1].Role != RoleWitness {
		t.Fatalf("registry after the refused apply: %+v", got.Regions)
	}

	// Re-read, retry with the fresh revision: it works.
	if _, err := Apply(ctx, cli, prefix, []RegionSpec{spec("east", RoleSecondary)}, got.Revision); err != nil {
		t.Fatalf("apply at the fresh revision %d: %v", got.Revision, err)
	}
	// A new region created by someone else is a conflict too.
	cur, _ := Show(ctx, cli, prefix, ShowOptions{NoHealth: true})
	if _, err := Apply(ctx, other, prefix, []RegionSpec{spec("north", RoleSecondary)}, cur.Revision); err != nil {
		t.Fatal(err)
	}
	if _, err := Apply(ctx, cli, prefix, []RegionSpec{spec("east", RolePrimary)}, cur.Revision); !errors.As(err, &ce) || ce.Changed["north"] == 0 {
		t.Fatalf("apply after a region was created: %v", err)
	}
	// AnyRevision writes regardless.
	if _, err := Apply(ctx, cli, prefix, []RegionSpec{spec("east", RolePrimary)}, AnyRevision); err != nil {
		t.Fatalf("unconditional apply: %v", err)
	}

	// Invalid specs: every problem reported, nothing written.
	before, _ := Show(ctx, cli, prefix, ShowOptions{NoHealth: true})
	_, err = Apply(ctx, cli, prefix, []RegionSpec{spec("ok", RolePrimary), {SchemaVersion: 1, Name: "Bad", Role: "x"}, spec("ok", RoleWitness)}, AnyRevision)
	for _, want := range []string{"regions[1].name:", "regions[1].role:", `regions[2].name: duplicate region "ok"`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("invalid apply: %v; want %q", err, want)
		}
	}
	after, _ := Show(ctx, cli, prefix, ShowOptions{NoHealth: true})
	if after.Revision != before.Revision {
		t.Errorf("an invalid apply wrote something: revision %d → %d", before.Revision, after.Revision)
	}
}
