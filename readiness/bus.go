package readiness

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/regionsync/regionsync/schemas"
)

// Names on NATS.
const (
	// Bucket is the JetStream KV bucket of aggregated verdicts, key = region.
	Bucket = "regionsync_readiness"
	// AuditStream keeps readiness events, alerts and gate decisions,
	// deduplicated by event id (Nats-Msg-Id).
	AuditStream = "REGIONSYNC_AUDIT"
	// SubjectReadiness is followed by ".<region>": a CloudEvent on every
	// change of the region's aggregated state.
	SubjectReadiness = "regionsync.readiness"
	// SubjectAlerts is followed by ".<kind>".
	SubjectAlerts = "regionsync.alerts"
	// SubjectGate carries gate decisions and override changes.
	SubjectGate = "regionsync.gate"
	// SubjectReconcile is followed by ".<flow>": every reconcile report.
	SubjectReconcile = "regionsync.reconcile"
	// SchemaBase is the $id prefix of the JSON Schemas (dataschema).
	SchemaBase = schemas.Base
)

// CloudEvent types.
const (
	TypeReadiness = "io.regionsync.readiness.v1"
	TypeAlert     = "io.regionsync.alert.v1"
	TypeGate      = "io.regionsync.gate.decision.v1"
	TypeOverride  = "io.regionsync.gate.override.v1"
	TypeReconcile = "io.regionsync.reconcile.v1"
)

// ErrStale is returned by PutAggregate when the bucket already holds an
// aggregate of the region at the same or a newer revision.
var ErrStale = errors.New("readiness: a newer aggregate is already published")

// Bus is regionsync's readiness state and events on NATS JetStream.
type Bus struct {
	js jetstream.JetStream
	kv jetstream.KeyValue
}

// OpenBus creates (or updates) the KV bucket and the audit stream and
// returns the bus. replicas is the JetStream replication of both (1 on a
// single server).
func OpenBus(ctx context.Context, js jetstream.JetStream, replicas int) (*Bus, error) {
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: Bucket, Description: "regionsync: latest aggregated readiness verdict per region",
		History: 5, Replicas: max(1, replicas),
	})
	if err != nil {
		return nil, fmt.Errorf("readiness: KV bucket %s: %w", Bucket, err)
	}
	_, err = js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name: AuditStream, Description: "regionsync: readiness events, alerts and gate decisions",
		Subjects:   []string{SubjectReadiness + ".>", SubjectAlerts + ".>", SubjectGate + ".>", SubjectReconcile + ".>"},
		Duplicates: 10 * time.Minute, MaxAge: 90 * 24 * time.Hour, Replicas: max(1, replicas),
	})
	if err != nil {
		return nil, fmt.Errorf("readiness: stream %s: %w", AuditStream, err)
	}
	return &Bus{js: js, kv: kv}, nil
}

// Conn is the NATS connection under the bus.
func (b *Bus) Conn() *nats.Conn { return b.js.Conn() }

// KV returns the readiness bucket.
func (b *Bus) KV() jetstream.KeyValue { return b.kv }

// Latest returns the aggregate stored for region and its KV revision;
// jetstream.ErrKeyNotFound when there is none.
func (b *Bus) Latest(ctx context.Context, region string) (Aggregate, uint64, error) {
	e, err := b.kv.Get(ctx, region)
	if err != nil {
		return Aggregate{}, 0, err
	}
	var a Aggregate
	if err := json.Unmarshal(e.Value(), &a); err != nil {
		return Aggregate{}, e.Revision(), fmt.Errorf("readiness: KV %s key %s revision %d: %w", Bucket, region, e.Revision(), err)
	}
	return a, e.Revision(), nil
}

// PutAggregate stores a unless the bucket holds one of the same region at
// a.Revision or later (ErrStale). It compares and swaps on the KV revision,
// so of several observers publishing at once exactly one wins each step.
// prev is what was stored before (zero State if nothing).
func (b *Bus) PutAggregate(ctx context.Context, a Aggregate) (prev Aggregate, err error) {
	val, err := json.Marshal(a)
	if err != nil {
		return Aggregate{}, err
	}
	for range 5 {
		cur, rev, err := b.Latest(ctx, a.Region)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
			if _, err := b.kv.Create(ctx, a.Region, val); errors.Is(err, jetstream.ErrKeyExists) {
				continue
			} else if err != nil {
				return Aggregate{}, err
			}
			return Aggregate{}, nil
		case err != nil && rev == 0:
			return Aggregate{}, err
		case err == nil && cur.Revision >= a.Revision:
			return cur, ErrStale
		}
		// A malformed value (err != nil, rev > 0) is overwritten.
		if _, err := b.kv.Update(ctx, a.Region, val, rev); errors.Is(err, jetstream.ErrKeyExists) {
			continue
		} else if err != nil {
			return Aggregate{}, err
		}
		return cur, nil
	}
	return Aggregate{}, fmt.Errorf("readiness: KV %s key %s: lost 5 compare-and-swap races", Bucket, a.Region)
}

