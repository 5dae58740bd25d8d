package eventbus_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/oklog/ulid/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/choiros/eventbus"
)

func TestNewEvent(t *testing.T) {
	before := time.Now()
	e, err := eventbus.NewEvent(eventbus.WorkerProgress, "worker.task.progress", map[string]int{"pct": 50}, "worker-7")
	require.NoError(t, err)
	assert.False(t, e.ID.IsZero())
	assert.Equal(t, eventbus.WorkerProgress, e.Type)
	assert.Equal(t, "worker.task.progress", e.Topic)
	assert.JSONEq(t, `{"pct":50}`, string(e.Payload))
	assert.Equal(t, "worker-7", e.Source)
	assert.Equal(t, time.UTC, e.Timestamp.Location())
	assert.False(t, e.Timestamp.Before(before.Add(-time.Second)))
	assert.Zero(t, e.Seq)

	var got struct{ Pct int }
	require.NoError(t, e.Decode(&got))
	assert.Equal(t, 50, got.Pct)
}

func TestNewEventPayloads(t *testing.T) {
	tests := []struct {
		name    string
		payload any
		want    string
		err     error
	}{
		{"nil", nil, "null", nil},
		{"struct", struct{ A int }{1}, `{"A":1}`, nil},
		{"raw message kept exactly", json.RawMessage(`{"b": [1, 2, 3], "a": "x"}`), `{"b": [1, 2, 3], "a": "x"}`, nil},
		{"bytes holding JSON", []byte(` "hi"` + "\n"), ` "hi"` + "\n", nil},
		{"html is not escaped", json.RawMessage(`"<b>&"`), `"<b>&"`, nil},
		{"escapes are not decoded", json.RawMessage(`"\u00e9\/"`), `"\u00e9\/"`, nil},
		{"numbers are not reformatted", json.RawMessage(`[1.0, 1e2, -0]`), `[1.0, 1e2, -0]`, nil},
		{"nil raw message", json.RawMessage(nil), "null", nil},
		{"a value is marshalled", "<b>", `"\u003cb\u003e"`, nil},
		{"empty bytes", []byte{}, "", eventbus.ErrInvalidPayload},
		{"invalid raw message", json.RawMessage(`{"a":`), "", eventbus.ErrInvalidPayload},
		{"invalid bytes", []byte("not json"), "", eventbus.ErrInvalidPayload},
		{"unmarshalable", make(chan int), "", eventbus.ErrInvalidPayload},
		{"unsupported float", float64Inf(), "", eventbus.ErrInvalidPayload},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := eventbus.NewEvent(eventbus.ChatMessage, "chat.room1", tt.payload, "u")
			if tt.err != nil {
				require.ErrorIs(t, err, tt.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, string(e.Payload))
		})
	}
}

func float64Inf() float64 { var z float64; return 1 / z }

// TestNewEventCopiesPayloadBytes: the event does not share the caller's
// buffer, which the caller may reuse.
func TestNewEventCopiesPayloadBytes(t *testing.T) {
	buf := []byte(`{"n": 1}`)
	e, err := eventbus.NewEvent(eventbus.ChatMessage, "chat.a", buf, "")
	require.NoError(t, err)
	copy(buf, `{"m": 2}`)
	assert.Equal(t, `{"n": 1}`, string(e.Payload))
}

// TestPayloadBytesSurviveTheBus: a payload published as raw JSON comes back
// byte for byte, from a subscriber and from the memory store (issue 12: it
// came back compacted, breaking signatures over it).
func TestPayloadBytesSurviveTheBus(t *testing.T) {
	const raw = `{"b": [1, 2, 3], "a": "x", "html": "<&>"}`
	for _, how := range []string{"NewEvent", "literal"} {
		t.Run(how, func(t *testing.T) {
			bus := newBus(t)
			sub, err := bus.Subscribe(t.Context(), "signed.*")
			require.NoError(t, err)
			e := eventbus.Event{Type: eventbus.ChatMessage, Topic: "signed.doc", Payload: json.RawMessage(raw)}
			if how == "NewEvent" {
				e, err = eventbus.NewEvent(eventbus.ChatMessage, "signed.doc", json.RawMessage(raw), "signer")
				require.NoError(t, err)
			}
			require.NoError(t, bus.Publish(t.Context(), e))
			assert.Equal(t, raw, string(recvWithin(t, sub, time.Second).Payload))
			stored, err := bus.Query(t.Context(), eventbus.Query{Pattern: "signed.*"})
			require.NoError(t, err)
			require.Len(t, stored, 1)
			assert.Equal(t, raw, string(stored[0].Payload))
		})
	}
}

