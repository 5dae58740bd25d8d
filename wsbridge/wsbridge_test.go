package wsbridge_test

import (
	"context"
	"encoding/json"
	"maps"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/choiros/eventbus"
	"github.com/choiros/eventbus/eventbustest"
	"github.com/choiros/eventbus/wsbridge"
)

func TestStream(t *testing.T) {
	t.Run("patterns from the URL", func(t *testing.T) {
		hs := newHarness(t, nil)
		c, ready := hs.dial("pattern=a.*&pattern=c.x&pattern=a.*")
		assert.Equal(t, []string{"a.*", "c.x"}, ready.Patterns)

		want := []eventbus.Event{hs.publish("a.x", 1)}
		hs.publish("b.y", 2)
		want = append(want, hs.publish("c.x", 3), hs.publish("a.b.c", 4))
		for _, w := range want {
			got := readEvent(t, c)
			assert.Equal(t, w.ID, got.ID)
			assert.Equal(t, w.Seq, got.Seq)
			assert.Equal(t, w.Topic, got.Topic)
			assert.JSONEq(t, string(w.Payload), string(got.Payload))
		}
	})

	t.Run("no pattern means everything", func(t *testing.T) {
		hs := newHarness(t, nil)
		c, ready := hs.dial("")
		assert.Equal(t, []string{"*"}, ready.Patterns)
		e := hs.publish("anything.at.all", nil)
		assert.Equal(t, e.Seq, readEvent(t, c).Seq)
	})

	t.Run("frames are the documented envelope", func(t *testing.T) {
		hs := newHarness(t, nil)
		c, _ := hs.dial("pattern=a")
		e := hs.publish("a", map[string]int{"n": 1})
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		_, data, err := c.Read(ctx)
		require.NoError(t, err)
		var frame map[string]json.RawMessage
		require.NoError(t, json.Unmarshal(data, &frame))
		assert.JSONEq(t, `"event"`, string(frame["type"]))
		want, err := json.Marshal(e)
		require.NoError(t, err)
		assert.JSONEq(t, string(want), string(frame["event"]))
		assert.Len(t, frame, 2)
	})

	t.Run("from replays then continues live", func(t *testing.T) {
		hs := newHarness(t, nil)
		var seqs []uint64
		for i := range 5 {
			seqs = append(seqs, hs.publish("r.x", i).Seq)
		}
		hs.publish("other", 0)
		c, _ := hs.dial("pattern=r.*&from=" + u64(seqs[2]))
		seqs = append(seqs, hs.publish("r.y", 5).Seq)
		for _, want := range seqs[2:] {
			assert.Equal(t, want, readEvent(t, c).Seq)
		}
	})

	t.Run("from replays every pattern", func(t *testing.T) {
		hs := newHarness(t, nil)
		a := hs.publish("a.x", 0)
		hs.publish("c.x", 1)
		b := hs.publish("b.x", 2)
		c, _ := hs.dial("pattern=a.*&pattern=b.*&from=" + u64(a.Seq))
		live := hs.publish("b.y", 3)
		for _, want := range []uint64{a.Seq, b.Seq, live.Seq} {
			assert.Equal(t, want, readEvent(t, c).Seq)
		}
	})

	t.Run("an event matching several patterns arrives once", func(t *testing.T) {
		hs := newHarness(t, nil)
		c, _ := hs.dial("pattern=a.*&pattern=*.x&pattern=a.x")
		first := hs.publish("a.x", 1)
		second := hs.publish("a.y", 2)
		assert.Equal(t, first.Seq, readEvent(t, c).Seq)
		assert.Equal(t, second.Seq, readEvent(t, c).Seq)
	})
}

func TestControl(t *testing.T) {
	hs := newHarness(t, nil)
	c, _ := hs.dial("pattern=a")

	send(t, c, map[string]any{"op": "subscribe", "pattern": "b.*", "id": 7})
	ack := read(t, c)
	assert.Equal(t, wsbridge.Message{Type: "ack", Op: "subscribe", Pattern: "b.*", ID: json.RawMessage("7")}, ack)

	b := hs.publish("b.x", 1)
	assert.Equal(t, b.Seq, readEvent(t, c).Seq)

	// Subscribing again is a no-op; the event still arrives once.
	send(t, c, map[string]any{"op": "subscribe", "pattern": "b.*"})
	assert.Equal(t, "ack", read(t, c).Type)
	assert.ElementsMatch(t, []string{"a", "b.*"}, hs.bus.Subscribers("b.x")[0].Patterns)

	send(t, c, map[string]any{"op": "unsubscribe", "pattern": "b.*"})
	assert.Equal(t, wsbridge.Message{Type: "ack", Op: "unsubscribe", Pattern: "b.*"}, read(t, c))
	hs.publish("b.x", 2) // no longer wanted
	marker := hs.publish("a", 3)
	assert.Equal(t, marker.Seq, readEvent(t, c).Seq, "the b.x event must not arrive before the marker")

	// With no pattern left the connection stays open and quiet.
	send(t, c, map[string]any{"op": "unsubscribe", "pattern": "a"})
	assert.Equal(t, "ack", read(t, c).Type)
	assert.Empty(t, hs.bus.Subscribers("a"))
	send(t, c, map[string]any{"op": "subscribe", "pattern": "a"})
	assert.Equal(t, "ack", read(t, c).Type)
	marker = hs.publish("a", 4)
	assert.Equal(t, marker.Seq, readEvent(t, c).Seq)
}

