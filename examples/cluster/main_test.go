package main

import (
	"bytes"
	"context"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/choiros/eventbus/natsbridge"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestRun(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	var out bytes.Buffer
	require.NoError(t, run(ctx, &out, 3))
	text := out.String()

	assert.Regexp(t, `(?m)^nats-server listening at nats://127\.0\.0\.1:\d+$`, text)
	for _, line := range []string{
		"worker.1.spawned", "worker.1.progress", "worker.1.complete",
		"worker.2.spawned", "worker.2.progress", "worker.2.complete",
		"worker.3.spawned", "worker.3.progress", "worker.3.failed",
	} {
		worker := strings.Split(line, ".")[1]
		pattern := fmt.Sprintf(`(?m)^beta monitor <- %s +worker_\w+ +from alpha/worker-%s$`, regexp.QuoteMeta(line), worker)
		assert.Len(t, regexp.MustCompile(pattern).FindAllString(text, -1), 1, "one line for %s", line)
	}
	assert.Contains(t, text, "beta received 9 worker events from alpha: 3 spawned, 3 progress, 2 complete, 1 failed\n")
	assert.Contains(t, text, "alpha exported 9, imported 0; beta imported 9, exported 0 (9 not sent back: loop prevention)\n")
	// alpha hears its own exports back from NATS (echoes) whenever NATS
	// gets them there, which may be after the stats are printed.
	assert.Regexp(t, `(?m)^alpha bridge: export: 9 exported, 0 looped, 0 errors, 0 dropped; `+
		`import: 0 imported, [0-9] echoes, 0 duplicates, 0 filtered, 0 errors, 0 dropped$`, text)
	assert.Contains(t, text, "beta bridge: export: 0 exported, 9 looped, 0 errors, 0 dropped; "+
		"import: 9 imported, 0 echoes, 0 duplicates, 0 filtered, 0 errors, 0 dropped\n")
}

func TestPrintStats(t *testing.T) {
	var buf bytes.Buffer
	printStats(newOutput(&buf), "x", natsbridge.Stats{Exported: 1200, ImportErrors: 3,
		ImportErrorsByKind: map[natsbridge.ImportErrorKind]uint64{natsbridge.ImportNoID: 2, natsbridge.ImportEmpty: 1}})
	assert.Equal(t, "x bridge: export: 1200 exported, 0 looped, 0 errors, 0 dropped; "+
		"import: 0 imported, 0 echoes, 0 duplicates, 0 filtered, 3 errors (empty 1, no_id 2), 0 dropped\n", buf.String())
}

// lineWriter collects output and signals each write.
type lineWriter struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	kick chan struct{}
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	select {
	case w.kick <- struct{}{}:
	default:
	}
	return w.buf.Write(p)
}

func (w *lineWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// waitFor waits until the output contains s.
func (w *lineWriter) waitFor(t *testing.T, s string) {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for !strings.Contains(w.String(), s) {
		select {
		case <-w.kick:
		case <-deadline:
			require.FailNow(t, "timed out", "waiting for %q in:\n%s", s, w.String())
		}
	}
}

// Two nodes as separate "processes" against one server: each prints the
// other's worker events, and both stop cleanly when interrupted.
func TestRunNode(t *testing.T) {
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true})
	require.NoError(t, err)
	srv.Start()
	defer func() {
		srv.Shutdown()
		srv.WaitForShutdown()
	}()
	require.True(t, srv.ReadyForConnections(5*time.Second))

	ctx, cancel := context.WithCancel(t.Context())
	outs := map[string]*lineWriter{"x": {kick: make(chan struct{}, 1)}, "y": {kick: make(chan struct{}, 1)}}
	errs := make(chan error, 2)
	for name, w := range outs {
		go func() { errs <- runNode(ctx, w, name, srv.ClientURL(), 20*time.Millisecond) }()
	}
	outs["x"].waitFor(t, "x <- worker.y-2.spawned")
	outs["y"].waitFor(t, "y <- worker.x-2.complete")
	cancel()
	for range outs {
		require.NoError(t, <-errs)
	}
	assert.NotContains(t, outs["x"].String(), "from x/", "a node does not print its own events as remote")
	assert.Regexp(t, `x: exported \d+, imported \d+\nx bridge: export: \d+ exported, \d+ looped, 0 errors, 0 dropped; `+
		`import: \d+ imported, \d+ echoes, 0 duplicates, 0 filtered, 0 errors, 0 dropped\n$`, outs["x"].String())
}

func TestRunNodeBadName(t *testing.T) {
	require.Error(t, runNode(t.Context(), &bytes.Buffer{}, "a.b", "nats://127.0.0.1:1", time.Second))
}