// TestEventUnmarshalKeepsPayload: decoding keeps the payload's bytes as
// they came; encoding compacts them as encoding/json does, so a round trip
// gives the payload equal as JSON.
func TestEventUnmarshalKeepsPayload(t *testing.T) {
	const payload = `{"b": [1, 2], "a": "<x>"}`
	var e eventbus.Event
	require.NoError(t, json.Unmarshal([]byte(`{"event_type":"chat_message","topic":"a","payload": `+payload+` ,"timestamp":"2026-11-27T10:00:00Z"}`), &e))
	assert.Equal(t, payload, string(e.Payload))
	data, err := json.Marshal(e)
	require.NoError(t, err)
	var back eventbus.Event
	require.NoError(t, json.Unmarshal(data, &back))
	assert.JSONEq(t, payload, string(back.Payload))
	assert.Equal(t, canonical(t, e.Payload), string(back.Payload))
}

// canonical is what encoding/json writes for a RawMessage it marshals:
// compact, with HTML characters and U+2028/U+2029 escaped.
func canonical(t require.TestingT, raw []byte) string {
	var compact, escaped bytes.Buffer
	require.NoError(t, json.Compact(&compact, raw))
	json.HTMLEscape(&escaped, compact.Bytes())
	return escaped.String()
}

func TestNewEventInvalid(t *testing.T) {
	_, err := eventbus.NewEvent(eventbus.ChatMessage, "a..b", nil, "")
	require.ErrorIs(t, err, eventbus.ErrInvalidTopic)
	_, err = eventbus.NewEvent("No pe", "a.b", nil, "")
	require.ErrorIs(t, err, eventbus.ErrInvalidEventType)
}

func TestNewEventIDsSortInCreationOrder(t *testing.T) {
	prev, err := eventbus.NewEvent(eventbus.SystemHeartbeat, "system.heartbeat", nil, "")
	require.NoError(t, err)
	for range 1000 {
		e, err := eventbus.NewEvent(eventbus.SystemHeartbeat, "system.heartbeat", nil, "")
		require.NoError(t, err)
		require.Negative(t, prev.ID.Compare(e.ID))
		prev = e
	}
}

// TestBusIDsFollowSeq: IDs the bus fills in come from the same monotonic
// source as NewEvent's, in Seq order, and a set ID is kept.
func TestBusIDsFollowSeq(t *testing.T) {
	ctx := t.Context()
	b := newBus(t)
	sub, err := b.Subscribe(ctx, "ids.*", eventbus.WithBuffer(3000))
	require.NoError(t, err)
	first, err := eventbus.NewEvent(eventbus.SystemHeartbeat, "ids.made", nil, "")
	require.NoError(t, err)
	require.NoError(t, b.PublishAsync(ctx, first))
	for range 2000 {
		require.NoError(t, b.PublishAsync(ctx, ev("ids.zero")))
	}
	require.NoError(t, b.Flush(ctx))
	got := pending(sub)
	require.Len(t, got, 2001)
	assert.Equal(t, first.ID, got[0].ID, "a set ID is kept")
	for i := 1; i < len(got); i++ {
		require.Negative(t, got[i-1].ID.Compare(got[i].ID), "event %d", i)
		ms := ulid.Timestamp(got[i].Timestamp)
		require.GreaterOrEqual(t, got[i].ID.Time(), ms, "the ID's time is the stamp's")
		require.Less(t, got[i].ID.Time(), ms+1000)
		require.False(t, got[i].Timestamp.IsZero())
		require.Equal(t, time.UTC, got[i].Timestamp.Location())
	}
}

func TestEventValidate(t *testing.T) {
	tests := []struct {
		name string
		e    eventbus.Event
		err  error
	}{
		{"literal", eventbus.Event{Type: eventbus.FileChanged, Topic: "file.changed"}, nil},
		{"custom type", eventbus.Event{Type: eventbus.Custom("deploy"), Topic: "ops.deploy", Payload: json.RawMessage(`1`)}, nil},
		{"bad topic", eventbus.Event{Type: eventbus.FileChanged, Topic: "file..changed"}, eventbus.ErrInvalidTopic},
		{"empty type", eventbus.Event{Topic: "file.changed"}, eventbus.ErrInvalidEventType},
		{"bad payload", eventbus.Event{Type: eventbus.FileChanged, Topic: "f", Payload: json.RawMessage(`{`)}, eventbus.ErrInvalidPayload},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.e.Validate()
			if tt.err == nil {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, tt.err)
		})
	}
}

