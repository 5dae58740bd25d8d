// Command dashboard serves a live view of an event bus in the browser: the
// event stream through wsbridge, a topic filter, counts per event type,
// events per second, and history from the store.
//
//	go run ./examples/dashboard                 # http://127.0.0.1:8080, demo events, in-memory store
//	go run ./examples/dashboard -db events.db   # persist to SQLite; history survives restarts
//	go run ./examples/dashboard -demo=false     # only what you publish yourself
//
// The page is plain HTML, CSS and JavaScript embedded in the binary (no
// build step, nothing fetched from elsewhere). It connects to /ws, loads
// history from /api/events?pattern=…&limit=…, and after a lost connection
// resumes from the last Seq it saw, so it misses nothing the store kept.
//
// # Endpoints
//
//	GET /                                 the page (static/, embedded)
//	GET /ws?pattern=…&from=…              the live stream (wsbridge protocol)
//	GET /api/events?pattern=*&limit=200   the newest stored matching events, oldest first: {"events":[…]}
//	GET /api/info                         {"store":"…","demo":true}
//
// Browsers that fall behind catch up from the store (eventbus.CatchUp)
// rather than lose events. The page's state is readable as window.__dash,
// which the chromedp test in browser_test.go uses.
package main
