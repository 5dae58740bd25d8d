package natsbridge_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/oklog/ulid/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/choiros/eventbus"
	"github.com/choiros/eventbus/eventbustest"
	"github.com/choiros/eventbus/natsbridge"
)

func TestNewInvalid(t *testing.T) {
	bus, err := eventbus.New()
	require.NoError(t, err)
	defer bus.Close()
	srv := startServer(t, "")
	nc := connect(t, srv.url(), nil)

	tests := []struct {
		name string
		bus  *eventbus.Bus
		nc   *nats.Conn
		opts []natsbridge.Option
	}{
		{"nil bus", nil, nc, []natsbridge.Option{natsbridge.WithPatterns("*")}},
		{"nil connection", bus, nil, []natsbridge.Option{natsbridge.WithPatterns("*")}},
		{"no patterns", bus, nc, nil},
		{"empty pattern list", bus, nc, []natsbridge.Option{natsbridge.WithExport()}},
		{"invalid pattern", bus, nc, []natsbridge.Option{natsbridge.WithImport("a..b")}},
		{"empty prefix", bus, nc, []natsbridge.Option{natsbridge.WithPrefix(""), natsbridge.WithPatterns("*")}},
		{"wildcard prefix", bus, nc, []natsbridge.Option{natsbridge.WithPrefix("a.>"), natsbridge.WithPatterns("*")}},
		{"prefix with a space", bus, nc, []natsbridge.Option{natsbridge.WithPrefix("a b"), natsbridge.WithPatterns("*")}},
		{"stream with a dot", bus, nc, []natsbridge.Option{natsbridge.WithJetStream("a.b", "d"), natsbridge.WithPatterns("*")}},
		{"empty durable", bus, nc, []natsbridge.Option{natsbridge.WithJetStream("s", ""), natsbridge.WithPatterns("*")}},
		{"small dedupe window", bus, nc, []natsbridge.Option{natsbridge.WithDedupeWindow(10), natsbridge.WithPatterns("*")}},
		{"ack timeout", bus, nc, []natsbridge.Option{natsbridge.WithAckTimeout(0), natsbridge.WithPatterns("*")}},
		{"empty queue group", bus, nc, []natsbridge.Option{natsbridge.WithQueueGroup(""), natsbridge.WithPatterns("*")}},
		{"queue group with a space", bus, nc, []natsbridge.Option{natsbridge.WithQueueGroup("a b"), natsbridge.WithPatterns("*")}},
		{"queue group without imports", bus, nc, []natsbridge.Option{natsbridge.WithQueueGroup("q"), natsbridge.WithExport("*")}},
		{"queue group with JetStream", bus, nc, []natsbridge.Option{natsbridge.WithQueueGroup("q"), natsbridge.WithJetStream("s", "d"), natsbridge.WithPatterns("*")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			br, err := natsbridge.New(tt.bus, tt.nc, tt.opts...)
			require.ErrorIs(t, err, natsbridge.ErrInvalidOption)
			assert.Nil(t, br)
		})
	}
}

