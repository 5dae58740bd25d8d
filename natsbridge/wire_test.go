package natsbridge_test

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/oklog/ulid/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/choiros/eventbus"
	"github.com/choiros/eventbus/natsbridge"
)

// Any NATS client can feed a bus: Event JSON with an ID on the topic's
// subject is imported once; other messages are counted by kind and
// reported, the first of each kind in an episode.
func TestForeignMessages(t *testing.T) {
	srv := startServer(t, "")
	b := startNode(t, "b", connect(t, srv.url(), nil), natsbridge.WithImport("*"), natsbridge.WithSummaryInterval(0))
	raw := connect(t, srv.url(), nil)

	e, err := eventbus.NewEvent(eventbus.UserCommand, "user.cmd", map[string]string{"do": "it"}, "cli")
	require.NoError(t, err)
	body, err := json.Marshal(e)
	require.NoError(t, err)
	last, err := eventbus.NewEvent(eventbus.UserCommand, "user.last", nil, "cli")
	require.NoError(t, err)
	lastBody, err := json.Marshal(last)
	require.NoError(t, err)
	withMD := func(md map[string]string) []byte {
		e, err := eventbus.NewEvent(eventbus.UserCommand, "user.md", nil, "cli")
		require.NoError(t, err)
		e.Metadata = md
		b, err := json.Marshal(e)
		require.NoError(t, err)
		return b
	}

	type msg struct {
		subject string
		body    string
		header  nats.Header
	}
	bad := []struct {
		msg  msg
		kind natsbridge.ImportErrorKind
	}{
		{msg{"eventbus.user.cmd", "{", nil}, natsbridge.ImportNotJSON},
		{msg{"eventbus.user.cmd", "plain text", nil}, natsbridge.ImportNotJSON},
		{msg{"eventbus.user.cmd", "null", nil}, natsbridge.ImportNotJSON},
		{msg{"eventbus.user.cmd", "[1]", nil}, natsbridge.ImportNotJSON},
		{msg{"eventbus.user.cmd", "", nil}, natsbridge.ImportEmpty},
		{msg{"eventbus.inj.a", `{"event_type":"system_heartbeat","topic":"inj.a"}`, nil}, natsbridge.ImportNoID},
		{msg{"eventbus.inj.a", `{"id":"00000000000000000000000000","event_type":"system_heartbeat","topic":"inj.a"}`, nil}, natsbridge.ImportNoID},
		{msg{"eventbus.inj.a", `{"id":"not-a-ulid","event_type":"system_heartbeat","topic":"inj.a"}`, nil}, natsbridge.ImportNoID},
		{msg{"eventbus.inj.a", `{"id":42,"event_type":"system_heartbeat","topic":"inj.a"}`, nil}, natsbridge.ImportNoID},
		{msg{"eventbus.user.other", string(body), nil}, natsbridge.ImportWrongSubject},
		{msg{"eventbus.inj.a", `{"id":"01JD0000000000000000000000","event_type":"Not A Type","topic":"inj.a"}`, nil}, natsbridge.ImportInvalidEvent},
		{msg{"eventbus.user.md", string(withMD(map[string]string{"k": "body"})), nats.Header{"k": {"header"}}}, natsbridge.ImportMetadata},
		{msg{"eventbus.user.md", string(withMD(nil)), nats.Header{"k": {"a", "b"}}}, natsbridge.ImportMetadata},
		{msg{"eventbus.user.md", string(withMD(nil)), nats.Header{"bad+key": {"v"}}}, natsbridge.ImportMetadata},
	}
	pub := func(m msg) {
		t.Helper()
		require.NoError(t, raw.PublishMsg(&nats.Msg{Subject: m.subject, Data: []byte(m.body), Header: m.header}))
	}

	pub(msg{"eventbus.user.cmd", string(body), nil})
	pub(msg{"eventbus.user.cmd", string(body), nil}) // the same event again
	wantKinds := map[natsbridge.ImportErrorKind]uint64{}
	for _, m := range bad {
		pub(m.msg)
		wantKinds[m.kind]++
	}
	pub(msg{"eventbus.user.last", string(lastBody), nil})
	b.rec.waitUntil(t, "the last event", func(r *recorder) bool { return r.has(last.ID) })

	count, total := b.rec.snapshot()
	assert.Equal(t, 2, total, "only the two valid events are imported")
	assert.Equal(t, 1, count[e.ID])
	b.waitStats(t, "counts", func(st natsbridge.Stats) bool {
		return st.Imported == 2 && st.Duplicates == 1 && st.ImportErrors == uint64(len(bad))
	})
	assert.Equal(t, wantKinds, b.br.Stats().ImportErrorsByKind)

	// One report per kind: the episode lasted from the first bad message
	// to the last event.
	reported := map[natsbridge.ImportErrorKind]int{}
	for len(b.errs) > 0 {
		err := <-b.errs
		require.ErrorIs(t, err, natsbridge.ErrImport)
		var ie *natsbridge.ImportError
		require.ErrorAs(t, err, &ie)
		reported[ie.Kind]++
		if ie.Kind == natsbridge.ImportNoID {
			assert.ErrorIs(t, err, natsbridge.ErrNoEventID)
			assert.Equal(t, "eventbus.inj.a", ie.Subject)
		}
	}
	for k := range wantKinds {
		assert.Equal(t, 1, reported[k], "reports of %s", k)
	}
	assert.Len(t, reported, len(wantKinds))
}

