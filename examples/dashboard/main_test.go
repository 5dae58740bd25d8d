package main

import (
	"context"
	"encoding/json"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/choiros/eventbus"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func testConfig() config {
	cfg := defaultConfig()
	cfg.addr = "127.0.0.1:0"
	cfg.demo = false
	cfg.logger = slog.New(slog.DiscardHandler)
	return cfg
}

// startApp runs the dashboard until the test ends and returns it once it
// listens. The cleanup checks that run returned nil.
func startApp(t *testing.T, cfg config) *app {
	t.Helper()
	a, _ := startStoppableApp(t, cfg)
	return a
}

// startStoppableApp is startApp with a function that stops the dashboard
// and waits until run has returned nil; the test's cleanup does the same if
// it was not called.
func startStoppableApp(t *testing.T, cfg config) (*app, func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan *app, 1)
	cfg.ready = func(a *app) { ready <- a }
	done := make(chan error, 1)
	go func() { done <- run(ctx, cfg) }()
	var a *app
	select {
	case a = <-ready:
	case err := <-done:
		cancel()
		t.Fatalf("run: %v", err)
	}
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				assert.NoError(t, err, "run")
			case <-time.After(20 * time.Second):
				t.Error("run did not return after its context ended")
			}
		})
	}
	t.Cleanup(stop)
	return a, stop
}

func emit(t *testing.T, a *app, topic string) eventbus.Event {
	t.Helper()
	e, err := a.bus.Publisher("test").Emit(t.Context(), eventbus.WorkerProgress, topic, map[string]string{"topic": topic})
	require.NoError(t, err)
	return e
}

func get(t *testing.T, url string) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, resp.Header, body
}

func TestEventsAPI(t *testing.T) {
	a := startApp(t, testConfig())
	var all []eventbus.Event
	for _, topic := range []string{"worker.a.progress", "chat.general.message", "worker.b.progress", "worker.a.complete"} {
		all = append(all, emit(t, a, topic))
	}
	tests := []struct {
		name       string
		query      string
		wantStatus int
		wantSeqs   []uint64
	}{
		{"everything", "", http.StatusOK, []uint64{all[0].Seq, all[1].Seq, all[2].Seq, all[3].Seq}},
		{"pattern", "?pattern=worker.*", http.StatusOK, []uint64{all[0].Seq, all[2].Seq, all[3].Seq}},
		{"newest two, oldest first", "?pattern=worker.*&limit=2", http.StatusOK, []uint64{all[2].Seq, all[3].Seq}},
		{"no match", "?pattern=file.*", http.StatusOK, []uint64{}},
		{"invalid pattern", "?pattern=a..b", http.StatusBadRequest, nil},
		{"limit zero", "?limit=0", http.StatusBadRequest, nil},
		{"limit too big", "?limit=100000", http.StatusBadRequest, nil},
		{"limit not a number", "?limit=x", http.StatusBadRequest, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, hdr, body := get(t, "http://"+a.addr+"/api/events"+tt.query)
			require.Equal(t, tt.wantStatus, status, "%s", body)
			if tt.wantSeqs == nil {
				return
			}
			assert.Equal(t, "application/json", hdr.Get("Content-Type"))
			var got struct {
				Events  []eventbus.Event
				Epoch   string
				LastSeq uint64 `json:"last_seq"`
			}
			require.NoError(t, json.Unmarshal(body, &got))
			assert.Equal(t, a.bus.Epoch(), got.Epoch)
			assert.Equal(t, all[3].Seq, got.LastSeq)
			seqs := []uint64{}
			for _, e := range got.Events {
				seqs = append(seqs, e.Seq)
			}
			assert.Equal(t, tt.wantSeqs, seqs)
		})
	}
}

func TestInfoAPI(t *testing.T) {
	a := startApp(t, testConfig())
	status, _, body := get(t, "http://"+a.addr+"/api/info")
	require.Equal(t, http.StatusOK, status)
	assert.JSONEq(t, `{"store":"memory (newest 10,000 events)","demo":false}`, string(body))
}

// TestPageIsSelfContained checks that the page loads nothing from elsewhere:
// no absolute URLs in the embedded files, and a Content-Security-Policy that
// would block them anyway.
func TestPageIsSelfContained(t *testing.T) {
	a := startApp(t, testConfig())
	status, hdr, body := get(t, "http://"+a.addr+"/")
	require.Equal(t, http.StatusOK, status)
	assert.Contains(t, string(body), `<script src="app.js"></script>`)
	assert.Contains(t, hdr.Get("Content-Security-Policy"), "default-src 'self'")

	external := regexp.MustCompile(`(?i)(https?:)?//[a-z0-9.-]+\.[a-z]{2,}|@import|fonts\.googleapis`)
	err := fs.WalkDir(staticFiles, "static", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := staticFiles.ReadFile(path)
		require.NoError(t, err)
		assert.Empty(t, external.FindAllString(string(b), -1), "%s refers to another site", path)
		status, _, _ := get(t, "http://"+a.addr+"/"+filepath.Base(path))
		assert.Equal(t, http.StatusOK, status, path)
		return nil
	})
	require.NoError(t, err)
}