// Under a burst of 10,000 events published concurrently on every bus, each
// bus receives each event exactly once, and nothing loops.
func TestBurstExactlyOnce(t *testing.T) {
	const total = 10_000
	tests := []struct {
		name    string
		buses   int
		busOpts []eventbus.Option
	}{
		{"buses=2", 2, nil},
		{"buses=3", 3, nil},
		// Without a store the exporter subscribes with Block, not CatchUp.
		{"buses=2 without store", 2, []eventbus.Option{eventbus.WithStore(nil)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			buses := tt.buses
			srv := startServer(t, "")
			nodes := make([]*node, buses)
			for i := range nodes {
				nodes[i] = startNodeWith(t, fmt.Sprintf("n%d", i), connect(t, srv.url(), nil), tt.busOpts,
					natsbridge.WithPatterns("*"))
			}

			// Every bus publishes its share at once.
			ids := make([][]ulid.ULID, buses)
			var wg sync.WaitGroup
			for i, n := range nodes {
				share := total / buses
				if i == 0 {
					share += total % buses
				}
				wg.Go(func() { ids[i] = n.publish(t, fmt.Sprintf("burst.%s.tick", n.name), share) })
			}
			wg.Wait()
			var all []ulid.ULID
			for _, s := range ids {
				all = append(all, s...)
			}
			require.Len(t, all, total)
			for _, n := range nodes {
				n.rec.waitUntil(t, n.name+" has the burst", func(r *recorder) bool { return r.has(all...) })
			}

			// Barrier: a sentinel from each bus. A bridge that relayed an
			// imported event would have published it before its own
			// sentinel, on the same connection and subject, so once every
			// sentinel is everywhere, any loop would show in the counts.
			var sentinels []ulid.ULID
			for _, n := range nodes {
				sentinels = append(sentinels, n.publish(t, "sentinel."+n.name, 1)...)
			}
			for _, n := range nodes {
				n.rec.waitUntil(t, n.name+" has every sentinel", func(r *recorder) bool { return r.has(sentinels...) })
			}

			for i, n := range nodes {
				count, got := n.rec.snapshot()
				assert.Equal(t, total+buses, got, "%s: events received", n.name)
				assert.Len(t, count, total+buses, "%s: distinct events", n.name)
				for id, c := range count {
					if c != 1 {
						assert.Failf(t, "duplicate", "%s received %s %d times", n.name, id, c)
						break
					}
				}
				own := uint64(len(ids[i]) + 1)
				others := uint64(total+buses) - own
				// Each exported message also comes back once as an echo.
				n.waitStats(t, "every event counted", func(st natsbridge.Stats) bool {
					return st.Exported == own && st.Echoes == own && st.Imported == others && st.Looped == others
				})
				st := n.br.Stats()
				assert.Zero(t, st.Duplicates, "%s: duplicates", n.name)
				assert.Zero(t, st.ExportErrors+st.ExportDropped+st.ImportErrors+st.ImportDropped+st.Filtered,
					"%s: errors and drops: %+v", n.name, st)
			}
		})
	}
}

// An imported event keeps everything but its Seq, which the receiving bus
// assigns.
func TestEventFieldsKept(t *testing.T) {
	srv := startServer(t, "")
	a := startNode(t, "a", connect(t, srv.url(), nil), natsbridge.WithExport("chat.*"))
	b := startNode(t, "b", connect(t, srv.url(), nil), natsbridge.WithImport("chat.*"))
	// b's own events take the first Seqs there.
	b.publish(t, "local.x", 3)

	rec := eventbustest.Record(t, b.bus, "chat.*")
	rec.SetTimeout(waitLimit)
	e, err := eventbus.NewEvent(eventbus.ChatMessage, "chat.room1", map[string]string{"text": "hi"}, "user-1")
	require.NoError(t, err)
	e = e.WithCorrelationID("conv-9")
	require.NoError(t, a.bus.Publish(t.Context(), e))

	eventbustest.ExpectExactly(t, rec, eventbustest.Topic("chat.room1"))
	got := rec.Events()[0]
	assert.Equal(t, uint64(4), got.Seq, "the receiving bus assigns its own Seq")
	got.Seq = 0
	want := e
	want.Seq = 0
	wantJSON, _ := json.Marshal(want)
	gotJSON, _ := json.Marshal(got)
	assert.JSONEq(t, string(wantJSON), string(gotJSON))
	assert.True(t, want.Timestamp.Equal(got.Timestamp))
}

// Globs with no NATS form are received through a covering subject and
// filtered locally; topics outside it are not received at all.
func TestGlobImport(t *testing.T) {
	srv := startServer(t, "")
	a := startNode(t, "a", connect(t, srv.url(), nil), natsbridge.WithExport("*"))
	b := startNode(t, "b", connect(t, srv.url(), nil),
		natsbridge.WithImport("worker.*.complete", "chat.room?", "worker.*"))
	c := startNode(t, "c", connect(t, srv.url(), nil),
		natsbridge.WithImport("worker.*.complete", "chat.room?"))

	a.publish(t, "worker.1.progress", 1)
	a.publish(t, "chat.room1", 1)
	a.publish(t, "chat.room12", 1)
	a.publish(t, "other.thing", 1)
	last := a.publish(t, "worker.1.complete", 1)
	lastChat := a.publish(t, "chat.roomZ", 1)
	wantB := map[string]int{"worker.1.progress": 1, "worker.1.complete": 1, "chat.room1": 1, "chat.roomZ": 1}
	wantC := map[string]int{"worker.1.complete": 1, "chat.room1": 1, "chat.roomZ": 1}

	for _, n := range []*node{b, c} {
		// Events on one subject arrive in order: the last of each subject
		// comes after those before it.
		n.rec.waitUntil(t, n.name+" has the last events", func(r *recorder) bool { return r.has(last[0], lastChat[0]) })
	}
	b.rec.mu.Lock()
	assert.Equal(t, wantB, b.rec.byTopic)
	b.rec.mu.Unlock()
	c.rec.mu.Lock()
	assert.Equal(t, wantC, c.rec.byTopic)
	c.rec.mu.Unlock()
	// b subscribes to eventbus.worker.> (exact, for worker.*) and
	// eventbus.chat.> (filtered); c to both filtered.
	b.waitStats(t, "chat.room12 filtered", func(st natsbridge.Stats) bool { return st.Filtered == 1 && st.Imported == 4 })
	c.waitStats(t, "worker.1.progress and chat.room12 filtered", func(st natsbridge.Stats) bool {
		return st.Filtered == 2 && st.Imported == 3
	})
}

