package main

import (
	"context"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/choiros/eventbus"
)

// TestSubscribersView opens the Subscribers view from the events page in
// Chromium, with the demo running fast, and checks that the demo's slow
// subscriber is highlighted within seconds while a quick one is not.
func TestSubscribersView(t *testing.T) {
	b := newBrowser(t)
	cfg := testConfig()
	cfg.demo = true
	cfg.speed = 4
	a := startApp(t, cfg)
	quick, err := a.bus.Handle(t.Context(), "worker.*", func(context.Context, eventbus.Event) error { return nil },
		eventbus.WithName("quick-counter"))
	require.NoError(t, err)
	defer quick.Close()

	b.do(20*time.Second, chromedp.EmulateViewport(1440, 900), chromedp.Navigate("http://"+a.addr+"/"))
	view := eval[string](b, `document.getElementById('nav-subscribers').href`)
	assert.Equal(t, "http://"+a.addr+"/monitor/", view)
	b.do(20*time.Second, chromedp.Navigate(view))
	b.waitFor("the slow subscriber to be highlighted",
		`!!document.querySelector('#subs tbody tr.slow[data-name="slow-archiver"]')`)
	assert.Equal(t, "live", eval[string](b, `document.getElementById('status').dataset.state`))
	assert.False(t, eval[bool](b, `document.querySelector('#subs tbody tr[data-name="quick-counter"]').matches('.slow, .stalled')`))
	assert.Contains(t, eval[string](b, `document.querySelector('#subs tbody tr[data-name="slow-archiver"]').textContent`), "demo.go:")
	assert.Equal(t, "rgb(92, 74, 18)", eval[string](b, `getComputedStyle(document.querySelector('tr.slow')).backgroundColor`))
	if os.Getenv("EVENTBUS_MONITOR_SCREENSHOT") != "" {
		// For the README (EVENTBUS_MONITOR_SCREENSHOT=$PWD/docs/monitor.png):
		// wait for rates, then render.
		b.waitFor("rates", `document.getElementById('b-published-rate').textContent !== '0.0' && document.querySelectorAll('#subs tbody tr').length >= 3`)
		b.screenshot("EVENTBUS_MONITOR_SCREENSHOT")
	}
	assert.Empty(t, b.exceptions())
}

func TestMonitorMounted(t *testing.T) {
	a := startApp(t, testConfig())
	tests := []struct {
		path   string
		status int
		ctype  string
	}{
		{"/monitor/", http.StatusOK, "text/html"},
		{"/monitor/snapshot", http.StatusOK, "application/json"},
		{"/monitor/monitor.js", http.StatusOK, "javascript"},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			status, h, _ := get(t, "http://"+a.addr+tt.path)
			assert.Equal(t, tt.status, status)
			assert.Contains(t, h.Get("Content-Type"), tt.ctype)
		})
	}
}
