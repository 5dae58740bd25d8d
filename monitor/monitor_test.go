package monitor_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/choiros/eventbus"
	"github.com/choiros/eventbus/monitor"
)

func newBus(t *testing.T, opts ...eventbus.Option) *eventbus.Bus {
	t.Helper()
	b, err := eventbus.New(append([]eventbus.Option{eventbus.WithLogger(slog.New(slog.DiscardHandler))}, opts...)...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = b.Close() })
	return b
}

func TestRoutes(t *testing.T) {
	bus := newBus(t)
	srv := httptest.NewServer(http.StripPrefix("/monitor", monitor.Handler(bus)))
	defer srv.Close()
	tests := []struct {
		name, method, path string
		status             int
		ctype, contains    string
	}{
		{"page", "GET", "/monitor/", 200, "text/html", `<script src="monitor.js">`},
		{"script", "GET", "/monitor/monitor.js", 200, "javascript", "new WebSocket"},
		{"style", "GET", "/monitor/monitor.css", 200, "text/css", "tr.slow"},
		{"snapshot", "GET", "/monitor/snapshot", 200, "application/json", `"subscriptions"`},
		{"unknown", "GET", "/monitor/nope", 404, "text/plain", ""},
		{"post", "POST", "/monitor/snapshot", 405, "text/plain", ""},
		{"ws without upgrade", "GET", "/monitor/ws", 426, "text/plain", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequestWithContext(t.Context(), tt.method, srv.URL+tt.path, nil)
			require.NoError(t, err)
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			assert.Equal(t, tt.status, resp.StatusCode)
			assert.Contains(t, resp.Header.Get("Content-Type"), tt.ctype)
			assert.Contains(t, resp.Header.Get("Content-Security-Policy"), "default-src 'self'")
			assert.Contains(t, string(body), tt.contains)
			assert.NotContains(t, string(body), "https://", "nothing from elsewhere")
		})
	}
}

func TestOptions(t *testing.T) {
	bus := newBus(t)
	tests := []struct {
		name string
		bus  *eventbus.Bus
		opt  monitor.Option
		ok   bool
	}{
		{"defaults", bus, nil, true},
		{"interval", bus, monitor.WithInterval(50 * time.Millisecond), true},
		{"interval too short", bus, monitor.WithInterval(time.Millisecond), false},
		{"slow latency zero", bus, monitor.WithSlowLatency(0), false},
		{"nil bus", nil, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := monitor.New(tt.bus, tt.opt)
			if tt.ok {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, monitor.ErrInvalidOption)
			rec := httptest.NewRecorder()
			monitor.Handler(tt.bus, tt.opt).ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
			assert.Equal(t, http.StatusInternalServerError, rec.Code)
		})
	}
}

func snapshot(t *testing.T, h http.Handler) monitor.Snapshot {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/snapshot", nil))
	require.Equal(t, http.StatusOK, rec.Code)
	var s monitor.Snapshot
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &s))
	return s
}

func find(s monitor.Snapshot, name string) monitor.Subscription {
	for _, l := range s.Subscriptions {
		if l.Name == name {
			return l
		}
	}
	return monitor.Subscription{}
}