// A topic with a segment ">" has no NATS subject; since the bus refuses
// such topics (SPEC §3), none reaches the bridge, and the events after the
// refused one still go out.
func TestTopicWithoutSubject(t *testing.T) {
	srv := startServer(t, "")
	a := startNode(t, "a", connect(t, srv.url(), nil), natsbridge.WithExport("*"))
	b := startNode(t, "b", connect(t, srv.url(), nil), natsbridge.WithImport("*"))

	// A topic with a ">" segment, which would be a NATS wildcard as a
	// subject, is refused by the bus itself, so it never reaches the bridge.
	_, err := eventbus.NewEvent(eventbus.WorkerProgress, "alerts.>", 1, "a")
	require.ErrorIs(t, err, eventbus.ErrInvalidTopic)
	require.ErrorIs(t, a.bus.Publish(t.Context(), eventbus.Event{Type: eventbus.WorkerProgress, Topic: "alerts.>"}), eventbus.ErrInvalidTopic)
	good := a.publish(t, "alerts.disk", 1)
	b.rec.waitUntil(t, "the good event", func(r *recorder) bool { return r.has(good...) })
	a.waitStats(t, "one exported, no error", func(st natsbridge.Stats) bool {
		return st.Exported == 1 && st.ExportErrors == 0
	})
}

// Close stops relaying both ways, is safe to repeat, and leaves the bus and
// the connection open.
func TestClose(t *testing.T) {
	srv := startServer(t, "")
	a := startNode(t, "a", connect(t, srv.url(), nil), natsbridge.WithPatterns("*"))
	b := startNode(t, "b", connect(t, srv.url(), nil), natsbridge.WithPatterns("*"))

	require.NoError(t, b.br.Close())
	require.NoError(t, b.br.Close())
	require.NoError(t, b.br.Shutdown(t.Context()))
	assert.True(t, b.nc.IsConnected(), "the connection stays open")

	before := a.publish(t, "x.before", 1)
	// The export is asynchronous: wait until the server has it, so that c,
	// subscribing next, cannot see it.
	a.waitStats(t, "before exported", func(st natsbridge.Stats) bool { return st.Exported == 1 })
	require.NoError(t, a.nc.Flush())
	b.publish(t, "y.local", 1) // b's bus still works, but is not exported
	// A third bus, bridged now, sees a's events and not b's.
	c := startNode(t, "c", connect(t, srv.url(), nil), natsbridge.WithImport("*"))
	after := a.publish(t, "x.after", 1)
	c.rec.waitUntil(t, "c has a's event", func(r *recorder) bool { return r.has(after...) })

	count, total := b.rec.snapshot()
	assert.Equal(t, 1, total, "b only has its own event")
	assert.Zero(t, count[before[0]])
	_, total = c.rec.snapshot()
	assert.Equal(t, 1, total, "c has only what a published after c started")
}

// A bridge whose bus closed first still closes, and counts the imports the
// bus refused.
func TestBusClosedFirst(t *testing.T) {
	srv := startServer(t, "")
	a := startNode(t, "a", connect(t, srv.url(), nil), natsbridge.WithExport("*"))
	b := startNode(t, "b", connect(t, srv.url(), nil), natsbridge.WithPatterns("*"))
	require.NoError(t, b.bus.Close())

	a.publish(t, "x.y", 1)
	select {
	case err := <-b.errs:
		require.ErrorIs(t, err, natsbridge.ErrImport)
		require.ErrorIs(t, err, eventbus.ErrClosed)
	case <-time.After(waitLimit):
		require.FailNow(t, "no error reported")
	}
	b.waitStats(t, "one import error", func(st natsbridge.Stats) bool { return st.ImportErrors == 1 })
	ctx, cancel := context.WithTimeout(t.Context(), waitLimit)
	defer cancel()
	require.NoError(t, b.br.Shutdown(ctx))
}

