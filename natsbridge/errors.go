package natsbridge

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"
)

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
	// local bus: a body that is not an Event, an event without a valid ID, a
	// subject that does not match the event's topic, metadata headers that
	// contradict the body, or an error from the bus. The error is an
	// *ImportError (inside an *eventbus.EventError when the event's ID is
	// known) or an *ImportSummary.
	ErrImport = errors.New("natsbridge: import failed")

	// ErrNoEventID reports a NATS message whose event has no valid ID: the
	// "id" field is missing, zero, or not a ULID. Such a message is never
	// imported, so it can never be exported again under an ID a bus made up.
	// It comes wrapped in an *ImportError of kind ImportNoID.
	ErrNoEventID = errors.New("natsbridge: no valid event ID")

	// ErrJetStream reports a failure to set up the stream or the durable
	// consumer, or an error the JetStream consumer reported while running.
	ErrJetStream = errors.New("natsbridge: jetstream")
)

// ImportErrorKind names a kind of import failure: the values of
// ImportError.Kind and the keys of Stats.ImportErrorsByKind.
type ImportErrorKind string

// The kinds of import failure.
const (
	ImportEmpty        ImportErrorKind = "empty"         // a message with an empty body
	ImportNotJSON      ImportErrorKind = "not_json"      // a body that is not a JSON object of the Event form
	ImportNoID         ImportErrorKind = "no_id"         // an event without a valid ID (ErrNoEventID)
	ImportInvalidEvent ImportErrorKind = "invalid_event" // an event the bus would refuse: type, topic, payload or metadata
	ImportWrongSubject ImportErrorKind = "wrong_subject" // an event on a subject that is not its topic's
	ImportMetadata     ImportErrorKind = "metadata"      // metadata headers that contradict the body or break the rules
	ImportRefused      ImportErrorKind = "refused"       // the bus refused the event (closed, persist error, Authorizer)
)

// importKind is the index of a kind in importKinds: its counter, and its
// bit in the mask of an episode.
type importKind int

const (
	kindEmpty importKind = iota
	kindNotJSON
	kindNoID
	kindInvalidEvent
	kindWrongSubject
	kindMetadata
	kindRefused
	numKinds
)

// importKinds names each importKind.
var importKinds = [numKinds]ImportErrorKind{ImportEmpty, ImportNotJSON, ImportNoID, ImportInvalidEvent,
	ImportWrongSubject, ImportMetadata, ImportRefused}

// ImportError describes one NATS message that was not imported. It wraps
// ErrImport and its cause (ErrNoEventID for ImportNoID, the bus's error for
// ImportRefused); match it with errors.Is or errors.As.
type ImportError struct {
	Kind    ImportErrorKind // what was wrong with the message
	Subject string          // the message's subject
	Err     error           // the cause
}

// Error reads like `natsbridge: import failed: no_id: message on
// "eventbus.a.b": natsbridge: no valid event ID: missing or zero`.
func (e *ImportError) Error() string {
	return fmt.Sprintf("%v: %s: message on %q: %v", ErrImport, e.Kind, e.Subject, e.Err)
}

// Unwrap returns ErrImport and the cause.
func (e *ImportError) Unwrap() []error { return []error{ErrImport, e.Err} }

// ImportSummary counts the NATS messages that failed to import in one
// interval (see WithSummaryInterval); the bridge reports one, like any
// other error, at the end of each interval in which some did, and one at
// Shutdown for the rest. It wraps ErrImport.
type ImportSummary struct {
	Interval time.Duration              // the time the summary covers
	Failed   map[ImportErrorKind]uint64 // messages not imported, by kind (only kinds that occurred)
	Imported uint64                     // events imported in the same time
}

// Error reads like `natsbridge: import failed: 5 messages in 1m0s
// (no_id 3, not_json 2); 120 imported`.
func (s *ImportSummary) Error() string {
	var total uint64
	parts := make([]string, 0, len(s.Failed))
	for k, n := range s.Failed {
		total += n
		parts = append(parts, fmt.Sprintf("%s %d", k, n))
	}
	sort.Strings(parts)
	return fmt.Sprintf("%v: %d messages in %v (%s); %d imported",
		ErrImport, total, s.Interval.Round(time.Millisecond), strings.Join(parts, ", "), s.Imported)
}

// Unwrap returns ErrImport.
func (s *ImportSummary) Unwrap() error { return ErrImport }
