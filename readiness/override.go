package readiness

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// WriteOverride validates o and writes it to etcd at key (the record;
// publishers mirror active overrides to the KV bucket each interval).
func WriteOverride(ctx context.Context, cli *clientv3.Client, key string, o Override, maxDuration time.Duration) error {
	o.SchemaVersion = SchemaVersion
	if err := o.Validate(maxDuration); err != nil {
		return err
	}
	val, err := json.Marshal(o)
	if err != nil {
		return err
	}
	if _, err := cli.Put(ctx, key, string(val)); err != nil {
		return fmt.Errorf("override of %s: write %s: %w", o.Region, key, err)
	}
	return nil
}

// OverrideChange is the audit record of an override set or cleared.
type OverrideChange struct {
	Action   string    `json:"action"` // "set" or "clear"
	Override Override  `json:"override"`
	At       time.Time `json:"at"`
}

// AuditOverride publishes the change on regionsync.gate.override.
func (b *Bus) AuditOverride(ctx context.Context, source string, c OverrideChange) error {
	ev, err := NewEvent(uuid.NewString(), source, TypeOverride, c.Override.Region, "override-change.schema.json", c, c.At)
	if err != nil {
		return err
	}
	return b.Publish(ctx, SubjectGate+".override", ev)
}

// AuditDecision publishes a gate decision on regionsync.gate.decision.
func (b *Bus) AuditDecision(ctx context.Context, source string, d Decision) error {
	ev, err := NewEvent(uuid.NewString(), source, TypeGate, d.To, "gate-decision.schema.json", d, d.DecidedAt)
	if err != nil {
		return err
	}
	return b.Publish(ctx, SubjectGate+".decision", ev)
}