// A message without a valid event ID is never imported, so a mesh of buses
// can never make it into new events and relay them to each other.
func TestNoIDNeverRelayed(t *testing.T) {
	srv := startServer(t, "")
	var nodes []*node
	for _, name := range []string{"a", "b", "c"} {
		nodes = append(nodes, startNode(t, name, connect(t, srv.url(), nil), natsbridge.WithPatterns("*")))
	}
	raw := connect(t, srv.url(), nil)
	require.NoError(t, raw.Publish("eventbus.inj.a", []byte(`{"event_type":"system_heartbeat","topic":"inj.a"}`)))
	require.NoError(t, raw.Flush())

	// Barrier: a sentinel from each bus, published after the injection.
	var sentinels []ulid.ULID
	for _, n := range nodes {
		sentinels = append(sentinels, n.publish(t, "sentinel."+n.name, 1)...)
	}
	for _, n := range nodes {
		n.rec.waitUntil(t, n.name+" has every sentinel", func(r *recorder) bool { return r.has(sentinels...) })
		// A bridge counts an export once PublishMsg has returned, and an
		// import once the bus has accepted it: the other buses, or its
		// own recorder, can have the event first.
		n.waitStats(t, "the injection refused, the sentinels counted", func(st natsbridge.Stats) bool {
			return st.ImportErrorsByKind[natsbridge.ImportNoID] == 1 && st.Exported >= 1 && st.Imported >= 2
		})
	}
	for _, n := range nodes {
		_, total := n.rec.snapshot()
		assert.Equal(t, len(sentinels), total, "%s: only the sentinels", n.name)
		st := n.br.Stats()
		assert.Equal(t, uint64(1), st.Exported, "%s: exported only its sentinel", n.name)
		assert.Equal(t, uint64(2), st.Imported, "%s: imported the other sentinels", n.name)
		assert.Zero(t, st.Duplicates, "%s", n.name)
	}
}