func TestEventJSONRoundTrip(t *testing.T) {
	e, err := eventbus.NewEvent(eventbus.FindingNew, "finding.security", map[string]string{"file": "main.go", "html": "<x>"}, "scanner")
	require.NoError(t, err)
	e.Seq = 42
	e = e.WithCorrelationID("req-1")
	data, err := json.Marshal(e)
	require.NoError(t, err)

	var fields map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(data, &fields))
	for _, k := range []string{"id", "seq", "event_type", "topic", "payload", "timestamp", "source", "correlation_id"} {
		assert.Contains(t, fields, k)
	}
	assert.Equal(t, `"finding_new"`, string(fields["event_type"]))

	var back eventbus.Event
	require.NoError(t, json.Unmarshal(data, &back))
	assert.Equal(t, e, back)
}

func TestEventJSONOmitsEmpty(t *testing.T) {
	data, err := json.Marshal(eventbus.Event{Type: eventbus.ChatTyping, Topic: "chat.typing", Payload: json.RawMessage("null")})
	require.NoError(t, err)
	assert.NotContains(t, string(data), `"seq"`)
	assert.NotContains(t, string(data), `"correlation_id"`)
}

// typeCases label event types valid or not (SPEC §2: an open vocabulary of
// names of 1–64 bytes of [a-z0-9_.:-] starting with a letter, plus the
// custom types Custom has always made).
var typeCases = []struct {
	name string
	t    eventbus.EventType
	ok   bool
}{
	{"seed constant", eventbus.WorkerSpawned, true},
	{"open snake case", "order_created", true},
	{"open dotted", "billing.invoice_paid", true},
	{"open with colon and dash", "k8s:pod-started", true},
	{"one letter", "a", true},
	{"longest", eventbus.EventType("a" + strings.Repeat("b", 63)), true},
	{"custom", eventbus.Custom("deploy"), true},
	{"custom keeps its old charset", eventbus.Custom("Deploy/v2"), true},
	{"empty", "", false},
	{"too long", eventbus.EventType("a" + strings.Repeat("b", 64)), false},
	{"leading digit", "1order", false},
	{"leading underscore", "_order", false},
	{"upper case", "OrderCreated", false},
	{"space", "order created", false},
	{"slash", "order/created", false},
	{"non-ASCII", "commande_créée", false},
	{"empty custom", eventbus.Custom(""), false},
	{"blank custom", eventbus.Custom("  "), false},
	{"custom with a space", eventbus.Custom("a b"), false},
	{"custom with a control character", eventbus.Custom("a\x00"), false},
	{"custom too long", eventbus.Custom(strings.Repeat("x", 129)), false},
}

func TestEventTypeValid(t *testing.T) {
	for _, tt := range typeCases {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.ok, tt.t.Valid())
			_, err := eventbus.NewEvent(tt.t, "a.b", nil, "")
			data, merr := json.Marshal(tt.t)
			var back eventbus.EventType
			quoted, qerr := json.Marshal(string(tt.t))
			require.NoError(t, qerr)
			uerr := json.Unmarshal(quoted, &back)
			if tt.ok {
				require.NoError(t, err)
				require.NoError(t, merr)
				assert.Equal(t, string(quoted), string(data), "the plain string")
				require.NoError(t, uerr)
				assert.Equal(t, tt.t, back)
				return
			}
			require.ErrorIs(t, err, eventbus.ErrInvalidEventType)
			require.ErrorIs(t, merr, eventbus.ErrInvalidEventType)
			require.ErrorIs(t, uerr, eventbus.ErrInvalidEventType)
		})
	}
}

func TestEventTypeMessage(t *testing.T) {
	tests := []struct {
		t    eventbus.EventType
		want string
	}{
		{"", `eventbus: invalid event type "": empty`},
		{"OrderCreated", `eventbus: invalid event type "OrderCreated": byte 'O' not in [a-z0-9_.:-]`},
		{"1order", `eventbus: invalid event type "1order": must start with a letter a-z`},
		{eventbus.Custom(" "), `eventbus: invalid event type "custom: ": empty custom name`},
	}
	for _, tt := range tests {
		t.Run(string(tt.t), func(t *testing.T) {
			_, err := eventbus.NewEvent(tt.t, "a", nil, "")
			require.EqualError(t, err, tt.want)
		})
	}
}