// TestBadInput sends each kind of bad client message and checks the error
// reply, that the bus saw nothing, that the connection still works, and that
// another client was not affected.
func TestBadInput(t *testing.T) {
	tests := []struct {
		name     string
		opts     []wsbridge.Option
		msg      string
		binary   bool
		wantCode string
		wantOp   string
	}{
		{name: "malformed JSON", msg: `{"op":"subscribe",`, wantCode: "malformed"},
		{name: "not an object", msg: `[1,2]`, wantCode: "malformed"},
		{name: "null", msg: `null`, wantCode: "malformed"},
		{name: "null with spaces", msg: " \n null ", wantCode: "malformed"},
		{name: "a number", msg: `42`, wantCode: "malformed"},
		{name: "a string", msg: `"subscribe"`, wantCode: "malformed"},
		{name: "true", msg: `true`, wantCode: "malformed"},
		{name: "an empty array", msg: `[]`, wantCode: "malformed"},
		{name: "an empty message", msg: ``, wantCode: "malformed"},
		{name: "binary message", msg: `{"op":"subscribe","pattern":"z"}`, binary: true, wantCode: "malformed"},
		{name: "unknown op", msg: `{"op":"explode"}`, wantCode: "unknown_op", wantOp: "explode"},
		{name: "missing op", msg: `{"pattern":"z"}`, wantCode: "unknown_op"},
		{name: "invalid pattern", msg: `{"op":"subscribe","pattern":"a..b"}`, wantCode: "invalid_pattern", wantOp: "subscribe"},
		{name: "empty pattern", msg: `{"op":"subscribe"}`, wantCode: "invalid_pattern", wantOp: "subscribe"},
		{name: "pattern with whitespace", msg: `{"op":"subscribe","pattern":"a b"}`, wantCode: "invalid_pattern", wantOp: "subscribe"},
		{name: "too many patterns", opts: []wsbridge.Option{wsbridge.WithMaxPatterns(1)},
			msg: `{"op":"subscribe","pattern":"z"}`, wantCode: "too_many_patterns", wantOp: "subscribe"},
		{name: "forbidden pattern", msg: `{"op":"subscribe","pattern":"secret.*"}`, wantCode: "forbidden", wantOp: "subscribe"},
		{name: "forbidden: everything", msg: `{"op":"subscribe","pattern":"*"}`, wantCode: "forbidden", wantOp: "subscribe"},
		{name: "forbidden: a ? bypass", msg: `{"op":"subscribe","pattern":"s?cret.*"}`, wantCode: "forbidden", wantOp: "subscribe"},
		{name: "forbidden: a * bypass", msg: `{"op":"subscribe","pattern":"*ecret*"}`, wantCode: "forbidden", wantOp: "subscribe"},
		{name: "forbidden: a glob reaching beyond", msg: `{"op":"subscribe","pattern":"*.x"}`, wantCode: "forbidden", wantOp: "subscribe"},
		{name: "unsubscribe a pattern not held", msg: `{"op":"unsubscribe","pattern":"z"}`, wantCode: "not_subscribed", wantOp: "unsubscribe"},
		{name: "publish when disabled",
			msg:      `{"op":"publish","event":{"event_type":"user_input","topic":"user.x","payload":1}}`,
			wantCode: "publish_disabled", wantOp: "publish"},
		{name: "publish a type not allowed", opts: []wsbridge.Option{wsbridge.WithClientPublish(eventbus.UserCommand)},
			msg:      `{"op":"publish","event":{"event_type":"user_input","topic":"user.x","payload":1}}`,
			wantCode: "type_not_allowed", wantOp: "publish"},
		{name: "publish a server-only type", opts: []wsbridge.Option{wsbridge.WithClientPublish()},
			msg:      `{"op":"publish","event":{"event_type":"system_error","topic":"system.x","payload":1}}`,
			wantCode: "type_not_allowed", wantOp: "publish"},
		{name: "publish a malformed type", opts: []wsbridge.Option{wsbridge.WithClientPublish()},
			msg:      `{"op":"publish","event":{"event_type":"Nonsense!","topic":"user.x","payload":1}}`,
			wantCode: "invalid_event", wantOp: "publish"},
		{name: "publish on a forbidden topic", opts: []wsbridge.Option{wsbridge.WithClientPublish()},
			msg:      `{"op":"publish","event":{"event_type":"user_input","topic":"secret.x","payload":1}}`,
			wantCode: "forbidden", wantOp: "publish"},
		{name: "publish on an invalid topic", opts: []wsbridge.Option{wsbridge.WithClientPublish()},
			msg:      `{"op":"publish","event":{"event_type":"user_input","topic":"user..x","payload":1}}`,
			wantCode: "invalid_event", wantOp: "publish"},
		{name: "publish without an event", opts: []wsbridge.Option{wsbridge.WithClientPublish()},
			msg: `{"op":"publish"}`, wantCode: "malformed", wantOp: "publish"},
		{name: "publish an event that is not an object", opts: []wsbridge.Option{wsbridge.WithClientPublish()},
			msg: `{"op":"publish","event":"hello"}`, wantCode: "malformed", wantOp: "publish"},
		{name: "publish a null event", opts: []wsbridge.Option{wsbridge.WithClientPublish()},
			msg: `{"op":"publish","event":null}`, wantCode: "malformed", wantOp: "publish"},
		{name: "publish with an invalid metadata key", opts: []wsbridge.Option{wsbridge.WithClientPublish()},
			msg:      `{"op":"publish","event":{"event_type":"user_input","topic":"user.x","metadata":{"bad key":"v"}}}`,
			wantCode: "invalid_event", wantOp: "publish"},
		{name: "publish with too much metadata", opts: []wsbridge.Option{wsbridge.WithClientPublish()},
			msg: `{"op":"publish","event":{"event_type":"user_input","topic":"user.x","metadata":{"k":"` +
				strings.Repeat("v", eventbus.MaxMetadataBytes) + `"}}}`,
			wantCode: "invalid_event", wantOp: "publish"},
		{name: "publish with a metadata key of the bus", opts: []wsbridge.Option{wsbridge.WithClientPublish()},
			msg:      `{"op":"publish","event":{"event_type":"user_input","topic":"user.x","metadata":{"eventbus-attempts":"3"}}}`,
			wantCode: "invalid_event", wantOp: "publish"},
		{name: "publish with a metadata value that is not a string", opts: []wsbridge.Option{wsbridge.WithClientPublish()},
			msg:      `{"op":"publish","event":{"event_type":"user_input","topic":"user.x","metadata":{"k":1}}}`,
			wantCode: "malformed", wantOp: "publish"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hs := newHarness(t, []eventbus.Option{eventbus.WithAuthorizer(withinPublic)}, tt.opts...)
			other, _ := hs.dial("pattern=a")
			c, _ := hs.dial("pattern=a")
			before := hs.bus.Stats()

			typ := websocket.MessageText
			if tt.binary {
				typ = websocket.MessageBinary
			}
			sendRaw(t, c, typ, []byte(tt.msg))
			reply := read(t, c)
			assert.Equal(t, wsbridge.TypeError, reply.Type)
			assert.Equal(t, tt.wantCode, reply.Code)
			assert.Equal(t, tt.wantOp, reply.Op)
			assert.True(t, strings.HasPrefix(reply.Error, "wsbridge: ") || strings.HasPrefix(reply.Error, "eventbus: "), reply.Error)

			after := hs.bus.Stats()
			assert.Equal(t, before.Published, after.Published, "nothing published")
			assert.Equal(t, before.Patterns, after.Patterns, "no subscription changed")

			// The connection and the other client work as before.
			send(t, c, map[string]any{"op": "subscribe", "pattern": "a"})
			assert.Equal(t, "ack", read(t, c).Type)
			e := hs.publish("a", "still here")
			assert.Equal(t, e.Seq, readEvent(t, c).Seq)
			assert.Equal(t, e.Seq, readEvent(t, other).Seq)
		})
	}
}