// NewEvent builds a structured-mode CloudEvent (spec 1.0) with JSON data.
func NewEvent(id, source, typ, subject, schema string, data any, at time.Time) (event.Event, error) {
	e := event.New()
	e.SetID(id)
	e.SetSource(source)
	e.SetType(typ)
	e.SetSubject(subject)
	e.SetTime(at)
	e.SetDataSchema(SchemaBase + schema)
	if err := e.SetData(event.ApplicationJSON, data); err != nil {
		return e, err
	}
	return e, e.Validate()
}

// Publish sends e on subject through JetStream with Nats-Msg-Id = e.ID(),
// so a retried publish is stored once in the audit stream.
func (b *Bus) Publish(ctx context.Context, subject string, e event.Event) error {
	raw, err := json.Marshal(e)
	if err != nil {
		return err
	}
	if _, err := b.js.Publish(ctx, subject, raw, jetstream.WithMsgID(e.ID())); err != nil {
		return fmt.Errorf("readiness: publish %s on %s: %w", e.ID(), subject, err)
	}
	return nil
}

// SyncOverrides makes the bucket's override.<region> keys equal active:
// puts what changed, deletes what is no longer active.
func (b *Bus) SyncOverrides(ctx context.Context, active map[string]Override) error {
	keys, err := b.kv.ListKeys(ctx)
	if err != nil {
		return err
	}
	present := map[string]bool{}
	for k := range keys.Keys() {
		if strings.HasPrefix(k, OverrideKeyPrefix) {
			present[strings.TrimPrefix(k, OverrideKeyPrefix)] = true
		}
	}
	for region := range present {
		if _, ok := active[region]; !ok {
			if err := b.kv.Delete(ctx, OverrideKeyPrefix+region); err != nil {
				return err
			}
		}
	}
	for region, o := range active {
		val, err := json.Marshal(o)
		if err != nil {
			return err
		}
		if e, err := b.kv.Get(ctx, OverrideKeyPrefix+region); err == nil && string(e.Value()) == string(val) {
			continue
		}
		if _, err := b.kv.Put(ctx, OverrideKeyPrefix+region, val); err != nil {
			return err
		}
	}
	return nil
}

// RecordFlip stores the last allowed move of traffic under FlipKey.
func (b *Bus) RecordFlip(ctx context.Context, f Flip) error {
	val, err := json.Marshal(f)
	if err != nil {
		return err
	}
	_, err = b.kv.Put(ctx, FlipKey, val)
	return err
}

// PutFailSafe stores a (NOT_READY, made without etcd) unless the bucket
// already says NOT_READY or UNKNOWN for the region (ErrStale): it takes the
// stored aggregate's revision + 1, so the next aggregate computed with etcd
// (at a higher etcd revision) replaces it. prev is what was stored.
func (b *Bus) PutFailSafe(ctx context.Context, a Aggregate, signer *Signer) (prev Aggregate, err error) {
	cur, rev, err := b.Latest(ctx, a.Region)
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
	case err != nil && rev == 0:
		return Aggregate{}, err
	case err == nil && (cur.State == NotReady || cur.State == Unknown):
		return cur, ErrStale
	}
	a.Revision = cur.Revision + 1
	if err := signer.SignAggregate(&a); err != nil {
		return cur, err
	}
	val, err := json.Marshal(a)
	if err != nil {
		return cur, err
	}
	if rev == 0 {
		_, err = b.kv.Create(ctx, a.Region, val)
	} else {
		_, err = b.kv.Update(ctx, a.Region, val, rev)
	}
	if errors.Is(err, jetstream.ErrKeyExists) {
		return cur, ErrStale // someone wrote meanwhile; next step decides again
	}
	return cur, err
}
