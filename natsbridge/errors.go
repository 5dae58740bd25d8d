package natsbridge

import "errors"

// Sentinel errors. Errors returned or reported by this package wrap one of
// these with detail; match them with errors.Is, never by message.
var (
	// ErrInvalidOption reports an option, or an argument of New, with a value
	// outside its range.
	ErrInvalidOption = errors.New("natsbridge: invalid option")

	// ErrNoSubject reports a topic that has no NATS subject: one with a
	// segment that is exactly ">", which NATS would read as a wildcard.
	// Such events are not exported; each one is counted in
	// Stats.ExportErrors.
	ErrNoSubject = errors.New("natsbridge: topic has no NATS subject")

	// ErrExport reports an event that could not be published to NATS.
	ErrExport = errors.New("natsbridge: export failed")

	// ErrImport reports a NATS message that could not be published into the
	// local bus: a body that is not an Event, a subject that does not match
	// the event's topic, or an error from the bus.
	ErrImport = errors.New("natsbridge: import failed")

	// ErrJetStream reports a failure to set up the stream or the durable
	// consumer, or an error the JetStream consumer reported while running.
	ErrJetStream = errors.New("natsbridge: jetstream")
)