// Metadata crosses the bridge exactly, in the body, and as NATS headers
// where a header carries it unchanged.
func TestMetadataAcrossBuses(t *testing.T) {
	srv := startServer(t, "")
	a := startNode(t, "a", connect(t, srv.url(), nil), natsbridge.WithExport("*"))
	b := startNode(t, "b", connect(t, srv.url(), nil), natsbridge.WithImport("*"))
	raw := connect(t, srv.url(), nil)
	sub, err := raw.SubscribeSync("eventbus.>")
	require.NoError(t, err)
	require.NoError(t, raw.Flush())

	md := map[string]string{
		"traceparent":       "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		"eventbus-attempts": "3",
		"multi-line":        "first\nsecond",
		"padded":            " spaces around ",
		"Nats-Msg-Id":       "not a NATS header here",
		"Eventbus-Origin":   "not the origin",
		"empty":             "",
		"unicode":           "héllo ✓",
	}
	e, err := eventbus.NewEvent(eventbus.WorkerProgress, "md.x", 1, "a")
	require.NoError(t, err)
	e.Metadata = md
	require.NoError(t, a.bus.Publish(t.Context(), e))

	b.rec.waitUntil(t, "the event on b", func(r *recorder) bool { return r.has(e.ID) })
	got, err := b.bus.Query(t.Context(), eventbus.Query{Pattern: "md.x"})
	require.NoError(t, err)
	require.Len(t, got, 1)
	assert.Equal(t, md, got[0].Metadata, "metadata arrives unchanged")

	m, err := sub.NextMsg(waitLimit)
	require.NoError(t, err)
	for _, k := range []string{"traceparent", "eventbus-attempts", "empty", "unicode"} {
		assert.Equal(t, []string{md[k]}, m.Header.Values(k), "header %s", k)
	}
	for _, k := range []string{"multi-line", "padded", "Nats-Msg-Id"} {
		assert.Empty(t, m.Header.Values(k), "%s travels in the body only", k)
	}
	assert.Equal(t, a.br.Origin(), m.Header.Get(natsbridge.OriginHeader))

	t.Run("headers of a foreign publisher become metadata", func(t *testing.T) {
		f, err := eventbus.NewEvent(eventbus.UserCommand, "md.foreign", nil, "cli")
		require.NoError(t, err)
		f.Metadata = map[string]string{"in-body": "1", "both": "same"}
		body, err := json.Marshal(f)
		require.NoError(t, err)
		require.NoError(t, raw.PublishMsg(&nats.Msg{Subject: "eventbus.md.foreign", Data: body, Header: nats.Header{
			"traceparent": {"00-abc-def-01"}, "both": {"same"}, "Nats-Expected-Stream": {"X"},
		}}))
		b.rec.waitUntil(t, "the foreign event", func(r *recorder) bool { return r.has(f.ID) })
		got, err := b.bus.Query(t.Context(), eventbus.Query{Pattern: "md.foreign"})
		require.NoError(t, err)
		require.Len(t, got, 1)
		assert.Equal(t, map[string]string{"in-body": "1", "both": "same", "traceparent": "00-abc-def-01"}, got[0].Metadata)
	})
}

// The summary of import errors comes every interval in which some failed,
// and at Close for the rest.
func TestImportSummary(t *testing.T) {
	srv := startServer(t, "")
	b := startNode(t, "b", connect(t, srv.url(), nil), natsbridge.WithImport("*"),
		natsbridge.WithSummaryInterval(10*time.Millisecond))
	raw := connect(t, srv.url(), nil)
	for range 3 {
		require.NoError(t, raw.Publish("eventbus.inj.a", []byte(`{"topic":"inj.a"}`)))
	}
	require.NoError(t, raw.Publish("eventbus.inj.a", nil))
	require.NoError(t, raw.Flush())

	// The failures may be split over several summaries.
	got := map[natsbridge.ImportErrorKind]uint64{}
	deadline := time.After(waitLimit)
	for got[natsbridge.ImportNoID] < 3 || got[natsbridge.ImportEmpty] < 1 {
		select {
		case err := <-b.errs:
			var sum *natsbridge.ImportSummary
			if errors.As(err, &sum) {
				require.ErrorIs(t, err, natsbridge.ErrImport)
				assert.Positive(t, sum.Interval)
				for k, n := range sum.Failed {
					got[k] += n
				}
			}
		case <-deadline:
			require.FailNow(t, "no summary", "got %v", got)
		}
	}
	assert.Equal(t, map[natsbridge.ImportErrorKind]uint64{natsbridge.ImportNoID: 3, natsbridge.ImportEmpty: 1}, got)

	t.Run("close reports the rest", func(t *testing.T) {
		srv := startServer(t, "")
		n := startNode(t, "n", connect(t, srv.url(), nil), natsbridge.WithImport("*"),
			natsbridge.WithSummaryInterval(time.Hour))
		raw := connect(t, srv.url(), nil)
		require.NoError(t, raw.Publish("eventbus.inj.a", []byte("junk")))
		n.waitStats(t, "the failure", func(st natsbridge.Stats) bool { return st.ImportErrors == 1 })
		require.NoError(t, n.br.Close())
		var sum *natsbridge.ImportSummary
		for len(n.errs) > 0 {
			if err := <-n.errs; errors.As(err, &sum) {
				break
			}
		}
		require.NotNil(t, sum, "a summary at Close")
		assert.Equal(t, map[natsbridge.ImportErrorKind]uint64{natsbridge.ImportNotJSON: 1}, sum.Failed)
		assert.Contains(t, sum.Error(), "natsbridge: import failed: 1 messages in ")
	})
}

