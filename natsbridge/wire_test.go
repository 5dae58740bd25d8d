package natsbridge_test

import (
	"encoding/json"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/choiros/eventbus"
	"github.com/choiros/eventbus/natsbridge"
)

// Any NATS client can feed a bus: Event JSON on the topic's subject is
// imported once; other messages are counted and reported.
func TestForeignMessages(t *testing.T) {
	srv := startServer(t, "")
	b := startNode(t, "b", connect(t, srv.url(), nil), natsbridge.WithImport("*"))
	raw := connect(t, srv.url(), nil)

	e, err := eventbus.NewEvent(eventbus.UserCommand, "user.cmd", map[string]string{"do": "it"}, "cli")
	require.NoError(t, err)
	body, err := json.Marshal(e)
	require.NoError(t, err)
	last, err := eventbus.NewEvent(eventbus.UserCommand, "user.last", nil, "cli")
	require.NoError(t, err)
	lastBody, err := json.Marshal(last)
	require.NoError(t, err)

	require.NoError(t, raw.Publish("eventbus.user.cmd", body))
	require.NoError(t, raw.Publish("eventbus.user.cmd", body))        // the same event again
	require.NoError(t, raw.Publish("eventbus.user.cmd", []byte("{"))) // not JSON
	require.NoError(t, raw.Publish("eventbus.user.other", body))      // not its topic's subject
	require.NoError(t, raw.Publish("eventbus.user.last", lastBody))
	b.rec.waitUntil(t, "the last event", func(r *recorder) bool { return r.has(last.ID) })

	count, total := b.rec.snapshot()
	assert.Equal(t, 2, total)
	assert.Equal(t, 1, count[e.ID])
	b.waitStats(t, "counts", func(st natsbridge.Stats) bool {
		return st.Imported == 2 && st.Duplicates == 1 && st.ImportErrors == 2
	})
	select {
	case err := <-b.errs:
		require.ErrorIs(t, err, natsbridge.ErrImport)
	default:
		require.FailNow(t, "no error reported")
	}
	select {
	case err := <-b.errs:
		require.FailNow(t, "reported twice in one episode", "%v", err)
	default:
	}
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
