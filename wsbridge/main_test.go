package wsbridge_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/choiros/eventbus"
	"github.com/choiros/eventbus/wsbridge"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// harness is a bus behind a wsbridge handler on an httptest server. It
// reports each ServeHTTP return on ended, and can end every request's
// context with cancelRequests.
type harness struct {
	t              *testing.T
	bus            *eventbus.Bus
	srv            *httptest.Server
	ended          chan struct{}
	cancelRequests context.CancelFunc
}

func newHarness(t *testing.T, busOpts []eventbus.Option, opts ...wsbridge.Option) *harness {
	t.Helper()
	bus, err := eventbus.New(append([]eventbus.Option{eventbus.WithLogger(nil)}, busOpts...)...)
	require.NoError(t, err)
	opts = append([]wsbridge.Option{wsbridge.WithLogger(nil)}, opts...)
	h, err := wsbridge.New(bus, opts...)
	require.NoError(t, err)
	reqCtx, cancelReqs := context.WithCancel(context.Background())
	hs := &harness{t: t, bus: bus, ended: make(chan struct{}, 1000), cancelRequests: cancelReqs}
	var wg sync.WaitGroup
	hs.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		wg.Add(1)
		defer wg.Done()
		defer func() { hs.ended <- struct{}{} }()
		ctx, cancel := context.WithCancel(r.Context())
		defer cancel()
		stop := context.AfterFunc(reqCtx, cancel)
		defer stop()
		h.ServeHTTP(w, r.WithContext(ctx))
	}))
	t.Cleanup(func() {
		hs.srv.Close()
		require.NoError(t, bus.Close())
		wg.Wait() // every connection's goroutines are gone
		cancelReqs()
	})
	return hs
}

func (hs *harness) url(query string) string {
	return "ws" + strings.TrimPrefix(hs.srv.URL, "http") + "/ws?" + query
}

// waitEnded waits until n more ServeHTTP calls have returned.
func (hs *harness) waitEnded(n int) {
	hs.t.Helper()
	for range n {
		select {
		case <-hs.ended:
		case <-time.After(10 * time.Second):
			hs.t.Fatal("connection handler did not return")
		}
	}
}

// dial connects and reads the ready message.
func (hs *harness) dial(query string, opts ...func(*websocket.DialOptions)) (*websocket.Conn, wsbridge.Message) {
	hs.t.Helper()
	c := hs.dialRaw(query, opts...)
	m := read(hs.t, c)
	require.Equal(hs.t, wsbridge.TypeReady, m.Type, "first message")
	return c, m
}

func (hs *harness) dialRaw(query string, opts ...func(*websocket.DialOptions)) *websocket.Conn {
	hs.t.Helper()
	do := &websocket.DialOptions{}
	for _, o := range opts {
		o(do)
	}
	ctx, cancel := context.WithTimeout(hs.t.Context(), 5*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, hs.url(query), do)
	require.NoError(hs.t, err)
	c.SetReadLimit(4 << 20)
	hs.t.Cleanup(func() { _ = c.CloseNow() })
	return c
}

// dialStatus attempts a connection that should be refused and returns the
// HTTP status.
func (hs *harness) dialStatus(query string, header http.Header) int {
	hs.t.Helper()
	ctx, cancel := context.WithTimeout(hs.t.Context(), 5*time.Second)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, hs.url(query), &websocket.DialOptions{HTTPHeader: header})
	if err == nil {
		_ = c.CloseNow()
		hs.t.Fatalf("dial %q succeeded, want a refusal", query)
	}
	require.NotNil(hs.t, resp, "dial error: %v", err)
	return resp.StatusCode
}

func (hs *harness) publish(topic string, payload any) eventbus.Event {
	hs.t.Helper()
	e, err := hs.bus.Publisher("test").Emit(hs.t.Context(), eventbus.WorkerProgress, topic, payload)
	require.NoError(hs.t, err)
	return e
}

func read(t *testing.T, c *websocket.Conn) wsbridge.Message {
	t.Helper()
	m, err := tryRead(t, c, 5*time.Second)
	require.NoError(t, err)
	return m
}

func tryRead(t *testing.T, c *websocket.Conn, d time.Duration) (wsbridge.Message, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), d)
	defer cancel()
	typ, data, err := c.Read(ctx)
	if err != nil {
		return wsbridge.Message{}, err
	}
	require.Equal(t, websocket.MessageText, typ)
	var m wsbridge.Message
	require.NoError(t, json.Unmarshal(data, &m), "frame %s", data)
	return m, nil
}

func readEvent(t *testing.T, c *websocket.Conn) eventbus.Event {
	t.Helper()
	m := read(t, c)
	require.Equal(t, wsbridge.TypeEvent, m.Type, "message %+v", m)
	require.NotNil(t, m.Event)
	return *m.Event
}

func send(t *testing.T, c *websocket.Conn, v any) {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	sendRaw(t, c, websocket.MessageText, b)
}

func sendRaw(t *testing.T, c *websocket.Conn, typ websocket.MessageType, b []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	require.NoError(t, c.Write(ctx, typ, b))
}

// readClose reads until the connection ends and returns its close error.
func readClose(t *testing.T, c *websocket.Conn) websocket.CloseError {
	t.Helper()
	for {
		_, err := tryRead(t, c, 10*time.Second)
		if err == nil {
			continue
		}
		var ce websocket.CloseError
		require.True(t, errors.As(err, &ce), "read ended with %v, want a close frame", err)
		return ce
	}
}

// publicTopics are the topics and patterns everyone but "admin" may publish
// on and subscribe within; "secret" and everything under it are not among
// them.
var publicTopics = []string{"a", "a.*", "b.*", "c.x", "ok", "z", "user.*"}

// withinPublic is the tests' Authorizer: "admin" may do anything, everyone
// else only within publicTopics, decided on what a pattern can match
// (eventbus.PatternWithin), not on its text.
var withinPublic = eventbus.AuthorizeWithin(func(principal string, _ eventbus.Action) []string {
	if principal == "admin" {
		return []string{"*"}
	}
	return publicTopics
})

// authByHeader is a WithAuth function reading the principal from X-User.
func authByHeader(r *http.Request) (string, error) {
	u := r.Header.Get("X-User")
	if u == "" {
		return "", errors.New("no user")
	}
	return u, nil
}

func withHeader(k, v string) func(*websocket.DialOptions) {
	return func(o *websocket.DialOptions) {
		if o.HTTPHeader == nil {
			o.HTTPHeader = http.Header{}
		}
		o.HTTPHeader.Set(k, v)
	}
}
