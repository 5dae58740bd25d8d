// Package monitor serves a live view of an eventbus.Bus's subscriptions:
// an HTML page, a JSON snapshot and a WebSocket feed of the same
// snapshot, once a second.
//
//	http.Handle("/monitor/", http.StripPrefix("/monitor", monitor.Handler(bus)))
//
// Every subscription is listed with its name, patterns, where it was made
// (file:line), mailbox pending and bound, delivered per second, dropped,
// whether it is lagging (catching up from the store), delivery latency
// p50/p99, handler run time p50/p99, and for how long its handler has been
// stalled. The bus's totals and rates are on top.
//
// # Slow and stalled
//
// A subscription is slow when, at a sample, its mailbox is at least three
// quarters full, it dropped events since the last sample, it is lagging,
// or its median delivery latency is at least the slow threshold
// ([WithSlowLatency], default 1s). It is stalled when its handler has run
// one event for longer than the bus's stall timeout
// (eventbus.WithStallTimeout). The page shows the stalled and the slow
// first, highlighted.
//
// # Routes
//
// Relative to where the handler is mounted:
//
//	GET /              the page (text/html; its script and style are served beside it, no CDN)
//	GET /snapshot      the current Snapshot as JSON
//	GET /ws            a WebSocket sending a Snapshot as a JSON text frame every interval
//
// Responses carry a Content-Security-Policy that allows nothing from
// elsewhere. The WebSocket accepts only pages from its own host unless
// [WithOriginPatterns] says otherwise; it ends when the client goes or the
// bus shuts down.
//
// # Costs
//
// A snapshot reads each subscription's counters and histograms (atomics,
// no lock on the delivery path). Snapshots are shared: however many pages
// are open, the bus is sampled at most once per interval.
package monitor