// A bridge that restarts over a bus store that already holds events it
// imported before does not import their redeliveries again.
func TestJetStreamRedeliveryAfterRestart(t *testing.T) {
	srv := startServer(t, t.TempDir())
	a := startNode(t, "a", connect(t, srv.url(), nil),
		natsbridge.WithJetStream("EVENTS", "a"), natsbridge.WithExport("*"))

	// Consumer "b" exists and has not acknowledged anything, as after a
	// crash right after importing.
	js, err := jetstream.New(a.nc)
	require.NoError(t, err)
	_, err = js.CreateConsumer(t.Context(), "EVENTS", jetstream.ConsumerConfig{
		Durable:        "b",
		FilterSubjects: []string{"eventbus.>"},
		AckPolicy:      jetstream.AckExplicitPolicy,
	})
	require.NoError(t, err)
	ids := a.publish(t, "job.done", 50)
	a.waitStats(t, "stored", func(st natsbridge.Stats) bool { return st.Exported == 50 })

	// The restarted bus's store holds those events already.
	store := eventbus.NewMemoryStore()
	defer store.Close()
	prev, err := eventbus.New(eventbus.WithStore(store))
	require.NoError(t, err)
	for _, id := range ids {
		require.NoError(t, prev.Publish(t.Context(), eventbus.Event{ID: id, Type: eventbus.WorkerProgress, Topic: "job.done"}))
	}
	require.NoError(t, prev.Close())

	bus, err := eventbus.New(eventbus.WithStore(store), eventbus.WithLogger(nil))
	require.NoError(t, err)
	rec := record(t, bus)
	br, err := natsbridge.New(bus, connect(t, srv.url(), nil), natsbridge.WithLogger(nil),
		natsbridge.WithJetStream("EVENTS", "b"), natsbridge.WithImport("*"))
	require.NoError(t, err)
	defer func() {
		require.NoError(t, br.Close())
		require.NoError(t, bus.Close())
	}()

	sentinel := a.publish(t, "job.sentinel", 1)
	rec.waitUntil(t, "the sentinel", func(r *recorder) bool { return r.has(sentinel...) })
	_, total := rec.snapshot()
	assert.Equal(t, 1, total, "the redelivered events are not imported again")
	b := &node{name: "b", br: br}
	b.waitStats(t, "duplicates", func(st natsbridge.Stats) bool { return st.Duplicates == 50 && st.Imported == 1 })
}

// The wire format other NATS clients see.
func TestWireFormat(t *testing.T) {
	srv := startServer(t, "")
	a := startNode(t, "a", connect(t, srv.url(), nil), natsbridge.WithExport("*"), natsbridge.WithPrefix("prod.bus"))
	raw := connect(t, srv.url(), nil)
	sub, err := raw.SubscribeSync("prod.bus.>")
	require.NoError(t, err)
	require.NoError(t, raw.Flush())

	id := a.publish(t, "worker.7.done", 1)[0]
	m, err := sub.NextMsg(waitLimit)
	require.NoError(t, err)
	assert.Equal(t, "prod.bus.worker.7.done", m.Subject)
	assert.Equal(t, a.br.Origin(), m.Header.Get(natsbridge.OriginHeader))
	assert.Empty(t, m.Header.Get(nats.MsgIdHdr), "core NATS sends no message ID")
	var e eventbus.Event
	require.NoError(t, json.Unmarshal(m.Data, &e))
	assert.Equal(t, id, e.ID)
	assert.Equal(t, "worker.7.done", e.Topic)
}