func TestReadLimit(t *testing.T) {
	hs := newHarness(t, nil, wsbridge.WithReadLimit(128))
	other, _ := hs.dial("pattern=a")
	c, _ := hs.dial("pattern=a")
	send(t, c, map[string]any{"op": "subscribe", "pattern": strings.Repeat("x", 200)})
	ce := readClose(t, c)
	assert.Equal(t, websocket.StatusMessageTooBig, ce.Code)
	hs.waitEnded(1)
	require.Len(t, hs.bus.Subscribers("a"), 1, "only the other client is left")
	e := hs.publish("a", 1)
	assert.Equal(t, e.Seq, readEvent(t, other).Seq)
}

// TestRefused covers the requests refused before the upgrade.
func TestRefused(t *testing.T) {
	authz := []eventbus.Option{eventbus.WithAuthorizer(withinPublic)}
	hdr := func(kv ...string) http.Header {
		h := http.Header{}
		for i := 0; i < len(kv); i += 2 {
			h.Set(kv[i], kv[i+1])
		}
		return h
	}
	tests := []struct {
		name    string
		busOpts []eventbus.Option
		opts    []wsbridge.Option
		query   string
		header  http.Header
		want    int
	}{
		{name: "auth fails", opts: []wsbridge.Option{wsbridge.WithAuth(authByHeader)}, want: http.StatusUnauthorized},
		{name: "invalid pattern", query: "pattern=a..b", want: http.StatusBadRequest},
		{name: "empty pattern", query: "pattern=", want: http.StatusBadRequest},
		{name: "too many patterns", opts: []wsbridge.Option{wsbridge.WithMaxPatterns(2)},
			query: "pattern=a&pattern=b&pattern=c", want: http.StatusBadRequest},
		{name: "bad from", query: "pattern=a&from=-1", want: http.StatusBadRequest},
		{name: "from without a store", busOpts: []eventbus.Option{eventbus.WithStore(nil)},
			query: "pattern=a&from=1", want: http.StatusBadRequest},
		{name: "forbidden pattern", busOpts: authz,
			query: "pattern=ok&pattern=secret.*", want: http.StatusForbidden},
		{name: "forbidden: no pattern is everything", busOpts: authz,
			query: "", want: http.StatusForbidden},
		{name: "forbidden: everything", busOpts: authz,
			query: "pattern=*", want: http.StatusForbidden},
		{name: "forbidden: a ? bypass", busOpts: authz,
			query: "pattern=s%3Fcret.*", want: http.StatusForbidden},
		{name: "forbidden: a * bypass", busOpts: authz,
			query: "pattern=*ecret*", want: http.StatusForbidden},
		{name: "forbidden: replaying everything", busOpts: authz,
			query: "pattern=*&from=1", want: http.StatusForbidden},
		{name: "forbidden: replaying with a bypass", busOpts: authz,
			query: "pattern=a&pattern=*ecret*&from=1", want: http.StatusForbidden},
		{name: "forbidden for this principal", busOpts: authz,
			opts: []wsbridge.Option{wsbridge.WithAuth(authByHeader)}, header: hdr("X-User", "bob"),
			query: "pattern=secret", want: http.StatusForbidden},
		{name: "cross origin", header: hdr("Origin", "http://evil.example"), want: http.StatusForbidden},
		{name: "cross origin not in the list", opts: []wsbridge.Option{wsbridge.WithOriginPatterns("good.example")},
			header: hdr("Origin", "http://evil.example"), want: http.StatusForbidden},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hs := newHarness(t, tt.busOpts, tt.opts...)
			assert.Equal(t, tt.want, hs.dialStatus(tt.query, tt.header))
			hs.waitEnded(1)
			assert.Zero(t, hs.bus.Stats().Subscriptions, "no subscription left behind")
		})
	}

	t.Run("allowed origin", func(t *testing.T) {
		hs := newHarness(t, nil, wsbridge.WithOriginPatterns("good.example"))
		hs.dial("", withHeader("Origin", "http://good.example"))
	})

	t.Run("connection limit", func(t *testing.T) {
		hs := newHarness(t, nil, wsbridge.WithMaxConnections(2))
		hs.dial("")
		c, _ := hs.dial("")
		assert.Equal(t, http.StatusServiceUnavailable, hs.dialStatus("", nil))
		hs.waitEnded(1)
		require.NoError(t, c.Close(websocket.StatusNormalClosure, ""))
		hs.waitEnded(1)
		hs.dial("") // room again
	})

	t.Run("bus shut down", func(t *testing.T) {
		hs := newHarness(t, nil)
		require.NoError(t, hs.bus.Close())
		assert.Equal(t, http.StatusServiceUnavailable, hs.dialStatus("", nil))
	})
}

