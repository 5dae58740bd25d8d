package wsbridge

import "errors"

// Sentinel errors. Errors returned by this package wrap one of these with
// detail; match them with errors.Is. The error replies a connection sends
// carry the same text in "error" and a short machine-readable "code" (see the
// package documentation).
var (
	// ErrInvalidOption reports an option with a value outside its range,
	// as returned by New (Handler panics with it).
	ErrInvalidOption = errors.New("wsbridge: invalid option")

	// ErrMalformed reports a client message that is not a JSON object of the
	// documented shape, or is not a text message. Code "malformed".
	ErrMalformed = errors.New("wsbridge: malformed message")

	// ErrUnknownOp reports a client message whose "op" is not one of
	// subscribe, unsubscribe or publish. Code "unknown_op".
	ErrUnknownOp = errors.New("wsbridge: unknown op")

	// ErrTooManyPatterns reports a subscribe that would take a connection
	// beyond WithMaxPatterns. Code "too_many_patterns".
	ErrTooManyPatterns = errors.New("wsbridge: too many patterns")

	// ErrNotSubscribed reports an unsubscribe of a pattern the connection
	// does not hold. Code "not_subscribed".
	ErrNotSubscribed = errors.New("wsbridge: not subscribed")

	// ErrPublishDisabled reports a publish on a handler made without
	// WithClientPublish. Code "publish_disabled".
	ErrPublishDisabled = errors.New("wsbridge: publishing is disabled")

	// ErrTypeNotAllowed reports a publish of an event type that
	// WithClientPublish does not allow. Code "type_not_allowed".
	ErrTypeNotAllowed = errors.New("wsbridge: event type not allowed")
)
