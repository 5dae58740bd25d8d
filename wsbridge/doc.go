// Package wsbridge provides an http.Handler that streams the events of an
// eventbus.Bus to WebSocket clients, such as a browser page using nothing but
// the browser's WebSocket object.
//
//	http.Handle("/ws", wsbridge.Handler(bus))
//
// Each connection is one bus subscription. The client picks its topic
// patterns in the URL, changes them at run time with JSON control messages,
// and may resume from a sequence number after a reconnect without a gap.
// A slow client never slows the bus or other clients: by default it is
// disconnected; [WithOverflow] can make it catch up from the store instead,
// or drop events and say how many.
//
// # Connecting
//
// The handler serves GET requests that upgrade to a WebSocket:
//
//	ws://host/ws?pattern=worker.*&pattern=chat.*&from=1234
//
// The query parameters are:
//
//   - pattern (repeatable): topic patterns, with the bus's semantics ("*"
//     matches any run of characters, dots included; "?" one character).
//     Duplicates count once. With no pattern parameter the connection
//     subscribes to "*", everything, which the bus's Authorizer may refuse.
//   - from (optional): a sequence number. The connection first receives the
//     stored events with Seq >= from that match its patterns, then live
//     events, with no gap and no duplicate between the two
//     (eventbus.FromSeq). A client that saw events up to Seq n reconnects
//     with from=n+1. from needs a bus with a store.
//   - epoch (optional, with from; ignored without): the epoch the client's Seqs belong to,
//     as the ready message gave it. See Resuming.
//
// Before the upgrade a request may be refused with a plain HTTP error
// (a browser sees only a failed connection): 503 beyond
// [WithMaxConnections] or once the bus has shut down, 401 when the
// [WithAuth] function fails, 400 for an invalid or excess pattern, a bad
// from, an epoch longer than 128 bytes, or from without a store, 403 when
// the bus's Authorizer refuses a
// pattern, and 403 for a page from another origin (see
// [WithOriginPatterns]; requests without an Origin header, from programs
// rather than browsers, are not checked).
//
// # Wire protocol
//
// Every message, in both directions, is a JSON object in a WebSocket text
// frame; [Message] has all the fields. Unknown fields are ignored.
//
// Server to client. The first message is ready, with the connection's
// patterns, the bus's epoch and the Seq of the last event the bus had
// accepted when the connection began (left out when 0); then, for a
// resuming client, a reset or a dropped notice (see Resuming); then, in any
// interleaving, events in Seq order, replies to control messages in request
// order, and notices:
//
//	{"type":"ready","patterns":["worker.*","chat.*"],"epoch":"01JD…","last_seq":1234}
//	{"type":"reset","epoch":"01JD…","last_seq":1234}
//	{"type":"event","event":{"id":"01J…","seq":42,"event_type":"worker_progress",
//	  "topic":"worker.indexer.progress","payload":{"pct":40},
//	  "timestamp":"2025-01-02T15:04:05.123456789Z","source":"worker-7"}}
//	{"type":"ack","op":"subscribe","pattern":"chat.*"}
//	{"type":"ack","op":"unsubscribe","pattern":"chat.*"}
//	{"type":"ack","op":"publish","event_id":"01J…","topic":"user.alice.command"}
//	{"type":"error","op":"subscribe","pattern":"a..b","code":"invalid_pattern",
//	  "error":"eventbus: invalid pattern \"a..b\": empty segment"}
//	{"type":"dropped","count":12,"total":40}
//	{"type":"dropped","count":142,"total":142,"reason":"not_stored"}
//
// The event object is the eventbus.Event JSON form, metadata included. A
// dropped notice without a reason (only with eventbus.DropOldest or
// eventbus.DropNewest) says that count events meant for this client were
// discarded since the previous notice; these notices are sent at most every
// 250ms. total counts every event the connection lost since it began,
// including those of a not_stored notice.
//
// Client to server, control messages, each answered by exactly one ack or
// error. An optional "id" (any JSON value) is echoed in the answer:
//
//	{"op":"subscribe","pattern":"chat.*","id":1}
//	{"op":"unsubscribe","pattern":"chat.*"}
//	{"op":"publish","event":{"event_type":"user_command","topic":"user.alice.command",
//	  "payload":{"cmd":"pause"},"correlation_id":"c-9"}}
//
// An event a client publishes may carry metadata ("metadata":{"k":"v"}),
// under the bus's rules (eventbus.ValidateMetadata) except that keys
// starting with "eventbus-" are the bus's own and refused.
//
// Subscribing to a pattern the connection holds is acknowledged and changes
// nothing; an event matching several of a connection's patterns arrives
// once. Unsubscribing the last pattern leaves the connection open and quiet.
// Publishing is off unless the handler has [WithClientPublish]; the server
// assigns the event's id, seq and timestamp, sets its source to the
// connection's principal (see [WithAuth]) whatever the client sent, so that
// a client cannot speak for another (unless [WithTrustClientSource]), and
// acknowledges once the bus has accepted, persisted and delivered it.
//
// A control message that fails changes nothing, on the bus or for other
// clients, and the connection stays open. The error codes are:
//
//	malformed          not JSON, not a JSON object (null, an array, a string,
//	                   a number) of this shape, or a binary message
//	unknown_op         op is not subscribe, unsubscribe or publish
//	invalid_pattern    the pattern breaks the bus's pattern rules
//	too_many_patterns  the connection would hold more than WithMaxPatterns
//	not_subscribed     unsubscribe of a pattern the connection does not hold
//	forbidden          the bus's Authorizer refused the pattern or topic
//	publish_disabled   publish without WithClientPublish
//	type_not_allowed   publish of a type WithClientPublish does not allow
//	invalid_event      bad event_type, topic, payload or metadata
//	closed             the bus is shutting down
//
// # Closing
//
// The server closes the connection with a WebSocket status and reason:
//
//	1000 normal closure        the client closed it
//	1001 going away            "event bus shut down" (after sending what was
//	                           already queued), "server closing connection"
//	                           (the request's context ended), "ping timeout"
//	1008 policy violation      "slow consumer" (eventbus.Disconnect)
//	1009 message too big       a client message exceeded WithReadLimit
//
// A browser client should reconnect after 1001 and 1008, with from set to
// the Seq after the last event it received and epoch to the epoch of that
// event's connection.
//
// # Resuming
//
// Seqs are numbered per bus, and numbering can start again: a server
// restarted on a memory store (or without one) numbers its events from 1.
// The bus's epoch (eventbus.Bus.Epoch), sent in ready, names the current
// numbering; it stays the same across restarts on a store that keeps its
// events, such as sqlitestore. A client remembers the epoch with the Seqs it
// saw and resumes with ?from=N&epoch=E. Resuming is never silently lossy:
//
//   - If E is not the bus's epoch, or N is beyond the next Seq (greater than
//     last_seq+1, which no client of this numbering can have seen), the
//     client's N means nothing here. It gets
//     {"type":"reset","epoch":"…","last_seq":L} right after ready and then
//     the events from L+1 on; it should forget its Seqs, remember the new
//     epoch, and load what it wants of events 1–L from elsewhere (a query of
//     the store).
//   - A from without epoch is taken to be in the bus's epoch.
//   - If N is older than the oldest event the store still holds (retention
//     by count or age), the Seqs from N up to that event cannot be replayed:
//     the client gets {"type":"dropped","count":K,"total":K,
//     "reason":"not_stored"} right after ready, then the replay of what is
//     stored. K counts Seqs of every topic, so it is an upper bound of what
//     the connection's patterns missed; events published
//     eventbus.WithoutPersist are never stored and not counted.
//
// # Slow clients
//
// Each connection's subscription has a bounded mailbox (see [WithBuffer])
// that the connection's writer drains into the socket, each write bounded
// by [WithWriteTimeout]. When the client reads too slowly the mailbox fills
// and the overflow policy (see [WithOverflow]) decides; the bus itself never
// waits for a client.
//
// # Authentication and authorization
//
// [WithAuth] authenticates the HTTP request and names a principal. The
// handler attaches it with eventbus.WithPrincipal, so the bus's Authorizer
// (eventbus.WithAuthorizer) is asked about every pattern, at connect and on
// each subscribe, and about every client publish. The principal is also the
// Source of the events a client publishes (see [WithTrustClientSource]).
// Give the bus an Authorizer that decides on patterns by what they can
// match (eventbus.PatternWithin), not by their text: "*", "s?cret.*" and
// "*ecret*" all match the topics under "secret".
//
// # Goroutines
//
// Three goroutines serve a connection: the ServeHTTP goroutine writes
// (events, replies, notices), a reader handles control messages, and a
// supervisor sends pings (see [WithPingInterval]) and closes the socket at
// once when the bus disconnects a slow client. All three stop when the
// socket closes, the request's context ends, or the bus shuts down, and
// ServeHTTP returns only after the other two have finished and the
// subscription has ended. A server that wants to wait for every connection
// at shutdown (http.Server.Shutdown does not wait for WebSockets) can shut
// down the bus, which ends them all, and wrap the handler to count the
// ServeHTTP calls still running.
//
// # Costs
//
// An event sent to many connections is encoded once (a small cache keyed
// by Seq), then written to each socket as one WebSocket message.
package wsbridge