// A client allowed some topics cannot read the others' history by
// replaying with a broad pattern; with allowed patterns it replays only
// what it may see.
func TestAuthReplay(t *testing.T) {
	hs := newHarness(t, []eventbus.Option{eventbus.WithAuthorizer(withinPublic)}, wsbridge.WithAuth(authByHeader))
	admin := hs.bus.Publisher("admin")
	ctx := eventbus.WithPrincipal(t.Context(), "admin")
	var public []uint64
	for i := range 3 {
		_, err := admin.Emit(ctx, eventbus.WorkerProgress, "secret.plans", i)
		require.NoError(t, err)
		e, err := admin.Emit(ctx, eventbus.WorkerProgress, "a.x", i)
		require.NoError(t, err)
		public = append(public, e.Seq)
	}
	for _, q := range []string{"pattern=*&from=1", "pattern=s%3Fcret.*&from=1", "pattern=*ecret*&from=1", "pattern=*.plans&from=1", "from=1"} {
		assert.Equal(t, http.StatusForbidden, hs.dialStatus(q, http.Header{"X-User": {"bob"}}), q)
		hs.waitEnded(1)
	}
	c, _ := hs.dial("pattern=a.*&from=1", withHeader("X-User", "bob"))
	for _, want := range public {
		assert.Equal(t, want, readEvent(t, c).Seq)
	}
	adminConn, _ := hs.dial("pattern=*&from=1", withHeader("X-User", "admin"))
	assert.Equal(t, "secret.plans", readEvent(t, adminConn).Topic, "admin may replay everything")
}

