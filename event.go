package eventbus

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"

	"github.com/oklog/ulid/v2"
)

// Event is one thing that happened, as the bus carries it. Its JSON form is
// the wire and storage format (see the field tags); json.Marshal followed by
// json.Unmarshal gives an equal Event, with the payload equal as JSON:
// encoding/json compacts a RawMessage it marshals (and escapes <, > and &),
// while the bus and its stores keep the payload's bytes exactly.
//
// An Event is a value: the bus copies it, and subscribers receive copies
// that share the Payload bytes. Treat Payload as read-only once published.
type Event struct {
	ID            ulid.ULID       `json:"id"`            // identity, made by NewEvent or the bus
	Seq           uint64          `json:"seq,omitempty"` // position, assigned by the Bus
	Type          EventType       `json:"event_type"`    // what happened
	Topic         string          `json:"topic"`         // e.g. "worker.task.complete"
	Payload       json.RawMessage `json:"payload"`       // any JSON value; "null" if nil
	Timestamp     time.Time       `json:"timestamp"`     // UTC
	Source        string          `json:"source"`        // actor or user id
	CorrelationID string          `json:"correlation_id,omitempty"`
	// Metadata holds headers: trace context, retry and dead-letter details.
	// Keys are 1–64 bytes of [A-Za-z0-9._-]; at most MaxMetadataPairs pairs
	// and MaxMetadataBytes bytes of keys and values in all; nil when empty.
	// Keys starting with "eventbus-" are the bus's own.
	Metadata map[string]string `json:"metadata,omitempty"`
}

// nullJSON is the payload of an event published with a nil Payload.
var nullJSON = json.RawMessage("null")

// NewEvent returns an event with a fresh ID and the current UTC time. The
// payload is marshalled to JSON once; a json.RawMessage or []byte is taken
// as it is, after checking that it holds valid JSON: its bytes are copied
// exactly (no compaction, no re-escaping), so a signature or hash over them
// survives the bus and its stores. A nil payload is null. The error wraps
// ErrInvalidTopic, ErrInvalidEventType or ErrInvalidPayload.
func NewEvent(t EventType, topic string, payload any, source string) (Event, error) {
	if err := ValidateTopic(topic); err != nil {
		return Event{}, err
	}
	if err := t.check(); err != nil {
		return Event{}, err
	}
	raw, err := marshalPayload(payload)
	if err != nil {
		return Event{}, err
	}
	now := time.Now()
	return Event{
		ID:        newID(now),
		Type:      t,
		Topic:     topic,
		Payload:   raw,
		Timestamp: now.UTC(),
		Source:    source,
	}, nil
}

// marshalPayload returns payload as JSON: a json.RawMessage or []byte is
// checked and copied byte for byte, anything else goes through json.Marshal.
func marshalPayload(payload any) (json.RawMessage, error) {
	var raw []byte
	switch p := payload.(type) {
	case nil:
		return nullJSON, nil
	case json.RawMessage:
		raw = p
	case []byte:
		raw = p
	default:
		b, err := json.Marshal(payload)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalidPayload, err)
		}
		return b, nil
	}
	if raw == nil {
		return nullJSON, nil
	}
	if !validJSON(raw) {
		return nil, fmt.Errorf("%w: not valid JSON", ErrInvalidPayload)
	}
	return bytes.Clone(raw), nil
}

// WithCorrelationID returns a copy of e with its CorrelationID set to id.
func (e Event) WithCorrelationID(id string) Event {
	e.CorrelationID = id
	return e
}

// MatchesTopic reports whether the event's topic matches pattern (see Match).
func (e Event) MatchesTopic(pattern string) bool { return Match(pattern, e.Topic) }

// Decode unmarshals the payload into v, as json.Unmarshal does.
func (e Event) Decode(v any) error {
	p := e.Payload
	if p == nil {
		p = nullJSON
	}
	return json.Unmarshal(p, v)
}

// Validate checks the topic, the type, that the payload is valid JSON (a
// nil payload counts as null) and the metadata. The error wraps
// ErrInvalidTopic, ErrInvalidEventType, ErrInvalidPayload or
// ErrInvalidMetadata.
func (e Event) Validate() error { return e.validate() }

// validate is Validate without copying the event (the publish path).
func (e *Event) validate() error {
	if err := ValidateTopic(e.Topic); err != nil {
		return err
	}
	if err := e.Type.check(); err != nil {
		return err
	}
	if e.Payload != nil && !validJSON(e.Payload) {
		return fmt.Errorf("%w: not valid JSON", ErrInvalidPayload)
	}
	if e.Metadata != nil {
		return ValidateMetadata(e.Metadata)
	}
	return nil
}

// Metadata limits.
const (
	MaxMetadataPairs  = 32   // key/value pairs per event
	MaxMetadataKeyLen = 64   // bytes per key
	MaxMetadataBytes  = 8192 // bytes of keys and values together
)

// ValidateMetadata reports whether md is valid event metadata: keys of
// 1–64 bytes of [A-Za-z0-9._-], at most MaxMetadataPairs pairs and
// MaxMetadataBytes bytes of keys and values in all. Values may be any
// string. The error wraps ErrInvalidMetadata and names the reason.
func ValidateMetadata(md map[string]string) error {
	if len(md) > MaxMetadataPairs {
		return fmt.Errorf("%w: %d pairs, more than %d", ErrInvalidMetadata, len(md), MaxMetadataPairs)
	}
	size := 0
	for k, v := range md {
		if reason := checkMetadataKey(k); reason != "" {
			return fmt.Errorf("%w: key %q: %s", ErrInvalidMetadata, clip(k), reason)
		}
		size += len(k) + len(v)
	}
	if size > MaxMetadataBytes {
		return fmt.Errorf("%w: %d bytes, more than %d", ErrInvalidMetadata, size, MaxMetadataBytes)
	}
	return nil
}

func checkMetadataKey(k string) string {
	switch {
	case k == "":
		return "empty"
	case len(k) > MaxMetadataKeyLen:
		return fmt.Sprintf("longer than %d bytes", MaxMetadataKeyLen)
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Sprintf("byte %q not in [A-Za-z0-9._-]", c)
		}
	}
	return ""
}

// eventJSON mirrors Event for decoding with a strict timestamp.
type eventJSON Event

// UnmarshalJSON decodes an Event from its JSON form, checking the event type.
// The timestamp is converted to UTC and the payload kept exactly as it
// came (its bytes, spaces included); an empty Metadata object becomes nil.
func (e *Event) UnmarshalJSON(data []byte) error {
	var v eventJSON
	if err := json.Unmarshal(data, &v); err != nil {
		return err
	}
	v.Timestamp = v.Timestamp.UTC()
	if len(v.Metadata) == 0 {
		v.Metadata = nil
	}
	*e = Event(v)
	return nil
}
