package natsbridge_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/choiros/eventbus/natsbridge"
)

// waitSignal waits for a value on ch.
func waitSignal(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(waitLimit):
		require.FailNow(t, "timed out", "waiting for %s", what)
	}
}

// assertOnce checks that each of ids arrived at n exactly once.
func assertOnce(t *testing.T, n *node, what string, ids []ulid.ULID) {
	t.Helper()
	count, _ := n.rec.snapshot()
	for _, id := range ids {
		if !assert.Equal(t, 1, count[id], "%s: %s event %s", n.name, what, id) {
			return
		}
	}
}

// Core NATS across a server restart. What nats.go guarantees, and so what
// this asserts: events published before the outage arrive; events published
// during it are buffered by the exporting connection (no error) and sent
// when it reconnects, but arrive only if the importing connection is back
// by then, so they arrive at most once; events published after both
// connections are back arrive. Nothing arrives twice.
func TestServerRestartCore(t *testing.T) {
	srv := startServer(t, "")
	reA, reB := make(chan struct{}, 1), make(chan struct{}, 1)
	a := startNode(t, "a", connect(t, srv.url(), reA), natsbridge.WithExport("*"))
	b := startNode(t, "b", connect(t, srv.url(), reB), natsbridge.WithImport("*"))

	before := a.publish(t, "x.before", 100)
	b.rec.waitUntil(t, "events before the outage", func(r *recorder) bool { return r.has(before...) })

	srv.stop()
	during := a.publish(t, "x.during", 100)
	require.Eventually(t, func() bool { return a.br.Stats().Exported == 200 }, waitLimit, time.Millisecond,
		"the exporter hands events to the reconnect buffer")
	assert.Zero(t, a.br.Stats().ExportErrors, "the reconnect buffer takes them")

	srv.start()
	waitSignal(t, reA, "a to reconnect")
	waitSignal(t, reB, "b to reconnect")
	require.NoError(t, b.nc.Flush(), "b's subscriptions are back at the server")

	after := a.publish(t, "x.after", 100)
	b.rec.waitUntil(t, "events after the outage", func(r *recorder) bool { return r.has(after...) })

	assertOnce(t, b, "before", before)
	assertOnce(t, b, "after", after)
	count, total := b.rec.snapshot()
	arrived := 0
	for _, id := range during {
		assert.LessOrEqual(t, count[id], 1)
		arrived += count[id]
	}
	assert.Equal(t, 200+arrived, total)
	t.Logf("%d of %d events published during the outage arrived", arrived, len(during))
	assert.Zero(t, b.br.Stats().ImportErrors)
}

// JetStream: a bus that restarts with the same durable receives what was
// published while it was away, exactly once, and nothing from before.
func TestJetStreamImporterRestart(t *testing.T) {
	srv := startServer(t, t.TempDir())
	a := startNode(t, "a", connect(t, srv.url(), nil),
		natsbridge.WithJetStream("EVENTS", "a"), natsbridge.WithExport("*"))
	b := startNode(t, "b", connect(t, srv.url(), nil),
		natsbridge.WithJetStream("EVENTS", "b"), natsbridge.WithImport("job.*"))

	first := a.publish(t, "job.first", 100)
	b.rec.waitUntil(t, "the first events", func(r *recorder) bool { return r.has(first...) })
	b.close(t)
	b.nc.Close()

	missed := a.publish(t, "job.missed", 200)
	require.Eventually(t, func() bool { return a.br.Stats().Exported == 300 }, waitLimit, time.Millisecond,
		"the stream acknowledges every export")

	b2 := startNode(t, "b2", connect(t, srv.url(), nil),
		natsbridge.WithJetStream("EVENTS", "b"), natsbridge.WithImport("job.*"))
	b2.rec.waitUntil(t, "the missed events", func(r *recorder) bool { return r.has(missed...) })
	sentinel := a.publish(t, "job.sentinel", 1)
	b2.rec.waitUntil(t, "the sentinel", func(r *recorder) bool { return r.has(sentinel...) })

	assertOnce(t, b2, "missed", missed)
	_, total := b2.rec.snapshot()
	assert.Equal(t, 201, total, "only what was missed, and the sentinel")
	b2.waitStats(t, "imports", func(st natsbridge.Stats) bool { return st.Imported == 201 && st.ImportErrors == 0 })
}

// JetStream across a server restart with the same store: events published
// before, during and after the outage all arrive, exactly once.
func TestJetStreamServerRestart(t *testing.T) {
	dir := t.TempDir()
	srv := startServer(t, dir)
	a := startNode(t, "a", connect(t, srv.url(), nil),
		natsbridge.WithJetStream("EVENTS", "a"), natsbridge.WithExport("*"))
	b := startNode(t, "b", connect(t, srv.url(), nil),
		natsbridge.WithJetStream("EVENTS", "b"), natsbridge.WithImport("*"))

	before := a.publish(t, "x.before", 100)
	b.rec.waitUntil(t, "events before the outage", func(r *recorder) bool { return r.has(before...) })
	require.NoError(t, b.nc.Flush(), "b's acks reached the server")

	srv.stop()
	during := a.publish(t, "x.during", 100)
	srv.start()
	after := a.publish(t, "x.after", 100)

	all := append(append(append([]ulid.ULID(nil), before...), during...), after...)
	b.rec.waitUntil(t, "every event", func(r *recorder) bool { return r.has(all...) })
	sentinel := a.publish(t, "x.sentinel", 1)
	b.rec.waitUntil(t, "the sentinel", func(r *recorder) bool { return r.has(sentinel...) })

	assertOnce(t, b, "published", all)
	_, total := b.rec.snapshot()
	assert.Equal(t, 301, total)
	assert.Zero(t, b.br.Stats().ImportErrors)
	assert.Zero(t, a.br.Stats().ExportErrors)
}

// JetStream with three buses exporting and importing the same topics:
// each event reaches each bus exactly once.
func TestJetStreamThreeBuses(t *testing.T) {
	srv := startServer(t, t.TempDir())
	nodes := make([]*node, 3)
	for i := range nodes {
		name := fmt.Sprintf("n%d", i)
		nodes[i] = startNode(t, name, connect(t, srv.url(), nil),
			natsbridge.WithJetStream("EVENTS", name), natsbridge.WithPatterns("*"))
	}
	var all []ulid.ULID
	for _, n := range nodes {
		all = append(all, n.publish(t, "js."+n.name, 500)...)
	}
	for _, n := range nodes {
		n.rec.waitUntil(t, n.name+" has every event", func(r *recorder) bool { return r.has(all...) })
	}
	var sentinels []ulid.ULID
	for _, n := range nodes {
		sentinels = append(sentinels, n.publish(t, "sentinel."+n.name, 1)...)
	}
	for _, n := range nodes {
		n.rec.waitUntil(t, n.name+" has every sentinel", func(r *recorder) bool { return r.has(sentinels...) })
	}
	for _, n := range nodes {
		assertOnce(t, n, "published", all)
		_, total := n.rec.snapshot()
		assert.Equal(t, len(all)+len(sentinels), total, n.name)
		n.waitStats(t, "counts", func(st natsbridge.Stats) bool {
			return st.Exported == 501 && st.Imported == 1002 && st.Looped == 1002 && st.Echoes == 501
		})
	}
}
