package wsbridge_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/require"

	"github.com/choiros/eventbus"
	"github.com/choiros/eventbus/wsbridge"
)

// TestLoadFanout100Clients measures the bridge under sustained load: 100
// WebSocket clients on loopback, all subscribed to the same topics,
// receiving 10,000 events/s together for 10s. It is skipped unless
// EVENTBUS_LOAD is set, and prints delivered and dropped counts and the
// latency from event creation to the client's read:
//
//	EVENTBUS_LOAD=1 go test -run TestLoadFanout100Clients -count=1 -v ./wsbridge/
//
// EVENTBUS_LOAD_CLIENTS, EVENTBUS_LOAD_RATE (events/s) and
// EVENTBUS_LOAD_SECONDS change the shape. Clients use the DropOldest policy
// with a 4096-event mailbox, so falling behind shows up as drops rather
// than disconnects.
func TestLoadFanout100Clients(t *testing.T) {
	if os.Getenv("EVENTBUS_LOAD") == "" {
		t.Skip("set EVENTBUS_LOAD=1 to run the load test")
	}
	clients := envInt(t, "EVENTBUS_LOAD_CLIENTS", 100)
	rate := envInt(t, "EVENTBUS_LOAD_RATE", 10000)
	dur := time.Duration(envInt(t, "EVENTBUS_LOAD_SECONDS", 10)) * time.Second

	bus, err := eventbus.New(eventbus.WithLogger(nil))
	require.NoError(t, err)
	h, err := wsbridge.New(bus, wsbridge.WithOverflow(eventbus.DropOldest), wsbridge.WithBuffer(4096), wsbridge.WithLogger(nil))
	require.NoError(t, err)
	var handlers sync.WaitGroup
	srv := httptest.NewServer(countCalls(&handlers, h))
	defer func() {
		srv.Close()
		_ = bus.Close()
		handlers.Wait()
	}()

	// Clients.
	type client struct {
		conn      *websocket.Conn
		received  atomic.Uint64
		dropped   atomic.Uint64
		latencies []time.Duration // every 8th event
	}
	cs := make([]*client, clients)
	var readers sync.WaitGroup
	url := "ws" + strings.TrimPrefix(srv.URL, "http") + "/?pattern=load.*"
	for i := range cs {
		conn, _, err := websocket.Dial(t.Context(), url, nil)
		require.NoError(t, err)
		c := &client{conn: conn, latencies: make([]time.Duration, 0, rate*int(dur/time.Second)/8+1024)}
		cs[i] = c
		readers.Go(func() {
			eventPrefix := []byte(`{"type":"event"`)
			tKey := []byte(`"payload":{"t":`)
			var buf bytes.Buffer // reused: the client should cost little next to the server
			for n := 0; ; {
				_, r, err := conn.Reader(context.Background())
				if err != nil {
					return
				}
				buf.Reset()
				if _, err := buf.ReadFrom(r); err != nil {
					return
				}
				data := buf.Bytes()
				switch {
				case bytes.HasPrefix(data, eventPrefix):
					c.received.Add(1)
					if n++; n%8 == 0 {
						if i := bytes.Index(data, tKey); i >= 0 {
							rest := data[i+len(tKey):]
							if j := bytes.IndexByte(rest, '}'); j > 0 {
								if ns, err := strconv.ParseInt(string(rest[:j]), 10, 64); err == nil {
									c.latencies = append(c.latencies, time.Duration(time.Now().UnixNano()-ns))
								}
							}
						}
					}
				default:
					var m wsbridge.Message
					if json.Unmarshal(data, &m) == nil && m.Type == wsbridge.TypeDropped {
						c.dropped.Add(m.Count)
					}
				}
			}
		})
	}
	defer func() {
		for _, c := range cs {
			_ = c.conn.CloseNow()
		}
		readers.Wait()
	}()

	// Publisher, paced to rate.
	var msBefore runtime.MemStats
	runtime.ReadMemStats(&msBefore)
	cpuStart := cpuTime()
	start := time.Now()
	tick := time.NewTicker(time.Millisecond)
	published := 0
	topics := []string{"load.worker.progress", "load.chat.message", "load.file.changed", "load.system.heartbeat"}
	for now := start; now.Sub(start) < dur; now = <-tick.C {
		due := int(float64(rate) * now.Sub(start).Seconds())
		// Stop at the deadline even when the bus holds the publisher back.
		for ; published < due && time.Since(start) < dur; published++ {
			e := eventbus.Event{
				Type:    eventbus.WorkerProgress,
				Topic:   topics[published%len(topics)],
				Source:  "load",
				Payload: json.RawMessage(`{"t":` + strconv.FormatInt(time.Now().UnixNano(), 10) + `}`),
			}
			require.NoError(t, bus.PublishAsync(t.Context(), e))
		}
	}
	tick.Stop()
	pubElapsed := time.Since(start)
	require.NoError(t, bus.Flush(t.Context()))

	// Drain: wait until every client has received or been told about every event.
	want := uint64(published)
	drainStart := time.Now()
	for time.Since(drainStart) < 10*time.Second {
		done := true
		for _, c := range cs {
			if c.received.Load()+c.dropped.Load() < want {
				done = false
				break
			}
		}
		if done {
			break
		}
		time.Sleep(10 * time.Millisecond) // polling clients that run on their own
	}
	drain := time.Since(drainStart)
	cpu := cpuTime() - cpuStart
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)

	var received, dropped uint64
	var lat []time.Duration
	for _, c := range cs {
		received += c.received.Load()
		dropped += c.dropped.Load()
		lat = append(lat, c.latencies...)
	}
	slices.Sort(lat)
	pct := func(p float64) time.Duration {
		if len(lat) == 0 {
			return 0
		}
		return lat[min(len(lat)-1, int(p*float64(len(lat))))]
	}
	total := want * uint64(clients)
	st := bus.Stats()
	t.Logf("clients=%d rate=%d/s duration=%v GOMAXPROCS=%d %s", clients, rate, dur, runtime.GOMAXPROCS(0), runtime.Version())
	t.Logf("published %d of %d events in %v (%.0f events/s); frames to deliver %d", published, rate*int(dur/time.Second),
		pubElapsed.Round(time.Millisecond), float64(published)/pubElapsed.Seconds(), total)
	t.Logf("received %d (%.2f%%), dropped %d (%.2f%%), unaccounted %d; drain after publishing stopped %v",
		received, 100*float64(received)/float64(total), dropped, 100*float64(dropped)/float64(total),
		int64(total)-int64(received)-int64(dropped), drain.Round(time.Millisecond))
	t.Logf("delivered %.0f frames/s to clients", float64(received)/(pubElapsed+drain).Seconds())
	t.Logf("latency (creation → client read, %d samples): p50 %v  p95 %v  p99 %v  max %v",
		len(lat), pct(0.50), pct(0.95), pct(0.99), pct(1))
	t.Logf("bus: published %d delivered %d dropped %d; process CPU %v (%.2f cores); heap in use %.1f MiB",
		st.Published, st.Delivered, st.Dropped, cpu.Round(time.Millisecond), cpu.Seconds()/(pubElapsed+drain).Seconds(),
		float64(ms.HeapInuse)/(1<<20))
	fmt.Fprintln(os.Stderr) // keep -v output readable
}

func envInt(t *testing.T, key string, def int) int {
	t.Helper()
	v := os.Getenv(key)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	require.NoError(t, err, key)
	return n
}
