package natsbridge_test

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/oklog/ulid/v2"
	"github.com/stretchr/testify/require"

	"github.com/choiros/eventbus"
	"github.com/choiros/eventbus/natsbridge"
)

// waitLimit bounds every wait in these tests.
const waitLimit = 20 * time.Second

// testServer is a nats-server running in the test process on 127.0.0.1,
// with JetStream storing in dir if dir is not "". It can be stopped and
// started again on the same port and store.
type testServer struct {
	t    testing.TB
	dir  string
	port int // -1 until the first start picks one
	s    *server.Server
}

// startServer starts a testServer on a random port; the test shuts it down
// when it ends, after everything registered later.
func startServer(t testing.TB, dir string) *testServer {
	t.Helper()
	ts := &testServer{t: t, dir: dir, port: -1}
	ts.start()
	ts.port = ts.s.Addr().(*net.TCPAddr).Port
	t.Cleanup(ts.stop)
	return ts
}

// start starts the server (again).
func (ts *testServer) start() {
	ts.t.Helper()
	s, err := server.NewServer(&server.Options{
		Host:      "127.0.0.1",
		Port:      ts.port,
		NoLog:     true,
		NoSigs:    true,
		JetStream: ts.dir != "",
		StoreDir:  ts.dir,
	})
	require.NoError(ts.t, err)
	s.Start()
	require.True(ts.t, s.ReadyForConnections(10*time.Second), "nats-server did not start")
	ts.s = s
}

// stop shuts the server down and waits until it is gone.
func (ts *testServer) stop() {
	ts.s.Shutdown()
	ts.s.WaitForShutdown()
}

func (ts *testServer) url() string { return ts.s.ClientURL() }

// connect dials url with a fast reconnect; the test closes the connection
// when it ends. reconnected, if not nil, gets a value on each reconnect.
func connect(t testing.TB, url string, reconnected chan<- struct{}) *nats.Conn {
	t.Helper()
	opts := []nats.Option{
		nats.ReconnectWait(20 * time.Millisecond),
		nats.ReconnectJitter(0, 0),
		nats.MaxReconnects(-1),
	}
	if reconnected != nil {
		opts = append(opts, nats.ReconnectHandler(func(*nats.Conn) {
			select {
			case reconnected <- struct{}{}:
			default:
			}
		}))
	}
	nc, err := nats.Connect(url, opts...)
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	return nc
}

// recorder counts, per event ID, what arrives on a bus (every topic).
type recorder struct {
	mu      sync.Mutex
	count   map[ulid.ULID]int
	byTopic map[string]int
	total   int
	kick    chan struct{} // a value after each change
}

func record(t testing.TB, bus *eventbus.Bus) *recorder {
	t.Helper()
	r := &recorder{count: map[ulid.ULID]int{}, byTopic: map[string]int{}, kick: make(chan struct{}, 1)}
	_, err := bus.Handle(t.Context(), "*", func(_ context.Context, e eventbus.Event) error {
		r.mu.Lock()
		r.count[e.ID]++
		r.byTopic[e.Topic]++
		r.total++
		r.mu.Unlock()
		select {
		case r.kick <- struct{}{}:
		default:
		}
		return nil
	}, eventbus.WithBuffer(8192), eventbus.WithOverflow(eventbus.Block))
	require.NoError(t, err)
	return r
}

// waitUntil waits until cond holds, re-checking it after each change.
func (r *recorder) waitUntil(t testing.TB, what string, cond func(r *recorder) bool) {
	t.Helper()
	deadline := time.After(waitLimit)
	for {
		r.mu.Lock()
		ok := cond(r)
		r.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-r.kick:
		case <-deadline:
			r.mu.Lock()
			defer r.mu.Unlock()
			require.FailNow(t, "timed out", "waiting for %s: %d events, %d distinct", what, r.total, len(r.count))
		}
	}
}

// has reports whether every id arrived; call under r.mu (in waitUntil).
func (r *recorder) has(ids ...ulid.ULID) bool {
	for _, id := range ids {
		if r.count[id] == 0 {
			return false
		}
	}
	return true
}

func (r *recorder) snapshot() (count map[ulid.ULID]int, total int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	count = make(map[ulid.ULID]int, len(r.count))
	for id, n := range r.count {
		count[id] = n
	}
	return count, r.total
}

// node is a bus bridged to NATS.
type node struct {
	name string
	bus  *eventbus.Bus
	nc   *nats.Conn
	br   *natsbridge.Bridge
	rec  *recorder
	errs chan error // what the bridge's error handler got
}

// startNode makes a bus that records what arrives and bridges it to nc.
func startNode(t testing.TB, name string, nc *nats.Conn, opts ...natsbridge.Option) *node {
	t.Helper()
	return startNodeWith(t, name, nc, nil, opts...)
}

// startNodeWith is startNode with options for the bus.
func startNodeWith(t testing.TB, name string, nc *nats.Conn, busOpts []eventbus.Option, opts ...natsbridge.Option) *node {
	t.Helper()
	bus, err := eventbus.New(append([]eventbus.Option{eventbus.WithLogger(nil)}, busOpts...)...)
	require.NoError(t, err)
	n := &node{name: name, bus: bus, nc: nc, rec: record(t, bus), errs: make(chan error, 100)}
	opts = append([]natsbridge.Option{
		natsbridge.WithLogger(nil),
		natsbridge.WithErrorHandler(func(err error) {
			select {
			case n.errs <- err:
			default:
			}
		}),
	}, opts...)
	n.br, err = natsbridge.New(bus, nc, opts...)
	require.NoError(t, err)
	t.Cleanup(func() { n.close(t) })
	return n
}

// close stops the bridge, then the bus; it may be called again.
func (n *node) close(t testing.TB) {
	t.Helper()
	require.NoError(t, n.br.Close(), "%s: bridge close", n.name)
	require.NoError(t, n.bus.Close(), "%s: bus close", n.name)
}

// publish publishes count events on topic from n and returns their IDs.
func (n *node) publish(t testing.TB, topic string, count int) []ulid.ULID {
	t.Helper()
	ids := make([]ulid.ULID, count)
	for i := range ids {
		e, err := eventbus.NewEvent(eventbus.WorkerProgress, topic, i, n.name)
		require.NoError(t, err)
		require.NoError(t, n.bus.PublishAsync(t.Context(), e))
		ids[i] = e.ID
	}
	require.NoError(t, n.bus.Flush(t.Context()))
	return ids
}

// waitStats waits until the bridge's counters satisfy ok: they are updated
// just after the event they count has moved on, so they may lag behind what
// a recorder has seen.
func (n *node) waitStats(t testing.TB, what string, ok func(st natsbridge.Stats) bool) {
	t.Helper()
	var last natsbridge.Stats
	require.Eventually(t, func() bool {
		last = n.br.Stats()
		return ok(last)
	}, waitLimit, time.Millisecond, "%s: %s: %+v", n.name, what, &last)
}
