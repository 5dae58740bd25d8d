// Command dashboard serves a live view of an event bus in the browser: the
// event stream through wsbridge, a topic filter, counts per event type,
// events per second, and history from the store.
//
//	go run ./examples/dashboard                 # http://127.0.0.1:8080, demo events, in-memory store
//	go run ./examples/dashboard -db events.db   # persist to SQLite; history survives restarts
//	go run ./examples/dashboard -demo=false     # only what you publish yourself
//	go run ./examples/dashboard -addr 0.0.0.0:8080 -allow-host dash.example.com
//
// The first go run on a cold build cache compiles the dependencies (SQLite
// among them) and prints nothing for a minute or two; later runs start at
// once.
//
// The page is plain HTML, CSS and JavaScript embedded in the binary (no
// build step, nothing fetched from elsewhere). It connects to /ws, loads
// history from /api/events?pattern=…&limit=…, and after a lost connection
// resumes from the last Seq it saw and that Seq's epoch, so it misses nothing
// the store kept. When the server's numbering started again (a restart on
// the memory store), the server answers the resume with a reset: the page
// shows a "server restarted — numbering reset" row above the old rows,
// forgets its old Seqs (LAST SEQ names the newest row) and loads the new
// server's history. Seqs the store no longer holds count as missed.
//
// # Host check
//
// The server answers only requests whose Host header names it: the listen
// address, and localhost, 127.0.0.1 and [::1] with the listen port, plus
// the names given with -allow-host (comma-separated or repeated; "name"
// with any port, or "name:port"). Any other Host gets 421 Misdirected
// Request with a message saying so, for the page, the API and the
// WebSocket alike. This stops DNS rebinding: a site whose name was made to
// resolve to 127.0.0.1 would otherwise be same-origin with the dashboard
// and could read its events. Listening on all interfaces (0.0.0.0 or [::])
// needs -allow-host for the names the browser will use.
//
// # Endpoints
//
//	GET /                                 the page (static/, embedded)
//	GET /ws?pattern=…&from=…              the live stream (wsbridge protocol)
//	GET /ws?pattern=…&from=…&epoch=…      (resuming)
//	GET /api/events?pattern=*&limit=200   the newest stored matching events, oldest first,
//	                                      and where the stream resumes: {"events":[…],"epoch":"…","last_seq":N}
//	GET /api/info                         {"store":"…","demo":true}
//	GET /monitor/                         the Subscribers view (package monitor): every subscription live,
//	                                      the slow and the stalled highlighted; /monitor/snapshot, /monitor/ws
//	GET /metrics                          the bus's OpenTelemetry metrics (otelbus) through the
//	                                      OpenTelemetry Prometheus exporter
//
// The demo includes one deliberately slow subscriber, "slow-archiver"
// (about 1.5s per worker event, a mailbox of 16), so the Subscribers view
// has something to find.
//
// Browsers that fall behind catch up from the store (eventbus.CatchUp)
// rather than lose events. The page's state is readable as window.__dash,
// which the chromedp test in browser_test.go uses.
package main
