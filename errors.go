package eventbus

import (
	"errors"
	"fmt"
	"strings"

	"github.com/oklog/ulid/v2"
)

// Sentinel errors. Errors returned by this package wrap one of these with
// detail; match them with errors.Is, never by message.
var (
	// ErrClosed is returned by operations on a Bus that has been shut down,
	// and is the reason a subscription ended when it was closed by its owner
	// or by Shutdown. It is also the cancellation cause of handler contexts.
	ErrClosed = errors.New("eventbus: closed")

	// ErrInvalidTopic reports a topic that breaks the topic rules.
	ErrInvalidTopic = errors.New("eventbus: invalid topic")

	// ErrInvalidPattern reports a subscription pattern that breaks the pattern rules.
	ErrInvalidPattern = errors.New("eventbus: invalid pattern")

	// ErrInvalidEventType reports a malformed event type: not a name of
	// 1–64 bytes of [a-z0-9_.:-] starting with a letter, and not a
	// well-formed Custom type. The vocabulary is open: an unknown but
	// well-formed name is valid.
	ErrInvalidEventType = errors.New("eventbus: invalid event type")

	// ErrInvalidPayload reports a payload that cannot be marshalled to JSON,
	// or bytes that are not valid JSON.
	ErrInvalidPayload = errors.New("eventbus: invalid payload")

	// ErrInvalidMetadata reports event metadata that breaks the metadata
	// rules (see Event.Metadata).
	ErrInvalidMetadata = errors.New("eventbus: invalid metadata")

	// ErrInvalidOption reports an option with a value outside its range.
	ErrInvalidOption = errors.New("eventbus: invalid option")

	// ErrInvalidQuery reports a Query with a field outside its range.
	ErrInvalidQuery = errors.New("eventbus: invalid query")

	// ErrPersist reports that the store failed to append an event; the event
	// was not delivered. The store's own error is wrapped beside it.
	ErrPersist = errors.New("eventbus: persist failed")

	// ErrNoStore is returned by Query, replay options and the CatchUp policy
	// when the bus has no store.
	ErrNoStore = errors.New("eventbus: no store configured")

	// ErrSlowConsumer is the reason a subscription with the Disconnect policy
	// ended, and the error reported when a subscription starts dropping events.
	ErrSlowConsumer = errors.New("eventbus: slow consumer")

	// ErrForbidden is returned when the bus Authorizer denies an access.
	ErrForbidden = errors.New("eventbus: forbidden")

	// ErrReportsDropped is reported, with a count, when errors for the
	// error handler were dropped because it did not keep up (at most 1,024
	// wait for it).
	ErrReportsDropped = errors.New("eventbus: error reports dropped")

	// ErrHandler wraps errors returned by a handler and panics recovered
	// from one, as reported to the error handler.
	ErrHandler = errors.New("eventbus: handler failed")

	// ErrStalled is wrapped by a *StallError: a handler has run one
	// event for longer than the stall timeout (WithStallTimeout).
	ErrStalled = errors.New("eventbus: handler stalled")

	// ErrDeadlock is returned by a Publish that would wait for itself: a
	// handler of a Block subscription (with no block timeout) publishing,
	// with its handler ctx, an event that subscription matches while its
	// mailbox is full. Only the handler could make room, and it is
	// waiting for the Publish.
	ErrDeadlock = errors.New("eventbus: publish would deadlock")
)

// EventError is an error about one event that has no caller to return to:
// a handler error or panic, a payload HandleFunc could not decode, or an
// asynchronously published event the store failed to persist. It is what the
// error handler receives for those; use errors.As to reach the event's ID and
// topic, and errors.Is for the category (ErrHandler, ErrPersist).
type EventError struct {
	ID    ulid.ULID // the event's ID
	Topic string    // the event's topic
	Err   error     // what went wrong
}

// Error implements error.
func (e *EventError) Error() string {
	return fmt.Sprintf("event %s on %q: %v", e.ID, e.Topic, e.Err)
}

// Unwrap returns the underlying error.
func (e *EventError) Unwrap() error { return e.Err }

// PanicError is a panic recovered from a handler, with the value it panicked
// with and the stack at the panic.
type PanicError struct {
	Value any
	Stack []byte
}

// Error implements error.
func (e *PanicError) Error() string {
	return fmt.Sprintf("panic: %v", e.Value)
}

// partError is an error about a part of a larger value (the pattern of a
// Query, the value of an option): it wraps the sentinels of both, so
// errors.Is finds either, under one message with one "eventbus:" prefix.
type partError struct {
	msg  string
	errs []error
}

// Error implements error.
func (e *partError) Error() string { return e.msg }

// Unwrap returns the wrapped errors.
func (e *partError) Unwrap() []error { return e.errs }

// nest returns an error wrapping outer and inner whose message is outer's,
// then detail if any, then inner's without its "eventbus: " prefix:
// nest(ErrInvalidOption, "WithOverflow(CatchUp)", ErrNoStore) reads
// "eventbus: invalid option: WithOverflow(CatchUp): no store configured".
func nest(outer error, detail string, inner error) error {
	msg := outer.Error() + ": "
	if detail != "" {
		msg += detail + ": "
	}
	return &partError{msg: msg + strings.TrimPrefix(inner.Error(), "eventbus: "), errs: []error{outer, inner}}
}