func TestAuth(t *testing.T) {
	hs := newHarness(t, []eventbus.Option{eventbus.WithAuthorizer(withinPublic)},
		wsbridge.WithAuth(authByHeader), wsbridge.WithClientPublish())

	admin, _ := hs.dial("pattern=secret.*", withHeader("X-User", "admin"))
	bob, _ := hs.dial("pattern=user.*", withHeader("X-User", "bob"))

	send(t, bob, map[string]any{"op": "subscribe", "pattern": "secret.plans"})
	assert.Equal(t, "forbidden", read(t, bob).Code)
	send(t, admin, map[string]any{"op": "subscribe", "pattern": "user.*"})
	assert.Equal(t, "ack", read(t, admin).Type)

	send(t, bob, map[string]any{"op": "publish", "event": map[string]any{
		"event_type": "user_command", "topic": "user.bob.command", "payload": map[string]string{"cmd": "pause"},
		"correlation_id": "c-1", "seq": 999, "id": "garbage",
	}})
	// The publisher's own copy of the event and the ack may come in either order.
	ack, own := readAckAndEvent(t, bob)
	assert.Equal(t, "publish", ack.Op)
	assert.Equal(t, "user.bob.command", ack.Topic)

	for _, e := range []eventbus.Event{own, readEvent(t, admin)} {
		assert.Equal(t, ack.EventID, e.ID.String())
		assert.Equal(t, "bob", e.Source, "source is the principal")
		assert.Equal(t, "c-1", e.CorrelationID)
		assert.Equal(t, eventbus.UserCommand, e.Type)
		assert.NotEqual(t, uint64(999), e.Seq)
	}

	send(t, bob, map[string]any{"op": "publish", "event": map[string]any{
		"event_type": "user_input", "topic": "user.bob.input", "source": "admin",
	}})
	_, e := readAckAndEvent(t, bob)
	assert.Equal(t, "bob", e.Source, "a client cannot claim another source")
	assert.Equal(t, "null", string(e.Payload))
}

// The source a client sets on its event: the principal, unless the handler
// trusts clients.
func TestClientSource(t *testing.T) {
	tests := []struct {
		name   string
		opts   []wsbridge.Option
		source any // what the client sends; nil: no source field
		want   string
	}{
		{name: "claimed source is replaced", source: "admin", want: "bob"},
		{name: "empty source is the principal", source: "", want: "bob"},
		{name: "no source is the principal", want: "bob"},
		{name: "trusted: the client's source", opts: []wsbridge.Option{wsbridge.WithTrustClientSource()}, source: "keyboard", want: "keyboard"},
		{name: "trusted: no source is the principal", opts: []wsbridge.Option{wsbridge.WithTrustClientSource()}, want: "bob"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := append([]wsbridge.Option{wsbridge.WithAuth(authByHeader), wsbridge.WithClientPublish()}, tt.opts...)
			hs := newHarness(t, nil, opts...)
			c, _ := hs.dial("pattern=user.*", withHeader("X-User", "bob"))
			ev := map[string]any{"event_type": "user_input", "topic": "user.bob.input"}
			if tt.source != nil {
				ev["source"] = tt.source
			}
			send(t, c, map[string]any{"op": "publish", "event": ev})
			_, e := readAckAndEvent(t, c)
			assert.Equal(t, tt.want, e.Source)
		})
	}

	t.Run("without auth the source is empty", func(t *testing.T) {
		hs := newHarness(t, nil, wsbridge.WithClientPublish())
		c, _ := hs.dial("pattern=user.*")
		send(t, c, map[string]any{"op": "publish", "event": map[string]any{
			"event_type": "user_input", "topic": "user.x", "source": "admin"}})
		_, e := readAckAndEvent(t, c)
		assert.Empty(t, e.Source)
	})
}

// Metadata travels in the event JSON both ways.
func TestMetadata(t *testing.T) {
	hs := newHarness(t, nil, wsbridge.WithClientPublish())
	c, _ := hs.dial("pattern=*")

	e, err := eventbus.NewEvent(eventbus.WorkerProgress, "w.x", 1, "test")
	require.NoError(t, err)
	e.Metadata = map[string]string{"traceparent": "00-abc-def-01", "eventbus-attempts": "2"}
	require.NoError(t, hs.bus.Publish(t.Context(), e))
	got := readEvent(t, c)
	assert.Equal(t, e.Metadata, got.Metadata, "server to client")

	rec := eventbustest.Record(t, hs.bus, "user.*")
	md := map[string]string{"trace-id": "t-1", "k.v_2": "a value: with \"quotes\"\n"}
	send(t, c, map[string]any{"op": "publish", "event": map[string]any{
		"event_type": "user_input", "topic": "user.x", "metadata": md}})
	_, own := readAckAndEvent(t, c)
	assert.Equal(t, md, own.Metadata, "client to server, and back to the client")
	eventbustest.Expect(t, rec, eventbustest.Func("the client's metadata, on the bus",
		func(e eventbus.Event) bool { return maps.Equal(md, e.Metadata) }))

	send(t, c, map[string]any{"op": "publish", "event": map[string]any{
		"event_type": "user_input", "topic": "user.x", "metadata": map[string]string{}}})
	_, own = readAckAndEvent(t, c)
	assert.Nil(t, own.Metadata, "empty metadata is none")
}