// TestEmitOpenType: the first program, an event type of the user's
// own without Custom, now publishes.
func TestEmitOpenType(t *testing.T) {
	bus := newBus(t)
	sub, err := bus.Subscribe(t.Context(), "orders.*")
	require.NoError(t, err)
	_, err = bus.Publisher("shop").Emit(t.Context(), "order_event", "orders.created", nil)
	require.NoError(t, err)
	assert.Equal(t, eventbus.EventType("order_event"), recvWithin(t, sub, time.Second).Type)

	var e eventbus.Event
	require.NoError(t, json.Unmarshal([]byte(`{"event_type":"order_created","topic":"orders.created","payload":null}`), &e))
	assert.Equal(t, eventbus.EventType("order_created"), e.Type)
}

func TestEventTypeJSON(t *testing.T) {
	tests := []struct {
		in   string
		want eventbus.EventType
		ok   bool
	}{
		{`"worker_spawned"`, eventbus.WorkerSpawned, true},
		{`"system_error"`, eventbus.SystemError, true},
		{`"custom:deploy"`, eventbus.Custom("deploy"), true},
		{`"worker_exploded"`, "worker_exploded", true},
		{`"custom:"`, "", false},
		{`"custom:  "`, "", false},
		{`"custom:a b"`, "", false},
		{`"Worker"`, "", false},
		{`""`, "", false},
		{`42`, "", false},
		{`null`, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			var got eventbus.EventType
			err := json.Unmarshal([]byte(tt.in), &got)
			if !tt.ok {
				require.ErrorIs(t, err, eventbus.ErrInvalidEventType)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestEventTypeMethods(t *testing.T) {
	assert.Equal(t, eventbus.EventType("worker_spawned"), eventbus.WorkerSpawned)
	assert.Equal(t, "chat_message", eventbus.ChatMessage.String())
	c := eventbus.Custom("deploy")
	assert.Equal(t, eventbus.EventType("custom:deploy"), c)
	assert.True(t, c.IsCustom())
	assert.Equal(t, "deploy", c.CustomName())
	assert.True(t, c.Valid())
	assert.False(t, eventbus.WorkerSpawned.IsCustom())
	assert.Equal(t, "", eventbus.WorkerSpawned.CustomName())
	assert.False(t, eventbus.EventType("order_created").IsCustom())
	assert.False(t, eventbus.Custom("").Valid())
	assert.True(t, eventbus.EventType("nope").Valid(), "the vocabulary is open")
	assert.False(t, eventbus.EventType("Nope").Valid())
	for _, et := range []eventbus.EventType{
		eventbus.WorkerSpawned, eventbus.WorkerProgress, eventbus.WorkerComplete, eventbus.WorkerFailed,
		eventbus.WorkerCancelled, eventbus.FindingNew, eventbus.FindingUpdated, eventbus.ChatMessage,
		eventbus.ChatTyping, eventbus.FileChanged, eventbus.FileCreated, eventbus.FileDeleted,
		eventbus.UserInput, eventbus.UserCommand, eventbus.SystemHeartbeat, eventbus.SystemError,
	} {
		assert.True(t, et.Valid(), et)
	}
}

// refTypeValid is the reference reading of SPEC §2's type rule.
func refTypeValid(t string) bool {
	if name, ok := strings.CutPrefix(t, "custom:"); ok {
		if strings.TrimSpace(name) == "" {
			return false
		}
		if len(name) <= 128 && utf8.ValidString(name) && !strings.ContainsFunc(name, func(r rune) bool {
			return unicode.IsSpace(r) || !unicode.IsPrint(r)
		}) {
			return true
		}
	}
	if len(t) < 1 || len(t) > 64 || t[0] < 'a' || t[0] > 'z' {
		return false
	}
	return strings.Trim(t, "abcdefghijklmnopqrstuvwxyz0123456789_.:-") == ""
}

func FuzzEventType(f *testing.F) {
	for _, tt := range typeCases {
		f.Add(string(tt.t))
	}
	f.Fuzz(func(t *testing.T, s string) {
		et := eventbus.EventType(s)
		require.Equal(t, refTypeValid(s), et.Valid(), "%q", s)
		data, err := json.Marshal(et)
		if !et.Valid() {
			require.ErrorIs(t, err, eventbus.ErrInvalidEventType)
			if utf8.ValidString(s) { // json.Marshal would replace bad bytes
				var back eventbus.EventType
				quoted, _ := json.Marshal(s)
				require.ErrorIs(t, json.Unmarshal(quoted, &back), eventbus.ErrInvalidEventType)
			}
			return
		}
		require.NoError(t, err)
		var back eventbus.EventType
		require.NoError(t, json.Unmarshal(data, &back))
		require.Equal(t, et, back)
	})
}

func FuzzEventJSON(f *testing.F) {
	seeds := []string{
		`{"id":"01ARZ3NDEKTSV4RRFFQ69G5FAV","seq":1,"event_type":"chat_message","topic":"chat.room1","payload":{"text":"hi"},"timestamp":"2026-11-27T10:00:00.123456789Z","source":"u1"}`,
		`{"id":"01ARZ3NDEKTSV4RRFFQ69G5FAV","event_type":"custom:x","topic":"a","payload":null,"timestamp":"2026-11-27T10:00:00+02:00","source":"","correlation_id":"c"}`,
		`{"event_type":"nope"}`,
		`{"payload": [1, 2, "<&>"]}`,
		`{"id":"01ARZ3NDEKTSV4RRFFQ69G5FAV","event_type":"a","topic":"a","payload": {"b": [1, 2, 3], "a": "x\u2028"} ,"timestamp":"2026-11-27T10:00:00Z","source":""}`,
		`not json`,
		`{}`,
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var e eventbus.Event
		if json.Unmarshal(data, &e) != nil {
			return
		}
		out, err := json.Marshal(e)
		if err != nil {
			// Only an invalid type (the zero value) may fail to encode.
			require.ErrorIs(t, err, eventbus.ErrInvalidEventType)
			return
		}
		var back eventbus.Event
		require.NoError(t, json.Unmarshal(out, &back))
		require.Equal(t, e.ID, back.ID)
		require.Equal(t, e.Seq, back.Seq)
		require.Equal(t, e.Type, back.Type)
		require.Equal(t, e.Topic, back.Topic)
		// encoding/json compacts a RawMessage it marshals: the payload
		// is equal as JSON, and stable from then on.
		if e.Payload == nil {
			require.Equal(t, "null", string(back.Payload), "a nil payload is null")
		} else {
			require.Equal(t, canonical(t, e.Payload), string(back.Payload))
		}
		again, err := json.Marshal(back)
		require.NoError(t, err)
		require.Equal(t, string(out), string(again))
		require.True(t, e.Timestamp.Equal(back.Timestamp))
		require.Equal(t, e.Source, back.Source)
		require.Equal(t, e.CorrelationID, back.CorrelationID)
	})
}

func TestValidateMetadata(t *testing.T) {
	long := strings.Repeat("k", eventbus.MaxMetadataKeyLen)
	many := map[string]string{}
	for i := range eventbus.MaxMetadataPairs + 1 {
		many[fmt.Sprintf("k%d", i)] = "v"
	}
	tests := []struct {
		name string
		md   map[string]string
		ok   bool
	}{
		{"nil", nil, true},
		{"trace context", map[string]string{"traceparent": "00-abc-def-01", "retry.count": "2", "x_y-Z": ""}, true},
		{"longest key", map[string]string{long: "v"}, true},
		{"empty key", map[string]string{"": "v"}, false},
		{"key too long", map[string]string{long + "k": "v"}, false},
		{"space in key", map[string]string{"a b": "v"}, false},
		{"colon in key", map[string]string{"a:b": "v"}, false},
		{"too many pairs", many, false},
		{"too many bytes", map[string]string{"big": strings.Repeat("v", eventbus.MaxMetadataBytes)}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := eventbus.ValidateMetadata(tt.md)
			e, nerr := eventbus.NewEvent(eventbus.ChatMessage, "chat.a", nil, "me")
			require.NoError(t, nerr)
			e.Metadata = tt.md
			if tt.ok {
				assert.NoError(t, err)
				assert.NoError(t, e.Validate())
				return
			}
			assert.ErrorIs(t, err, eventbus.ErrInvalidMetadata)
			assert.ErrorIs(t, e.Validate(), eventbus.ErrInvalidMetadata)
		})
	}
}

func TestMetadataDelivered(t *testing.T) {
	bus := newBus(t)
	sub, err := bus.Subscribe(t.Context(), "md.*")
	require.NoError(t, err)
	md := map[string]string{"traceparent": "00-1-2-01"}
	require.NoError(t, bus.Publish(t.Context(), eventbus.Event{Type: eventbus.ChatMessage, Topic: "md.a", Metadata: md}))
	md["traceparent"] = "changed after publish"
	got := recvWithin(t, sub, time.Second)
	assert.Equal(t, map[string]string{"traceparent": "00-1-2-01"}, got.Metadata)

	data, err := json.Marshal(got)
	require.NoError(t, err)
	var back eventbus.Event
	require.NoError(t, json.Unmarshal(data, &back))
	assert.Equal(t, got, back)
}
