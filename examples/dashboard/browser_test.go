package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/choiros/eventbus"
)

// The browser tests drive a real headless Chromium with chromedp. They look
// for EVENTBUS_CHROMIUM, /usr/bin/chromium (Debian: apt-get install -y
// chromium) and a few other usual names, and skip only when none exists.

func chromiumPath() string {
	if p := os.Getenv("EVENTBUS_CHROMIUM"); p != "" {
		return p
	}
	for _, p := range []string{"/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// browser is a headless Chromium tab for one test, with the page's console
// collected.
type browser struct {
	t   *testing.T
	ctx context.Context

	mu      sync.Mutex
	console []chromedp.ConsoleMessage
}

func newBrowser(t *testing.T) *browser {
	t.Helper()
	path := chromiumPath()
	if path == "" {
		t.Skip("no Chromium binary found: install Debian's chromium (apt-get install -y chromium) or set EVENTBUS_CHROMIUM")
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-background-timer-throttling", true),
		chromedp.Flag("disable-renderer-backgrounding", true),
		chromedp.Flag("force-color-profile", "srgb"),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1440, 900),
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx)
	b := &browser{t: t, ctx: ctx}
	// Start the browser with no timeout (a timeout on the first call would
	// bound the browser's life), then collect the console until the end.
	require.NoError(t, chromedp.Do(ctx), "starting %s", path)
	consoleCtx, stopConsole := context.WithCancel(ctx)
	messages := chromedp.Console(consoleCtx)
	var wg sync.WaitGroup
	wg.Go(func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			b.mu.Lock()
			b.console = append(b.console, m)
			b.mu.Unlock()
		}
	})
	t.Cleanup(func() {
		stopConsole()
		wg.Wait()
		cancel()
		cancelAlloc()
	})
	return b
}

// do runs actions, bounded by d.
func (b *browser) do(d time.Duration, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, d)
	defer cancel()
	require.NoError(b.t, chromedp.Do(ctx, actions...))
}

// eval returns the value of a JavaScript expression.
func eval[T any](b *browser, expr string) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	require.NoError(b.t, err, "evaluating %s", expr)
	return v
}

// waitFor polls a JavaScript condition in the page until it holds.
func (b *browser) waitFor(what, cond string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	_, err := chromedp.Run(ctx, chromedp.Poll[bool](cond, chromedp.WithPollingInterval(25*time.Millisecond)))
	require.NoError(b.t, err, "waiting for %s (%s); page state: %s", what, cond, eval[string](b, dashState))
}

func (b *browser) exceptions() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for _, m := range b.console {
		if m.IsException() || strings.Contains(m.Text, "Content Security Policy") {
			out = append(out, m.String())
		}
	}
	return out
}

// screenshot saves a PNG of the viewport in the test's temp dir and, when
// the environment variable env names a path, there too.
func (b *browser) screenshot(env string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	require.NoError(b.t, err)
	path := filepath.Join(b.t.TempDir(), "dashboard.png")
	require.NoError(b.t, os.WriteFile(path, png, 0o644))
	b.t.Logf("screenshot: %s (%d bytes)", path, len(png))
	if p := os.Getenv(env); p != "" {
		require.NoError(b.t, os.WriteFile(p, png, 0o644))
		b.t.Logf("screenshot: %s", p)
	}
}

// dashState summarises window.__dash for failure messages.
const dashState = `JSON.stringify(window.__dash ? {status: __dash.status, filter: __dash.filter, pending: __dash.pending,
	cursor: __dash.cursor, seqs: __dash.seqs.slice(-30), gaps: __dash.gaps, reconnects: __dash.reconnects,
	closeReason: __dash.closeReason, lastError: __dash.lastError, epoch: __dash.epoch, resets: __dash.resets} : null)`

const rowTopics = `Array.from(document.querySelectorAll('#events tbody tr')).map(tr => tr.dataset.topic)`

func seqsOf(events []eventbus.Event) []int64 {
	out := make([]int64, len(events))
	for i, e := range events {
		out[i] = int64(e.Seq)
	}
	return out
}