func TestOverflow(t *testing.T) {
	big := map[string]string{"blob": strings.Repeat("x", 64<<10)}

	t.Run("disconnect closes a slow client", func(t *testing.T) {
		hs := newHarness(t, []eventbus.Option{eventbus.WithStore(nil)}, wsbridge.WithBuffer(4))
		c, _ := hs.dial("pattern=big.*")
		// The client reads nothing until the bus has disconnected it.
		for i := 0; len(hs.bus.Subscribers("big.x")) > 0; i++ {
			require.Less(t, i, 5000, "the slow client was never disconnected")
			hs.publish("big.x", big)
		}
		ce := readClose(t, c)
		assert.Equal(t, websocket.StatusPolicyViolation, ce.Code)
		assert.Equal(t, "slow consumer", ce.Reason)
		hs.waitEnded(1)
	})

	t.Run("catch-up loses nothing", func(t *testing.T) {
		hs := newHarness(t, nil, wsbridge.WithBuffer(4), wsbridge.WithOverflow(eventbus.CatchUp))
		c, _ := hs.dial("pattern=big.*")
		var want []uint64
		lagging := false
		for i := 0; !lagging; i++ {
			require.Less(t, i, 5000, "the slow client never fell behind")
			want = append(want, hs.publish("big.x", big).Seq)
			subs := hs.bus.Subscribers("big.x")
			require.Len(t, subs, 1)
			lagging = subs[0].Stats.Lagging
		}
		for i := range 5 {
			want = append(want, hs.publish("big.x", i).Seq)
		}
		for _, seq := range want {
			require.Equal(t, seq, readEvent(t, c).Seq)
		}
	})

	t.Run("drop-oldest reports what it dropped", func(t *testing.T) {
		hs := newHarness(t, []eventbus.Option{eventbus.WithStore(nil)},
			wsbridge.WithBuffer(4), wsbridge.WithOverflow(eventbus.DropOldest))
		c, _ := hs.dial("pattern=big.*")
		published := 0
		for dropped := uint64(0); dropped == 0; {
			require.Less(t, published, 5000, "nothing was ever dropped")
			hs.publish("big.x", big)
			published++
			dropped = hs.bus.Subscribers("big.x")[0].Stats.Dropped
		}
		var received, noticed, total uint64
		last := uint64(0)
		for received+noticed < uint64(published) {
			m := read(t, c)
			switch m.Type {
			case wsbridge.TypeEvent:
				require.Greater(t, m.Event.Seq, last, "events stay in order")
				last = m.Event.Seq
				received++
			case wsbridge.TypeDropped:
				noticed += m.Count
				total = m.Total
			default:
				t.Fatalf("unexpected message %+v", m)
			}
		}
		assert.Equal(t, uint64(published), received+noticed)
		assert.Equal(t, noticed, total)
		assert.NotZero(t, noticed)
	})
}

func TestEnd(t *testing.T) {
	t.Run("client close ends the subscription", func(t *testing.T) {
		hs := newHarness(t, nil)
		c, _ := hs.dial("pattern=a.*")
		require.Len(t, hs.bus.Subscribers("a.x"), 1)
		require.NoError(t, c.Close(websocket.StatusNormalClosure, "bye"))
		hs.waitEnded(1)
		assert.Empty(t, hs.bus.Subscribers("a.x"))
		assert.Zero(t, hs.bus.Stats().Subscriptions)
	})

	t.Run("client vanishes", func(t *testing.T) {
		hs := newHarness(t, nil)
		c, _ := hs.dial("pattern=a.*")
		require.NoError(t, c.CloseNow())
		hs.waitEnded(1)
		assert.Empty(t, hs.bus.Subscribers("a.x"))
	})

	t.Run("bus shutdown sends what was queued and says going away", func(t *testing.T) {
		hs := newHarness(t, nil)
		c, _ := hs.dial("pattern=a")
		e := hs.publish("a", 1)
		require.NoError(t, hs.bus.Close())
		assert.Equal(t, e.Seq, readEvent(t, c).Seq)
		ce := readClose(t, c)
		assert.Equal(t, websocket.StatusGoingAway, ce.Code)
		assert.Equal(t, "event bus shut down", ce.Reason)
		hs.waitEnded(1)
	})

	t.Run("request context ends", func(t *testing.T) {
		hs := newHarness(t, nil)
		c, _ := hs.dial("pattern=a")
		hs.cancelRequests()
		ce := readClose(t, c)
		assert.Equal(t, websocket.StatusGoingAway, ce.Code)
		hs.waitEnded(1)
		assert.Empty(t, hs.bus.Subscribers("a"))
	})

	t.Run("unanswered ping", func(t *testing.T) {
		hs := newHarness(t, nil, wsbridge.WithPingInterval(20*time.Millisecond))
		hs.dial("pattern=a")
		// The client does not read, so it never answers the ping.
		hs.waitEnded(1)
		assert.Empty(t, hs.bus.Subscribers("a"))
	})
}

func TestWriteTimeout(t *testing.T) {
	hs := newHarness(t, []eventbus.Option{eventbus.WithStore(nil)},
		wsbridge.WithWriteTimeout(100*time.Millisecond), wsbridge.WithOverflow(eventbus.DropOldest), wsbridge.WithBuffer(2))
	hs.dial("pattern=big")
	// The client reads nothing: once the socket buffers are full the writer
	// blocks, the mailbox overflows, and the watchdog ends the connection.
	big := map[string]string{"blob": strings.Repeat("x", 64<<10)}
	deadline := time.Now().Add(10 * time.Second)
	for ended := false; !ended; {
		require.True(t, time.Now().Before(deadline), "the connection never timed out")
		hs.publish("big", big)
		select {
		case <-hs.ended:
			ended = true
		default:
		}
	}
	assert.Empty(t, hs.bus.Subscribers("big"))
}