// A bridge whose connection was closed first still closes promptly; what it
// could not export is counted.
func TestConnectionClosedFirst(t *testing.T) {
	tests := []struct {
		name string
		dir  bool
		opts []natsbridge.Option
	}{
		{"core", false, nil},
		{"jetstream", true, []natsbridge.Option{natsbridge.WithJetStream("EVENTS", "a")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := ""
			if tt.dir {
				dir = t.TempDir()
			}
			srv := startServer(t, dir)
			a := startNode(t, "a", connect(t, srv.url(), nil), append(tt.opts, natsbridge.WithPatterns("*"))...)
			a.nc.Close()
			a.publish(t, "x.y", 3)
			a.waitStats(t, "export errors", func(st natsbridge.Stats) bool { return st.ExportErrors == 3 })
			// (In JetStream mode the consumer reports the closed connection too.)
			var err error
			for err = range a.errs {
				if errors.Is(err, natsbridge.ErrExport) {
					break
				}
			}
			require.ErrorIs(t, err, natsbridge.ErrExport)
			require.ErrorContains(t, err, nats.ErrConnectionClosed.Error()) // nats.go does not always wrap it
			ctx, cancel := context.WithTimeout(t.Context(), waitLimit)
			defer cancel()
			require.NoError(t, a.br.Shutdown(ctx))
		})
	}
}

// TestQueueGroupImport bridges two worker buses into one NATS queue group
// and a third bus plainly, and exports a burst from a producer bus: each
// event is imported by exactly one of the workers (both get some), none
// is lost or duplicated, and the plain bus gets every one. The workers
// also export the topics they import, so a re-exported import would show
// as a duplicate on the plain bus.
func TestQueueGroupImport(t *testing.T) {
	const total = 2000
	srv := startServer(t, "")
	producer := startNode(t, "producer", connect(t, srv.url(), nil), natsbridge.WithExport("jobs.*"))
	workers := []*node{
		startNode(t, "w1", connect(t, srv.url(), nil), natsbridge.WithPatterns("jobs.*"), natsbridge.WithQueueGroup("workers")),
		startNode(t, "w2", connect(t, srv.url(), nil), natsbridge.WithPatterns("jobs.*"), natsbridge.WithQueueGroup("workers")),
	}
	plain := startNode(t, "plain", connect(t, srv.url(), nil), natsbridge.WithImport("jobs.*"))

	ids := producer.publish(t, "jobs.work", total)
	plain.rec.waitUntil(t, "plain has the burst", func(r *recorder) bool { return r.has(ids...) })
	deadline := time.After(waitLimit)
	for {
		_, n1 := workers[0].rec.snapshot()
		_, n2 := workers[1].rec.snapshot()
		if n1+n2 >= total {
			break
		}
		select {
		case <-workers[0].rec.kick:
		case <-workers[1].rec.kick:
		case <-deadline:
			t.Fatalf("the workers imported %d of %d", n1+n2, total)
		}
	}
	// Whatever is still on its way is received and handled before the
	// counts are read: the server has the producer's messages once its
	// connection is flushed, and a closed bridge and bus have handled
	// what had reached them.
	require.NoError(t, producer.nc.Flush())
	for _, n := range append(workers, plain) {
		require.NoError(t, n.nc.Flush())
		n.close(t)
	}

	got := map[ulid.ULID]int{}
	for _, w := range workers {
		count, n := w.rec.snapshot()
		assert.Positive(t, n, "%s imported none", w.name)
		for id, c := range count {
			got[id] += c
		}
		st := w.br.Stats()
		assert.Equal(t, st.Imported, st.Looped, "%s: every import skipped by its exporter", w.name)
		assert.Zero(t, st.Exported, "%s re-exported", w.name)
	}
	assert.Len(t, got, total)
	var wrong []string
	for _, id := range ids {
		if got[id] != 1 {
			wrong = append(wrong, fmt.Sprintf("%s ×%d", id, got[id]))
		}
	}
	assert.Empty(t, wrong, "events not imported by exactly one worker")
	count, n := plain.rec.snapshot()
	assert.Equal(t, total, n, "plain: every event once")
	assert.Len(t, count, total)
}
