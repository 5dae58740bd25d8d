package eventbus

import (
	"encoding/json"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// EventType names what happened. The vocabulary is open: any name of
// 1–64 bytes of [a-z0-9_.:-] starting with a letter is a valid type
// ("order_created", "billing.invoice_paid"), so publishers need no
// registration. The constants below are the seed's vocabulary, and Custom
// makes the "custom:" types of earlier versions. The zero value is not
// valid.
type EventType string

// The seed's event types.
const (
	WorkerSpawned   EventType = "worker_spawned"
	WorkerProgress  EventType = "worker_progress"
	WorkerComplete  EventType = "worker_complete"
	WorkerFailed    EventType = "worker_failed"
	WorkerCancelled EventType = "worker_cancelled"
	FindingNew      EventType = "finding_new"
	FindingUpdated  EventType = "finding_updated"
	ChatMessage     EventType = "chat_message"
	ChatTyping      EventType = "chat_typing"
	FileChanged     EventType = "file_changed"
	FileCreated     EventType = "file_created"
	FileDeleted     EventType = "file_deleted"
	UserInput       EventType = "user_input"
	UserCommand     EventType = "user_command"
	SystemHeartbeat EventType = "system_heartbeat"
	SystemError     EventType = "system_error"
)

const customPrefix = "custom:"

const (
	// maxTypeName bounds the length of a type name in bytes.
	maxTypeName = 64
	// maxCustomName bounds the length of a custom type's name in bytes.
	maxCustomName = 128
)

// Custom returns the event type "custom:"+name, kept for compatibility:
// types of your own need no prefix. The result is Valid if it is a valid
// type name, or if name is non-empty, at most 128 bytes, and has no
// whitespace or control characters; "custom:" with an empty or blank name
// is not valid.
func Custom(name string) EventType { return EventType(customPrefix + name) }

// IsCustom reports whether t was made by Custom (it has the "custom:" prefix).
func (t EventType) IsCustom() bool { return strings.HasPrefix(string(t), customPrefix) }

// CustomName returns the name of a custom type, or "" if t is not custom.
func (t EventType) CustomName() string {
	if !t.IsCustom() {
		return ""
	}
	return string(t)[len(customPrefix):]
}

// String returns the type's string value.
func (t EventType) String() string { return string(t) }

// Valid reports whether t is a well-formed type name (1–64 bytes of
// [a-z0-9_.:-] starting with a letter, which includes every constant) or
// a well-formed custom type (see Custom).
func (t EventType) Valid() bool { return t.check() == nil }

// typeNameByte marks the bytes a type name may hold.
var typeNameByte = func() (t [256]bool) {
	for _, c := range "abcdefghijklmnopqrstuvwxyz0123456789_.:-" {
		t[c] = true
	}
	return t
}()

// check returns nil if t is valid, else an error wrapping
// ErrInvalidEventType with the reason.
func (t EventType) check() error {
	s := string(t)
	if s == "" {
		return fmt.Errorf("%w \"\": empty", ErrInvalidEventType)
	}
	if t.IsCustom() {
		return t.checkCustom()
	}
	if len(s) > maxTypeName {
		return fmt.Errorf("%w %q: longer than %d bytes", ErrInvalidEventType, clip(s), maxTypeName)
	}
	for i := 0; i < len(s); i++ {
		if !typeNameByte[s[i]] {
			return fmt.Errorf("%w %q: byte %q not in [a-z0-9_.:-]", ErrInvalidEventType, clip(s), s[i])
		}
	}
	if s[0] < 'a' || s[0] > 'z' {
		return fmt.Errorf("%w %q: must start with a letter a-z", ErrInvalidEventType, clip(s))
	}
	return nil
}

// checkCustom checks a type with the "custom:" prefix: valid under the
// rule of Custom's earlier versions (any printable name without spaces).
func (t EventType) checkCustom() error {
	name := t.CustomName()
	if len(name) > 0 && len(name) <= maxCustomName && printableASCII(name) {
		return nil // the common case, without decoding runes
	}
	if strings.TrimSpace(name) == "" {
		return fmt.Errorf("%w %q: empty custom name", ErrInvalidEventType, clip(string(t)))
	}
	if len(name) > maxCustomName {
		return fmt.Errorf("%w %q: custom name longer than %d bytes", ErrInvalidEventType, clip(string(t)), maxCustomName)
	}
	for i, r := range name {
		if r == utf8.RuneError && !strings.HasPrefix(name[i:], "\uFFFD") {
			return fmt.Errorf("%w %q: custom name is not valid UTF-8", ErrInvalidEventType, clip(string(t)))
		}
		if unicode.IsSpace(r) || !unicode.IsPrint(r) {
			return fmt.Errorf("%w %q: custom name holds whitespace or a control character", ErrInvalidEventType, clip(string(t)))
		}
	}
	return nil
}

// printableASCII reports whether s is all printable ASCII other than the
// space: the bytes checkCustom accepts without looking further.
func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f {
			return false
		}
	}
	return true
}

// MarshalJSON encodes t as a plain JSON string. An invalid type is an error.
func (t EventType) MarshalJSON() ([]byte, error) {
	if err := t.check(); err != nil {
		return nil, err
	}
	return json.Marshal(string(t))
}

// UnmarshalJSON decodes a JSON string into t. A value that is not a JSON
// string, or a string that is not a valid type (see Valid), is an error
// wrapping ErrInvalidEventType, and t is left unchanged.
func (t *EventType) UnmarshalJSON(data []byte) error {
	var s string
	if err := json.Unmarshal(data, &s); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidEventType, err)
	}
	v := EventType(s)
	if err := v.check(); err != nil {
		return err
	}
	*t = v
	return nil
}
