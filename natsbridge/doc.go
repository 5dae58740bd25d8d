// Package natsbridge provides a bridge that relays events between an
// eventbus.Bus and NATS, so that buses in several processes share topics.
//
//	nc, _ := nats.Connect(url)
//	br, err := natsbridge.New(bus, nc, natsbridge.WithPatterns("worker.*"))
//	...
//	defer br.Close() // before bus.Close and nc.Close
//
// Each bridge exports local events matching its export patterns
// ([WithExport]) to NATS and imports events from NATS matching its import
// patterns ([WithImport]) into its bus; [WithPatterns] does both. Every bus
// bridged under the same prefix with overlapping patterns sees the others'
// events, each exactly once (core NATS: at most once; JetStream: at least
// once across the wire, de-duplicated to once per bus, see below).
//
// # Wire format
//
// An event on topic T travels on subject "<prefix>.T" (prefix
// [DefaultPrefix], "eventbus", unless [WithPrefix]) with its Event JSON as
// the body and the exporting bridge's [Bridge.Origin] in the
// [OriginHeader] ("Eventbus-Origin") header; in JetStream mode also the event
// ID as "Nats-Msg-Id". The body's "seq" is the event's position in the
// exporting bus: the importing bus assigns its own Seq and keeps the ID,
// type, topic, payload, timestamp, source, correlation ID and metadata. Any
// NATS client can read these subjects, and any client that publishes Event
// JSON with a fresh ID on the right subject feeds every importing bus.
//
// The event's metadata travels twice. The body's "metadata" object carries
// it exactly and is what counts. Each pair is also a NATS header named by
// the key (so NATS tools, and consumers that only look at headers, see
// "traceparent" and the like), except pairs a header would not carry
// unchanged: values with CR or LF (nats.go turns them into spaces) or with
// leading or trailing space or tab (it trims them), and keys that are NATS's
// or the bridge's (OriginHeader, "Nats-…", in any case). On import, every
// header except OriginHeader and "Nats-…" is a metadata pair: a key that
// only a header has is added (a plain NATS publisher can attach metadata
// with headers alone), a key in both must have the same value in both, and
// a header must have a single value; the result must follow the bus's
// metadata rules (eventbus.ValidateMetadata). A message that breaks these
// is an import error of kind [ImportMetadata].
//
// A message must carry an event with a valid ID: a non-zero ULID in "id".
// The bridge never makes one up: a message without one (missing, zero or
// malformed) is an import error of kind [ImportNoID] ([ErrNoEventID]),
// counted and reported, never imported, so it can never come back from
// another bus as a new event. The other import errors are an empty body
// ([ImportEmpty]), a body that is not a JSON object of the Event form
// ([ImportNotJSON]), an event the bus would refuse ([ImportInvalidEvent]),
// an event on another topic's subject ([ImportWrongSubject]) and an event
// the bus refused ([ImportRefused]).
//
// # Patterns and subjects
//
// Patterns map to NATS subjects as [SubjectFor] shows. In eventbus patterns
// '*' crosses dots, so "a.*" (everything strictly below a) is exactly NATS's
// "a.>", and "*" is ">". An exact topic maps to the same subject. A glob with
// no NATS form is imported through the narrowest subject that covers it (the
// literal segments before the first segment holding a wildcard, then ">")
// and what arrives there is filtered with eventbus.Match; Stats.Filtered
// counts what that costs:
//
//	pattern              subject (prefix "eventbus")    filtered locally
//	*                    eventbus.>                     no
//	worker.*             eventbus.worker.>              no
//	worker.task.done     eventbus.worker.task.done      no
//	worker.*.complete    eventbus.worker.>              yes
//	chat.room?           eventbus.chat.>                yes
//	*.failed             eventbus.>                     yes
//
// The importer subscribes to the fewest subjects that cover its patterns
// (a subject covered by another is dropped), so no message arrives twice.
//
// Topics never hold whitespace, '*' or '?', so every topic is a valid NATS
// subject except one: a topic with a segment that is exactly ">" (such as
// "alerts.>"), which NATS would read as a wildcard. Such events are not
// exported; each is counted in Stats.ExportErrors and reported as
// [ErrNoSubject]. Escaping them instead would give NATS users subjects that
// no longer read as the topic. ([Subject] gives an event's subject.)
//
// # Loop prevention
//
// When several buses all export and import the same topics, an event must
// cross into each bus once and never come back. Two checks make sure of it:
//
//   - Each bridge remembers the IDs of the events that crossed it, in either
//     direction, in a bounded set ([WithDedupeWindow], default 65,536, the
//     oldest forgotten first). The exporter does not export an event whose ID
//     is in the set: it was imported (Stats.Looped). The importer drops a
//     message whose event ID is in the set: the bridge exported it, or
//     imported it already (Stats.Duplicates). The importer adds the ID
//     before it publishes into the bus, so the exporter always finds it.
//   - Each message carries its exporter's origin; a bridge drops messages
//     with its own origin (Stats.Echoes) before decoding them. NATS echoes a
//     connection's own publishes to its subscriptions unless it was made with
//     nats.NoEcho(), which saves that traffic.
//
// So with buses A, B and C all bridged with WithPatterns("*"), an event
// published on A is exported by A only; B and C import it once each, and
// their exporters skip it; A drops its echo. No bus relays another's event.
//
// The set must remember an imported ID until the exporter has seen that
// event, so it must hold more IDs than cross the bridge while the exporter
// lags behind the bus; under the default backpressure that lag is at most
// the export mailbox plus the bus's store (10,000 events by default). Raise
// the window for a large persistent store and long outages.
//
// # Queue groups
//
// [WithQueueGroup](name) makes a bridge's imports a member of the NATS
// queue group name (nats.go's QueueSubscribe): of the bridges in the
// group, the server gives each message to exactly one, which imports it;
// bridges outside the group import it as usual. So a group of work spans
// processes: bridge every worker process with the same queue group and
// import patterns, and each event published on NATS — exported by another
// bus, or sent by any NATS client — is imported by one of them, then
// handled there as any local event is: by every subscription without a
// queue group and by one member of each local eventbus.WithQueueGroup.
// With one local queue group per worker process (say "jobs", of Handle
// workers), each event reaches one worker in one process. The two names
// are separate: the NATS queue group chooses the process, the local one
// the subscription.
//
// A queue group splits imports, not what a bus publishes itself. An event
// published on a member's own bus reaches that bus's subscriptions first
// (one member of its local group among them); exported, it is given by
// the server to one bridge of the group, which may be another member, so
// it is handled there too, or the exporter itself, which drops it as an
// echo. With nats.NoEcho() the server never gives a connection its own
// messages and picks another member. Publish work into a group from
// processes that export it and do not import it (producers), and let the
// members export other topics (results). Loop prevention is as above: an
// imported event is never exported again.
//
// Core NATS keeps the at-most-once guarantee: a message the chosen bridge
// drops (its bus refused it, its connection was away) is not given to
// another member. JetStream's counterpart, a durable consumer shared by
// several bridges, is not offered: WithQueueGroup with WithJetStream is an
// error.
//
// # Backpressure
//
// The exporter reads a bus subscription ("natsbridge:<origin>") with a
// 4096-event mailbox. When the bus has a store, its overflow policy is
// CatchUp: if NATS stalls, the exporter falls behind without slowing
// publishers and later reads what it missed from the store, in order. Only
// events the store no longer holds, or events published WithoutPersist
// meanwhile, are lost; they are counted in Stats.ExportDropped. Without a
// store the policy is Block with a one-second timeout: a burst larger than
// the mailbox makes publishers wait for the exporter, and events that still
// find no room after a second are dropped and counted. Either way the bus
// reports the start of each losing episode to its own error handler as
// eventbus.ErrSlowConsumer, naming the subscription. Core NATS publishing
// only buffers and fails fast, so in core mode the exporter keeps up unless
// the connection itself is saturated. Override the subscription's options
// with [WithExportOptions] (a policy that ends the subscription, such as
// Disconnect, ends exporting for good; eventbus.FromSeq exports stored
// history first).
//
// On the import side, nats.go queues incoming messages per subscription (by
// default up to 512Ki messages or 64 MiB); beyond that it drops them, and
// Stats.ImportDropped counts them. The importer waits for room in the bus
// mailbox, so a full bus slows imports, not other publishers.
//
// # Reconnects
//
// The bridge relies on nats.go's reconnect handling and does not watch the
// connection itself. While nc is reconnecting, core-mode exports go into
// nats.go's reconnect buffer (ReconnectBufSize, 8 MiB by default) and are
// sent when it reconnects; once that buffer is full, publishes fail and the
// events are counted in Stats.ExportErrors and reported. Core NATS keeps
// nothing for absent subscribers: events published while an importing
// connection is disconnected (including those flushed from another bridge's
// reconnect buffer before this one is back) are not delivered to it. nats.go
// restores the subscriptions when it reconnects. Use JetStream when a bus
// must not miss events.
//
// # JetStream
//
// With [WithJetStream](stream, durable) exports are published into the
// stream (created with subject "<prefix>.>" and file storage, or given that
// subject if it does not cover it) and imports are read through the durable
// pull consumer named durable, created to deliver what is published from
// then on. The guarantee is at least once: the exporter waits for each
// acknowledgement and retries failed publishes (with backoff, until it
// succeeds or the bridge shuts down; while it retries, the bus subscription
// catches up from the store as above), and the importer acknowledges a
// message only after the bus has taken the event, so a process that stops,
// crashes or loses its connection receives on restart (same durable) what it
// had not acknowledged. Duplicates are dropped twice over: JetStream drops a
// republished Nats-Msg-Id within its duplicate window (two minutes by
// default), and the importer drops IDs it has seen; a restarted bridge first
// loads the IDs of the bus's newest 10,000 stored events, so a redelivery of
// an event the bus stored before the restart is dropped too. A retried
// publish can be stored after events exported after it. Messages the
// consumer had fetched but not handled when the bridge stopped are
// redelivered after the consumer's AckWait (30 s by default). The durable
// name must be unique per bus and serves as the bridge's origin, which keeps
// a restarted process from importing its own earlier exports.
//
// A stream New creates has the server's default limits, which keep every
// message for ever: give it retention limits (MaxAge, MaxBytes) yourself, or
// create it beforehand with the limits you want. New changes an existing
// stream only to add the subject "<prefix>.>" when none of its subjects
// covers it, and an existing durable consumer only to set its filter
// subjects to those of the import patterns.
//
// # Goroutines and shutdown
//
// A bridge runs two goroutines of its own, the exporter and the summarizer
// (unless WithSummaryInterval(0)); nats.go runs the
// import handlers (one goroutine per subscription, or the JetStream consumer's).
// [Bridge.Shutdown] stops the imports and waits for their handlers, lets the
// exporter export what is in its mailbox, stops the summarizer after its
// last summary, and flushes the connection;
// [Bridge.Close] is Shutdown limited to five seconds. Close the bridge before
// the bus and the connection: if the bus closes first, the exporter stops
// and imports fail with eventbus.ErrClosed (counted in Stats.ImportErrors)
// until Close.
//
// # Errors
//
// Failures with no caller to return to go to [WithErrorHandler] and the
// logger, and all of them are counted in [Stats]. An export failure is
// reported when it starts a failure episode (the first after a success); an
// import failure when it is the first of its kind ([ImportErrorKind]) in an
// episode, so a different kind of bad message is never hidden behind the
// first. Every [WithSummaryInterval] (a minute by default) in which messages
// failed to import, and at Shutdown, an [ImportSummary] counts them by kind;
// Stats.ImportErrorsByKind has the totals. Errors about one export are
// *eventbus.EventError values wrapping [ErrExport] or [ErrNoSubject]; errors
// about one import are *[ImportError] values wrapping [ErrImport] (inside an
// *eventbus.EventError when the event's ID is known).
package natsbridge
