package eventbus

import (
	"encoding/json"
	"fmt"
	"strings"
	"unicode"
)

// EventType names what happened. It is a string: one of the constants below,
// or a custom type made with Custom. The zero value is not valid.
type EventType string

// The known event types.
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

// maxCustomName bounds the length of a custom type's name in bytes.
const maxCustomName = 128

// Custom returns the custom event type "custom:"+name. The result is Valid
// only if name is non-empty, at most 128 bytes, and has no whitespace or
// control characters.
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

// Valid reports whether t is one of the known constants or a well-formed
// custom type.
func (t EventType) Valid() bool { return t.check() == nil }

func (t EventType) check() error {
	switch t {
	case WorkerSpawned, WorkerProgress, WorkerComplete, WorkerFailed, WorkerCancelled,
		FindingNew, FindingUpdated, ChatMessage, ChatTyping,
		FileChanged, FileCreated, FileDeleted, UserInput, UserCommand,
		SystemHeartbeat, SystemError:
		return nil
	case "":
		return fmt.Errorf("%w: empty", ErrInvalidEventType)
	}
	if !t.IsCustom() {
		return fmt.Errorf("%w %q: unknown type (use Custom for your own)", ErrInvalidEventType, string(t))
	}
	name := t.CustomName()
	switch {
	case name == "":
		return fmt.Errorf("%w %q: empty custom name", ErrInvalidEventType, string(t))
	case len(name) > maxCustomName:
		return fmt.Errorf("%w: custom name longer than %d bytes", ErrInvalidEventType, maxCustomName)
	}
	for _, r := range name {
		if unicode.IsSpace(r) || !unicode.IsPrint(r) {
			return fmt.Errorf("%w %q: custom name holds whitespace or a control character", ErrInvalidEventType, string(t))
		}
	}
	return nil
}

// MarshalJSON encodes t as a plain JSON string. An invalid type is an error.
func (t EventType) MarshalJSON() ([]byte, error) {
	if err := t.check(); err != nil {
		return nil, err
	}
	return json.Marshal(string(t))
}

// UnmarshalJSON decodes a JSON string into t; an unknown non-custom value, or
// a custom one with an empty or whitespace name, is an error wrapping
// ErrInvalidEventType.
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