// TestSnapshot runs in a bubble: the stall, the rates and the latencies
// follow fake time.
func TestSnapshot(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		bus := newBus(t, eventbus.WithStallTimeout(5*time.Second))
		h := monitor.Handler(bus, monitor.WithInterval(time.Second))
		ctx := t.Context()
		fast, err := bus.Subscribe(ctx, "work.*", eventbus.WithName("fast"), eventbus.WithBuffer(100))
		require.NoError(t, err)
		_, err = bus.Subscribe(ctx, "work.*", eventbus.WithName("full"), eventbus.WithBuffer(8), eventbus.WithOverflow(eventbus.DropNewest))
		require.NoError(t, err)
		release := make(chan struct{})
		var once sync.Once
		t.Cleanup(func() { once.Do(func() { close(release) }) }) // before the bus closes
		_, err = bus.Handle(ctx, "work.stuck", func(context.Context, eventbus.Event) error { <-release; return nil }, eventbus.WithName("stuck"))
		require.NoError(t, err)

		first := snapshot(t, h)
		assert.Equal(t, 3, first.Bus.Subscriptions)
		assert.Zero(t, first.Interval)
		for range 10 {
			require.NoError(t, bus.Publish(ctx, eventbus.Event{Type: "job", Topic: "work.item"}))
			<-fast.C()
		}
		require.NoError(t, bus.Publish(ctx, eventbus.Event{Type: "job", Topic: "work.stuck"}))
		<-fast.C()
		time.Sleep(10 * time.Second)
		synctest.Wait()
		s := snapshot(t, h)
		assert.InDelta(t, 10.0, s.Interval, 0.01) // plus one pacing budget for the full mailbox
		assert.Equal(t, uint64(11), s.Bus.Published)
		assert.InDelta(t, 1.1, s.Bus.PublishedRate, 0.01)

		tests := []struct {
			name           string
			slow, stalled  bool
			why            string
			delivered, buf int
		}{
			{"stuck", false, true, "handler stalled", 1, eventbus.DefaultBufferSize},
			{"full", true, false, "dropping events", 8, 8},
			{"fast", false, false, "", 11, 100},
		}
		require.Len(t, s.Subscriptions, len(tests))
		for i, tt := range tests { // no t.Run inside a bubble
			l := s.Subscriptions[i] // stalled first, then slow, then the rest
			assert.Equal(t, tt.name, l.Name)
			assert.Equal(t, tt.slow, l.Slow, tt.name)
			assert.Equal(t, tt.stalled, l.Stalled, tt.name)
			assert.Contains(t, l.Why, tt.why, tt.name)
			assert.Equal(t, uint64(tt.delivered), l.Delivered, tt.name)
			assert.Equal(t, tt.buf, l.Buffer, tt.name)
			assert.True(t, strings.HasPrefix(l.Site, "monitor_test.go:"), l.Site)
		}
		assert.GreaterOrEqual(t, find(s, "stuck").StalledFor, 5.0)
		assert.Equal(t, 1, s.Bus.Stalled)
		assert.Equal(t, 1, s.Bus.Slow)
		assert.InDelta(t, 1.1, find(s, "fast").DeliveredRate, 0.01)
		once.Do(func() { close(release) })
		synctest.Wait()
	})
}

func TestFeed(t *testing.T) {
	bus, err := eventbus.New(eventbus.WithLogger(slog.New(slog.DiscardHandler)))
	require.NoError(t, err)
	srv := httptest.NewServer(monitor.Handler(bus, monitor.WithInterval(20*time.Millisecond)))
	defer srv.Close()
	_, err = bus.Subscribe(t.Context(), "a.*", eventbus.WithName("watcher"))
	require.NoError(t, err)

	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http")+"/ws", nil)
	require.NoError(t, err)
	defer ws.CloseNow()
	for range 2 {
		typ, data, err := ws.Read(ctx)
		require.NoError(t, err)
		assert.Equal(t, websocket.MessageText, typ)
		var s monitor.Snapshot
		require.NoError(t, json.Unmarshal(data, &s))
		assert.Equal(t, "watcher", find(s, "watcher").Name)
	}
	t.Run("other origins refused", func(t *testing.T) {
		_, resp, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http")+"/ws",
			&websocket.DialOptions{HTTPHeader: http.Header{"Origin": {"https://evil.example"}}})
		require.Error(t, err)
		assert.Equal(t, http.StatusForbidden, resp.StatusCode)
	})
	// The feed ends when the bus shuts down.
	require.NoError(t, bus.Close())
	for {
		_, _, err := ws.Read(ctx)
		if err != nil {
			assert.Equal(t, websocket.StatusGoingAway, websocket.CloseStatus(err))
			break
		}
	}
}