func TestBrowser(t *testing.T) {
	b := newBrowser(t)
	cfg := testConfig()
	a, stop := startStoppableApp(t, cfg)
	parent := t

	// History published before the page loads.
	var hist []eventbus.Event
	for i := range 3 {
		hist = append(hist, emit(t, a, fmt.Sprintf("test.hist.e%d", i)))
	}

	b.do(20*time.Second, chromedp.EmulateViewport(1440, 900), chromedp.Navigate("http://"+a.addr+"/"))
	b.waitFor("the stream to be live", `window.__dash && __dash.status === 'live'`)
	assert.Equal(t, []string{"test.hist.e2", "test.hist.e1", "test.hist.e0"}, eval[[]string](b, rowTopics), "history, newest first")
	assert.Equal(t, int64(hist[2].Seq), eval[int64](b, `__dash.cursor`))

	t.Run("live events arrive", func(t *testing.T) {
		var live []eventbus.Event
		for i := range 6 {
			live = append(live, emit(t, a, []string{"test.a.x", "test.b.y"}[i%2]))
		}
		b.waitFor("the live events", fmt.Sprintf(`__dash.seqs.includes(%d)`, live[5].Seq))
		assert.Equal(t, seqsOf(live), eval[[]int64](b, `__dash.seqs`))
		assert.Equal(t, 9, eval[int](b, `document.querySelectorAll('#events tbody tr').length`))
		assert.Equal(t, "worker_progress", eval[string](b, `document.querySelector('#events tbody tr .badge').textContent`))
	})

	t.Run("the filter changes the subscription", func(t *testing.T) {
		b.do(10*time.Second, chromedp.SetValue(chromedp.ID("filter"), "test.a.*"), chromedp.Click(chromedp.ID("apply")))
		b.waitFor("the new filter", `__dash.filter === 'test.a.*' && !__dash.pending && !__dash.historyLoading`)
		for _, topic := range eval[[]string](b, rowTopics) {
			assert.True(t, strings.HasPrefix(topic, "test.a."), "row %s after the filter change", topic)
		}
		n := eval[int](b, `__dash.seqs.length`)
		var want []eventbus.Event
		for range 4 {
			want = append(want, emit(t, a, "test.a.x"))
			emit(t, a, "test.b.y")
		}
		marker := emit(t, a, "test.a.marker")
		want = append(want, marker)
		b.waitFor("the matching events", fmt.Sprintf(`__dash.seqs.includes(%d)`, marker.Seq))
		assert.Equal(t, seqsOf(want), eval[[]int64](b, fmt.Sprintf(`__dash.seqs.slice(%d)`, n)), "only matching events, in order")
		for _, topic := range eval[[]string](b, rowTopics) {
			assert.True(t, strings.HasPrefix(topic, "test.a."), "row %s", topic)
		}
		assert.Equal(t, []string{"worker_progress"}, eval[[]string](b, `Array.from(__dash.counts.keys())`))
	})

	t.Run("a lost connection resumes without a gap", func(t *testing.T) {
		n := eval[int](b, `__dash.seqs.length`)
		a.setOffline(true) // closes the page's socket and refuses new ones
		b.waitFor("the page to notice", `__dash.status !== 'live'`)
		var missed []eventbus.Event
		for range 10 {
			missed = append(missed, emit(t, a, "test.a.offline"))
		}
		a.setOffline(false)
		b.waitFor("the reconnect", fmt.Sprintf(`__dash.status === 'live' && __dash.seqs.includes(%d)`, missed[9].Seq))
		after := emit(t, a, "test.a.after")
		b.waitFor("a live event after the reconnect", fmt.Sprintf(`__dash.seqs.includes(%d)`, after.Seq))

		got := eval[[]int64](b, fmt.Sprintf(`__dash.seqs.slice(%d)`, n))
		assert.Equal(t, append(seqsOf(missed), int64(after.Seq)), got, "every event once, in order")
		for i := 1; i < len(got); i++ {
			assert.Equal(t, got[i-1]+1, got[i], "Seqs are contiguous")
		}
		assert.GreaterOrEqual(t, eval[int](b, `__dash.reconnects`), 1)
		assert.Zero(t, eval[int](b, `__dash.gaps`))
		assert.Contains(t, eval[string](b, `__dash.closeReason`), "1001")
	})

	t.Run("the page shows a gap it could not fill", func(t *testing.T) {
		b.do(10*time.Second, chromedp.SetValue(chromedp.ID("filter"), "*"), chromedp.Click(chromedp.ID("apply")))
		b.waitFor("the filter *", `__dash.filter === '*' && !__dash.pending && !__dash.historyLoading`)
		a.setOffline(true)
		b.waitFor("the page to notice", `__dash.status !== 'live'`)
		emit(t, a, "test.c.kept")
		// Not persisted, so the replay after the reconnect cannot have it.
		e, err := eventbus.NewEvent(eventbus.ChatTyping, "test.c.typing", nil, "test")
		require.NoError(t, err)
		require.NoError(t, a.bus.Publish(t.Context(), e, eventbus.WithoutPersist()))
		last := emit(t, a, "test.c.kept")
		a.setOffline(false)
		b.waitFor("the reconnect", fmt.Sprintf(`__dash.status === 'live' && __dash.seqs.includes(%d)`, last.Seq))
		assert.Equal(t, 1, eval[int](b, `__dash.gaps`))
		assert.Equal(t, "1", eval[string](b, `document.getElementById('stat-gaps').textContent`))
		assert.Equal(t, fmt.Sprint(last.Seq), eval[string](b, `document.querySelector('#events tbody tr.gap').dataset.seq`))
	})

	t.Run("pause holds the table", func(t *testing.T) {
		b.do(10*time.Second, chromedp.Click(chromedp.ID("pause")))
		top := eval[string](b, `document.querySelector('#events tbody tr').dataset.seq`)
		e := emit(t, a, "test.d.paused")
		b.waitFor("the held event", fmt.Sprintf(`__dash.seqs.includes(%d)`, e.Seq))
		assert.Equal(t, top, eval[string](b, `document.querySelector('#events tbody tr').dataset.seq`))
		assert.Equal(t, "paused · 1 new", eval[string](b, `document.getElementById('paused-note').textContent`))
		b.do(10*time.Second, chromedp.Click(chromedp.ID("pause")))
		assert.Equal(t, fmt.Sprint(e.Seq), eval[string](b, `document.querySelector('#events tbody tr').dataset.seq`))
	})

	t.Run("an invalid filter is refused", func(t *testing.T) {
		b.do(10*time.Second, chromedp.SetValue(chromedp.ID("filter"), "a..b"), chromedp.Click(chromedp.ID("apply")))
		b.waitFor("the error", `document.getElementById('filter-error').textContent !== ''`)
		assert.Contains(t, eval[string](b, `document.getElementById('filter-error').textContent`), "invalid pattern")
		assert.Equal(t, "*", eval[string](b, `__dash.filter`), "the old filter stays")

		b.do(10*time.Second, chromedp.Click(chromedp.ID("clear")))
		assert.Empty(t, eval[string](b, `document.getElementById('filter-error').textContent`), "Clear clears the error")
		assert.Equal(t, "*", eval[string](b, `document.getElementById('filter').value`))
		assert.False(t, eval[bool](b, `document.getElementById('filter').classList.contains('invalid')`))
		assert.Equal(t, "–", eval[string](b, `document.getElementById('stat-seq').textContent`), "no rows, no last Seq")
	})

	t.Run("numbers have thousands separators and LAST SEQ is the top row", func(t *testing.T) {
		for range 1000 - a.bus.LastSeq() {
			e, err := eventbus.NewEvent(eventbus.WorkerProgress, "test.bulk", nil, "test")
			require.NoError(t, err)
			require.NoError(t, a.bus.PublishAsync(t.Context(), e))
		}
		last := emit(t, a, "test.bulk.last")
		b.waitFor("the bulk", fmt.Sprintf(`__dash.seqs.includes(%d)`, last.Seq))
		want := thousands(last.Seq)
		assert.Regexp(t, `^\d{1,3}(,\d{3})+$`, want)
		b.waitFor("LAST SEQ", fmt.Sprintf(`document.getElementById('stat-seq').textContent === %q`, want))
		assert.Equal(t, want, eval[string](b, `document.querySelector('#events tbody tr .c-seq').textContent`))
	})

	t.Run("a long payload wraps instead of being cut", func(t *testing.T) {
		long := map[string]string{"text": strings.Repeat("lorem ipsum dolor sit amet ", 30)}
		e, err := a.bus.Publisher("test").Emit(t.Context(), eventbus.FindingNew, "test.long", long)
		require.NoError(t, err)
		b.waitFor("the long event", fmt.Sprintf(`__dash.seqs.includes(%d)`, e.Seq))
		row := fmt.Sprintf(`document.querySelector('#events tbody tr[data-seq="%d"] .payload')`, e.Seq)
		assert.JSONEq(t, string(e.Payload), eval[string](b, row+`.textContent`), "the whole payload is in the row")
		assert.True(t, eval[bool](b, row+`.scrollWidth <= `+row+`.clientWidth + 1`), "no text beyond the cell's right edge")
		assert.Greater(t, eval[float64](b, row+`.getBoundingClientRect().height`), 20.0, "it wraps onto several lines")
	})

	t.Run("offline shows no rate", func(t *testing.T) {
		a.setOffline(true)
		b.waitFor("the page to notice", `__dash.status !== 'live'`)
		b.waitFor("the rate to go", `document.getElementById('stat-rate').textContent === '—'`)
		a.setOffline(false)
		b.waitFor("live again", `__dash.status === 'live'`)
		b.waitFor("a rate again", `document.getElementById('stat-rate').textContent !== '—'`)
	})

	t.Run("a server restart on a memory store shows a reset", func(t *testing.T) {
		oldEpoch := a.bus.Epoch()
		require.Equal(t, oldEpoch, eval[string](b, `__dash.epoch`))
		require.Greater(t, eval[int](b, `__dash.cursor`), 1000)
		stop()
		b.waitFor("the page to notice", `__dash.status !== 'live'`)

		cfg.addr = a.addr         // the same address: the page reconnects to the new server
		a = startApp(parent, cfg) // serving until the end of TestBrowser
		// Events published before the page reconnects: it can only know
		// them from the new server's history.
		a.setOffline(true)
		require.NotEqual(t, oldEpoch, a.bus.Epoch())
		first := []eventbus.Event{emit(t, a, "test.new.one"), emit(t, a, "test.new.two")}
		a.setOffline(false)
		b.waitFor("the reset", `__dash.resets === 1 && __dash.status === 'live'`)
		assert.Equal(t, a.bus.Epoch(), eval[string](b, `__dash.epoch`))
		assert.Contains(t, eval[string](b, `document.querySelector('#events tbody tr.notice').textContent`), "numbering reset")

		// The new server's first events come from its history, above the
		// notice; the old rows stay below it.
		b.waitFor("the new history", `document.querySelector('#events tbody tr').dataset.seq === '2'`)
		above := `Array.from(document.querySelectorAll('#events tbody tr')).slice(0, 3).map(tr => tr.className.includes('notice') ? 'notice' : tr.dataset.topic)`
		assert.Equal(t, []string{"test.new.two", "test.new.one", "notice"}, eval[[]string](b, above))
		assert.Equal(t, fmt.Sprint(first[1].Seq), eval[string](b, `document.getElementById('stat-seq').textContent`))

		live := emit(t, a, "test.new.live")
		b.waitFor("a live event after the reset", fmt.Sprintf(`__dash.seqs.includes(%d) && __dash.cursor === %d`, live.Seq, live.Seq))
		assert.Equal(t, "3", eval[string](b, `document.querySelector('#events tbody tr').dataset.seq`))
		b.waitFor("LAST SEQ", `document.getElementById('stat-seq').textContent === '3'`)
	})

	b.screenshot("EVENTBUS_SCREENSHOT")
	assert.Empty(t, b.exceptions(), "uncaught exceptions or CSP violations in the page")
}

