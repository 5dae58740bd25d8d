package wsbridge

import (
	"encoding/json"
	"errors"
	"sync/atomic"

	"github.com/choiros/eventbus"
)

// Message types the server sends, the values of Message.Type.
const (
	TypeReady   = "ready"   // first message: the connection's patterns, the bus's epoch and last Seq
	TypeReset   = "reset"   // the client's from was of another epoch or beyond the bus's Seqs
	TypeEvent   = "event"   // one event, in Message.Event
	TypeAck     = "ack"     // a control message succeeded
	TypeError   = "error"   // a control message failed; nothing changed
	TypeDropped = "dropped" // events were dropped for this client, or cannot be replayed
)

// ReasonNotStored is the Reason of a dropped notice about the Seqs that a
// resume (the from parameter) cannot replay because the store no longer
// holds them.
const ReasonNotStored = "not_stored"

// Control operations a client sends, the values of Message.Op.
const (
	OpSubscribe   = "subscribe"
	OpUnsubscribe = "unsubscribe"
	OpPublish     = "publish"
)

// Message is one JSON text frame of the wire protocol, in either direction;
// each kind uses some of the fields (see the package documentation). Go
// clients can decode every server frame into it.
type Message struct {
	Type     string          `json:"type,omitempty"`     // server → client: ready, reset, event, ack, error, dropped
	Op       string          `json:"op,omitempty"`       // client → server, echoed in ack and error
	ID       json.RawMessage `json:"id,omitempty"`       // optional client tag, echoed in ack and error
	Pattern  string          `json:"pattern,omitempty"`  // subscribe, unsubscribe
	Patterns []string        `json:"patterns,omitempty"` // ready: the connection's patterns
	Epoch    string          `json:"epoch,omitempty"`    // ready, reset: the bus's epoch (eventbus.Bus.Epoch)
	LastSeq  uint64          `json:"last_seq,omitempty"` // ready, reset: the bus's last Seq (absent when 0)
	Event    *eventbus.Event `json:"event,omitempty"`    // event; publish (client → server)
	EventID  string          `json:"event_id,omitempty"` // ack of publish: the ID the event got
	Topic    string          `json:"topic,omitempty"`    // ack of publish
	Error    string          `json:"error,omitempty"`    // error: what went wrong
	Code     string          `json:"code,omitempty"`     // error: a short machine-readable reason
	Count    uint64          `json:"count,omitempty"`    // dropped: events dropped since the last notice
	Total    uint64          `json:"total,omitempty"`    // dropped: events dropped on this connection so far
	Reason   string          `json:"reason,omitempty"`   // dropped: "not_stored" for events a resume cannot replay
}

// request is a client message as the server decodes it. The event of a
// publish is decoded separately, leniently, into publishEvent.
type request struct {
	Op      string          `json:"op"`
	ID      json.RawMessage `json:"id"`
	Pattern string          `json:"pattern"`
	Event   json.RawMessage `json:"event"`
}

// publishEvent is what a client may set on an event it publishes. ID, Seq
// and Timestamp are the server's to assign and are ignored; Source is kept
// only with WithTrustClientSource.
type publishEvent struct {
	Type          eventbus.EventType `json:"event_type"`
	Topic         string             `json:"topic"`
	Payload       json.RawMessage    `json:"payload"`
	Source        string             `json:"source"`
	CorrelationID string             `json:"correlation_id"`
	Metadata      map[string]string  `json:"metadata"`
}

// Error codes, the values of Message.Code.
const (
	codeMalformed       = "malformed"
	codeUnknownOp       = "unknown_op"
	codeInvalidPattern  = "invalid_pattern"
	codeTooManyPatterns = "too_many_patterns"
	codeNotSubscribed   = "not_subscribed"
	codeForbidden       = "forbidden"
	codePublishDisabled = "publish_disabled"
	codeTypeNotAllowed  = "type_not_allowed"
	codeInvalidEvent    = "invalid_event"
	codeClosed          = "closed"
	codeInternal        = "internal"
)

// codeOf names the category of err for an error reply.
func codeOf(err error) string {
	switch {
	case errors.Is(err, ErrMalformed):
		return codeMalformed
	case errors.Is(err, ErrUnknownOp):
		return codeUnknownOp
	case errors.Is(err, ErrTooManyPatterns):
		return codeTooManyPatterns
	case errors.Is(err, ErrNotSubscribed):
		return codeNotSubscribed
	case errors.Is(err, ErrPublishDisabled):
		return codePublishDisabled
	case errors.Is(err, ErrTypeNotAllowed):
		return codeTypeNotAllowed
	case errors.Is(err, eventbus.ErrForbidden):
		return codeForbidden
	case errors.Is(err, eventbus.ErrInvalidPattern):
		return codeInvalidPattern
	case errors.Is(err, eventbus.ErrInvalidTopic), errors.Is(err, eventbus.ErrInvalidEventType),
		errors.Is(err, eventbus.ErrInvalidPayload), errors.Is(err, eventbus.ErrInvalidMetadata):
		return codeInvalidEvent
	case errors.Is(err, eventbus.ErrClosed):
		return codeClosed
	}
	return codeInternal
}

// frameCache shares the encoded event frame among the connections that
// send the same event: a fixed ring of slots indexed by Seq, each holding
// the newest frame that hashed there (a connection that lags behind
// encodes its old events itself rather than evicting newer ones). Frames
// are immutable once stored.
type frameCache struct {
	slots [4096]atomic.Pointer[cachedFrame]
}

type cachedFrame struct {
	seq uint64
	b   []byte
}

// frame returns the event message for e, encoding it at most once per Seq
// while it stays in the ring.
func (fc *frameCache) frame(e *eventbus.Event) ([]byte, error) {
	if e.Seq == 0 {
		return encodeEvent(e)
	}
	slot := &fc.slots[e.Seq%uint64(len(fc.slots))]
	old := slot.Load()
	if old != nil && old.seq == e.Seq {
		return old.b, nil
	}
	b, err := encodeEvent(e)
	if err != nil {
		return nil, err
	}
	if old == nil || old.seq < e.Seq {
		slot.CompareAndSwap(old, &cachedFrame{seq: e.Seq, b: b})
	}
	return b, nil
}

func encodeEvent(e *eventbus.Event) ([]byte, error) {
	return json.Marshal(Message{Type: TypeEvent, Event: e})
}