func TestPingKeepsAlive(t *testing.T) {
	hs := newHarness(t, nil, wsbridge.WithPingInterval(100*time.Millisecond))
	pings := make(chan struct{}, 100)
	c, _ := hs.dial("pattern=a", func(o *websocket.DialOptions) {
		o.OnPingReceived = func(context.Context, []byte) bool {
			select {
			case pings <- struct{}{}:
			default:
			}
			return true
		}
	})
	// Pings are answered while the client reads; publish once three came.
	done := make(chan struct{})
	t.Cleanup(func() { <-done })
	go func() {
		defer close(done)
		for range 3 {
			select {
			case <-pings:
			case <-t.Context().Done():
				return
			}
		}
		_, _ = hs.bus.Publisher("test").Emit(context.Background(), eventbus.WorkerProgress, "a", nil)
	}()
	m, err := tryRead(t, c, 10*time.Second)
	require.NoError(t, err)
	assert.Equal(t, wsbridge.TypeEvent, m.Type)
}

func TestOptions(t *testing.T) {
	bus, err := eventbus.New()
	require.NoError(t, err)
	defer bus.Close()
	noStore, err := eventbus.New(eventbus.WithStore(nil))
	require.NoError(t, err)
	defer noStore.Close()

	tests := []struct {
		name string
		bus  *eventbus.Bus
		opt  wsbridge.Option
	}{
		{"nil bus", nil, nil},
		{"nil auth", bus, wsbridge.WithAuth(nil)},
		{"bad origin pattern", bus, wsbridge.WithOriginPatterns("[")},
		{"tiny read limit", bus, wsbridge.WithReadLimit(10)},
		{"zero patterns", bus, wsbridge.WithMaxPatterns(0)},
		{"negative connections", bus, wsbridge.WithMaxConnections(-1)},
		{"zero buffer", bus, wsbridge.WithBuffer(0)},
		{"negative ping", bus, wsbridge.WithPingInterval(-time.Second)},
		{"zero write timeout", bus, wsbridge.WithWriteTimeout(0)},
		{"block", bus, wsbridge.WithOverflow(eventbus.Block)},
		{"unknown policy", bus, wsbridge.WithOverflow(eventbus.Overflow(99))},
		{"catch-up without a store", noStore, wsbridge.WithOverflow(eventbus.CatchUp)},
		{"server type from clients", bus, wsbridge.WithClientPublish(eventbus.WorkerSpawned)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := wsbridge.New(tt.bus, tt.opt)
			require.ErrorIs(t, err, wsbridge.ErrInvalidOption)
			assert.True(t, strings.HasPrefix(err.Error(), "wsbridge: invalid option"), err.Error())
			// Handler never panics: it serves the error instead.
			rec := httptest.NewRecorder()
			wsbridge.Handler(tt.bus, tt.opt).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/ws", nil))
			assert.Equal(t, http.StatusInternalServerError, rec.Code)
			assert.Contains(t, rec.Body.String(), "wsbridge: invalid option")
		})
	}

	t.Run("valid", func(t *testing.T) {
		_, err := wsbridge.New(bus, nil, wsbridge.WithLogger(nil), wsbridge.WithPingInterval(0),
			wsbridge.WithOverflow(eventbus.CatchUp), wsbridge.WithClientPublish(eventbus.UserInput))
		require.NoError(t, err)
	})
}

func u64(n uint64) string { return strconv.FormatUint(n, 10) }

// readAckAndEvent reads an ack and an event, in either order.
func readAckAndEvent(t *testing.T, c *websocket.Conn) (wsbridge.Message, eventbus.Event) {
	t.Helper()
	var ack wsbridge.Message
	var e *eventbus.Event
	for range 2 {
		switch m := read(t, c); m.Type {
		case wsbridge.TypeAck:
			ack = m
		case wsbridge.TypeEvent:
			e = m.Event
		default:
			t.Fatalf("unexpected message %+v", m)
		}
	}
	require.Equal(t, wsbridge.TypeAck, ack.Type)
	require.NotNil(t, e)
	return ack, *e
}