// TestDemoScreenshot renders the page with the demo running, for the
// README. It runs only when EVENTBUS_DEMO_SCREENSHOT names the PNG to write:
//
//	EVENTBUS_DEMO_SCREENSHOT=$PWD/docs/dashboard.png go test -run TestDemoScreenshot ./examples/dashboard/
func TestDemoScreenshot(t *testing.T) {
	if os.Getenv("EVENTBUS_DEMO_SCREENSHOT") == "" {
		t.Skip("set EVENTBUS_DEMO_SCREENSHOT=path.png to render the demo")
	}
	b := newBrowser(t)
	cfg := testConfig()
	cfg.demo = true
	a := startApp(t, cfg)
	b.do(20*time.Second, chromedp.EmulateViewport(1440, 900), chromedp.Navigate("http://"+a.addr+"/"))
	b.waitFor("the stream to be live", `window.__dash && __dash.status === 'live'`)
	// Let the chart fill: wait for about a minute of demo events.
	ctx, cancel := context.WithTimeout(b.ctx, 3*time.Minute)
	defer cancel()
	_, err := chromedp.Run(ctx, chromedp.Poll[bool](`__dash.total >= 1000 && __dash.counts.size >= 14`,
		chromedp.WithPollingInterval(200*time.Millisecond), chromedp.WithPollingTimeout(0)))
	require.NoError(t, err)
	b.screenshot("EVENTBUS_DEMO_SCREENSHOT")
	assert.Empty(t, b.exceptions())
}

// thousands formats n as the page does: 12,345.
func thousands(n uint64) string {
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