func TestShutdownClosesConnections(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cfg := testConfig()
	cfg.demo = true
	cfg.speed = 20
	ready := make(chan *app, 1)
	cfg.ready = func(a *app) { ready <- a }
	done := make(chan error, 1)
	go func() { done <- run(ctx, cfg) }()
	a := <-ready

	c, _, err := websocket.Dial(t.Context(), "ws://"+a.addr+"/ws?pattern=*", nil)
	require.NoError(t, err)
	defer c.CloseNow()
	_, _, err = c.Read(t.Context()) // ready
	require.NoError(t, err)
	_, msg, err := c.Read(t.Context()) // the demo is running
	require.NoError(t, err)
	assert.Contains(t, string(msg), `"type":"event"`)

	cancel()
	// Keep reading so that the client answers the server's close frame.
	for {
		if _, _, err = c.Read(t.Context()); err != nil {
			break
		}
	}
	assert.Equal(t, websocket.StatusGoingAway, websocket.CloseStatus(err), "%v", err)
	require.NoError(t, <-done)
}

func TestSQLiteHistory(t *testing.T) {
	cfg := testConfig()
	cfg.db = filepath.Join(t.TempDir(), "events.db")

	first, cancel := context.WithCancel(context.Background())
	ready := make(chan *app, 1)
	cfg.ready = func(a *app) { ready <- a }
	done := make(chan error, 1)
	go func() { done <- run(first, cfg) }()
	a := <-ready
	e := emit(t, a, "worker.kept.complete")
	cancel()
	require.NoError(t, <-done)

	a = startApp(t, cfg) // reopens the file
	status, _, body := get(t, "http://"+a.addr+"/api/events?pattern=worker.*")
	require.Equal(t, http.StatusOK, status)
	var got struct{ Events []eventbus.Event }
	require.NoError(t, json.Unmarshal(body, &got))
	require.Len(t, got.Events, 1)
	assert.Equal(t, e.ID, got.Events[0].ID)
	assert.Equal(t, e.Seq, got.Events[0].Seq)
	next := emit(t, a, "worker.next.complete")
	assert.Greater(t, next.Seq, e.Seq, "Seq continues after the stored events")
}

// TestHostCheck: only requests for this server's own names are answered,
// so a page on another site rebound to 127.0.0.1 gets nothing: no page, no
// history, no WebSocket.
func TestHostCheck(t *testing.T) {
	cfg := testConfig()
	cfg.allowHosts = []string{"dash.example", "other.example:9000"}
	a := startApp(t, cfg)
	emit(t, a, "worker.secret.progress")
	_, port, err := net.SplitHostPort(a.addr)
	require.NoError(t, err)

	tests := []struct {
		host string
		want int
	}{
		{a.addr, http.StatusOK},
		{"localhost:" + port, http.StatusOK},
		{"LocalHost:" + port, http.StatusOK},
		{"[::1]:" + port, http.StatusOK},
		{"dash.example", http.StatusOK},
		{"dash.example:" + port, http.StatusOK},
		{"other.example:9000", http.StatusOK},
		{"evil.example", http.StatusMisdirectedRequest},
		{"evil.example:" + port, http.StatusMisdirectedRequest},
		{"localhost:1", http.StatusMisdirectedRequest},
		{"localhost", http.StatusMisdirectedRequest},
		{"127.0.0.1", http.StatusMisdirectedRequest},
		{"other.example:9001", http.StatusMisdirectedRequest},
		{"dash.example.evil.example", http.StatusMisdirectedRequest},
	}
	for _, tt := range tests {
		for _, path := range []string{"/", "/app.js", "/api/events?pattern=*", "/api/info", "/ws"} {
			t.Run(tt.host+path, func(t *testing.T) {
				req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, "http://"+a.addr+path, nil)
				require.NoError(t, err)
				req.Host = tt.host
				if path == "/ws" {
					req.Header.Set("Connection", "Upgrade")
					req.Header.Set("Upgrade", "websocket")
					req.Header.Set("Sec-WebSocket-Version", "13")
					req.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
				}
				resp, err := http.DefaultClient.Do(req)
				require.NoError(t, err)
				defer resp.Body.Close()
				want := tt.want
				if path == "/ws" && want == http.StatusOK {
					// The body is the WebSocket connection: close it unread.
					require.Equal(t, http.StatusSwitchingProtocols, resp.StatusCode)
					return
				}
				body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
				require.Equal(t, want, resp.StatusCode, "%s", body)
				if want == http.StatusMisdirectedRequest {
					assert.Contains(t, string(body), "is not served here")
					assert.Contains(t, string(body), "-allow-host")
					assert.NotContains(t, string(body), "worker.secret")
				}
			})
		}
	}
}

func TestParseAllowHosts(t *testing.T) {
	tests := []struct {
		in      string
		want    []string
		wantErr bool
	}{
		{in: "dash.example", want: []string{"dash.example"}},
		{in: "a.example, b.example:8080", want: []string{"a.example", "b.example:8080"}},
		{in: "", wantErr: true},
		{in: "a,,b", wantErr: true},
		{in: "http://a.example", wantErr: true},
		{in: "a example", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := parseAllowHosts(tt.in)
			if tt.wantErr {
				require.Error(t, err)
				assert.True(t, strings.HasPrefix(err.Error(), "-allow-host "), err.Error())
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}