// TestResume covers the ready message's epoch and last Seq and what a
// client resuming with from (and epoch) gets: a replay, a reset, or a
// dropped notice for what the store no longer holds.
func TestResume(t *testing.T) {
	const stored = 5 // the store keeps the newest 5 events
	tests := []struct {
		name string
		// query builds the connection's query from the bus's epoch.
		query       func(epoch string) string
		wantReset   bool
		wantDropped uint64 // a not_stored notice with this count
		wantSeqs    []uint64
	}{
		{name: "no from: live only", query: func(string) string { return "" }},
		{name: "from in this epoch replays", query: func(e string) string { return "from=9&epoch=" + e }, wantSeqs: []uint64{9, 10}},
		{name: "from without epoch is this epoch", query: func(string) string { return "from=9" }, wantSeqs: []uint64{9, 10}},
		{name: "from at the next Seq: nothing to replay", query: func(e string) string { return "from=11&epoch=" + e }},
		{name: "from of another epoch resets", query: func(string) string { return "from=9&epoch=01JOTHEREPOCH" }, wantReset: true},
		{name: "from of another epoch, low Seq, resets", query: func(string) string { return "from=1&epoch=x" }, wantReset: true},
		{name: "empty epoch is another epoch", query: func(string) string { return "from=9&epoch=" }, wantReset: true},
		{name: "from beyond the next Seq resets", query: func(string) string { return "from=12" }, wantReset: true},
		{name: "far beyond resets", query: func(e string) string { return "from=99999999&epoch=" + e }, wantReset: true},
		{name: "from older than the store", query: func(e string) string { return "from=2&epoch=" + e },
			wantDropped: 4, wantSeqs: []uint64{6, 7, 8, 9, 10}},
		{name: "from zero, older than the store", query: func(string) string { return "from=0" },
			wantDropped: 5, wantSeqs: []uint64{6, 7, 8, 9, 10}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hs := newHarness(t, []eventbus.Option{eventbus.WithStore(eventbus.NewMemoryStore(eventbus.WithMaxEvents(stored)))})
			for i := range 10 {
				hs.publish("r.x", i)
			}
			c, ready := hs.dial(tt.query(hs.bus.Epoch()))
			assert.Equal(t, hs.bus.Epoch(), ready.Epoch)
			assert.NotEmpty(t, ready.Epoch)
			assert.Equal(t, uint64(10), ready.LastSeq)
			if tt.wantReset {
				m := read(t, c)
				assert.Equal(t, wsbridge.Message{Type: wsbridge.TypeReset, Epoch: hs.bus.Epoch(), LastSeq: 10}, m)
			}
			if tt.wantDropped > 0 {
				m := read(t, c)
				assert.Equal(t, wsbridge.Message{Type: wsbridge.TypeDropped, Count: tt.wantDropped, Total: tt.wantDropped,
					Reason: wsbridge.ReasonNotStored}, m)
			}
			for _, want := range tt.wantSeqs {
				assert.Equal(t, want, readEvent(t, c).Seq)
			}
			// Then live, from the next Seq on, with nothing in between.
			live := hs.publish("r.y", "live")
			assert.Equal(t, uint64(11), live.Seq)
			assert.Equal(t, live.Seq, readEvent(t, c).Seq)
		})
	}

	t.Run("ready on an empty bus", func(t *testing.T) {
		hs := newHarness(t, nil)
		c := hs.dialRaw("")
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		_, data, err := c.Read(ctx)
		require.NoError(t, err)
		var m map[string]any
		require.NoError(t, json.Unmarshal(data, &m))
		assert.Equal(t, "ready", m["type"])
		assert.Equal(t, hs.bus.Epoch(), m["epoch"])
		assert.NotContains(t, m, "last_seq", "0 is left out")
	})

	t.Run("a restart on a memory store resets a resuming client", func(t *testing.T) {
		old := newHarness(t, nil)
		for i := range 3 {
			old.publish("r.x", i)
		}
		epoch := old.bus.Epoch()

		hs := newHarness(t, nil) // the restarted server: a new memory store
		require.NotEqual(t, epoch, hs.bus.Epoch())
		hs.publish("r.x", "new 1")
		c, _ := hs.dial("from=2&epoch=" + epoch)
		assert.Equal(t, wsbridge.Message{Type: wsbridge.TypeReset, Epoch: hs.bus.Epoch(), LastSeq: 1}, read(t, c))
		e := hs.publish("r.x", "new 2")
		assert.Equal(t, e.Seq, readEvent(t, c).Seq, "events from last_seq+1 on")
	})

	t.Run("an overflow notice's total includes what could not be replayed", func(t *testing.T) {
		hs := newHarness(t, []eventbus.Option{eventbus.WithStore(eventbus.NewMemoryStore(eventbus.WithMaxEvents(2)))},
			wsbridge.WithOverflow(eventbus.DropOldest), wsbridge.WithBuffer(4))
		for i := range 5 {
			hs.publish("r.x", i)
		}
		c, _ := hs.dial("from=1")
		m := read(t, c)
		require.Equal(t, wsbridge.TypeDropped, m.Type)
		assert.Equal(t, uint64(3), m.Count)
		// The client reads nothing until the bus has dropped for it.
		big := map[string]string{"blob": strings.Repeat("x", 64<<10)}
		for i := 0; hs.bus.Subscribers("r.x")[0].Stats.Dropped == 0; i++ {
			require.Less(t, i, 5000, "nothing was ever dropped")
			hs.publish("r.x", big)
		}
		for {
			m := read(t, c)
			if m.Type == wsbridge.TypeDropped {
				assert.Empty(t, m.Reason)
				assert.Equal(t, 3+m.Count, m.Total)
				break
			}
		}
	})
}

func TestResumeRefused(t *testing.T) {
	hs := newHarness(t, nil)
	assert.Equal(t, http.StatusBadRequest, hs.dialStatus("from=1&epoch="+strings.Repeat("e", 200), nil))
	hs.waitEnded(1)
}
