package natsbridge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/oklog/ulid/v2"

	"github.com/choiros/eventbus"
)

// OriginHeader is the NATS header that carries the origin of an exported
// event: the Origin of the bridge that published it. A bridge drops the
// messages that carry its own origin.
const OriginHeader = "Eventbus-Origin"

// Bridge relays events between a Bus and NATS. Make one with New and stop it
// with Close or Shutdown. Its methods are safe for concurrent use.
type Bridge struct {
	bus    *eventbus.Bus
	nc     *nats.Conn
	cfg    config
	origin string
	seen   *idSet // IDs that crossed the bridge, either way

	// ctx lives until the end of Shutdown, or until Shutdown's ctx ends:
	// every wait of the bridge's goroutines ends with it.
	ctx    context.Context
	cancel context.CancelFunc

	js         jetstream.JetStream    // JetStream mode
	export     *eventbus.Subscription // nil without export patterns
	exportDone chan struct{}          // closed when the exporter goroutine returns

	mu            sync.Mutex // guards imports and the dropped counts of ended ones
	imports       []importSub
	importDropped uint64

	consume       jetstream.ConsumeContext // JetStream mode with imports
	consumeClosed <-chan struct{}

	n struct { // counters for Stats
		exported, looped, exportErrors                       atomic.Uint64
		imported, echoes, duplicates, filtered, importErrors atomic.Uint64
		byKind                                               [numKinds]atomic.Uint64
	}
	exportFailing atomic.Bool   // in a failure episode of the exporter
	importFailing atomic.Uint32 // in a failure episode of the importer: a bit per importKind reported, and consumerBit

	summary summarizer // the periodic summary of import errors

	once sync.Once
	done chan struct{} // closed when the shutdown steps are over
	err  error         // Shutdown's result, set before done is closed
}

// importSub is one core NATS subscription of the importer.
type importSub struct {
	sub    *nats.Subscription
	closed chan struct{} // closed when nats.go has stopped calling the handler
}

// Stats counts what a bridge did. Every event it handles is counted once,
// under one of these headings.
type Stats struct {
	Exported      uint64 // events published to NATS (JetStream: acknowledged by the stream)
	Looped        uint64 // events not exported because they were imported (loop prevention)
	ExportErrors  uint64 // events that could not be exported: publish errors, topics with no subject
	ExportDropped uint64 // events the export subscription lost to its overflow policy

	Imported      uint64 // events published into the bus
	Echoes        uint64 // messages dropped because this bridge exported them
	Duplicates    uint64 // messages dropped because their event had already crossed the bridge
	Filtered      uint64 // messages on a covering subject whose topic matches no import pattern
	ImportErrors  uint64 // messages that could not be imported: not an Event, no valid ID, or refused by the bus
	ImportDropped uint64 // messages nats.go dropped because the importer fell behind (core NATS)

	// ImportErrorsByKind breaks ImportErrors down by kind; it holds only
	// the kinds that occurred, and is nil when none did.
	ImportErrorsByKind map[ImportErrorKind]uint64
}

// New starts a bridge between bus and nc that relays at once: local events
// matching the export patterns go to NATS, and events on NATS matching the
// import patterns come into bus. At least one of WithExport, WithImport or
// WithPatterns is required. New subscribes on both sides and, when nc is
// connected, flushes so that the server knows the import subscriptions
// before it returns; in JetStream mode it also makes the stream and the
// durable consumer (see WithJetStream).
//
// The bridge does not own bus or nc: Close stops it without closing them.
// Errors wrap ErrInvalidOption, ErrJetStream, or errors of eventbus.Bus
// Subscribe and nats.go.
func New(bus *eventbus.Bus, nc *nats.Conn, opts ...Option) (*Bridge, error) {
	if bus == nil || nc == nil {
		return nil, invalid("New", "nil bus or connection")
	}
	cfg := defaultConfig()
	for _, o := range opts {
		if o == nil {
			continue
		}
		if err := o.apply(&cfg); err != nil {
			return nil, err
		}
	}
	if len(cfg.export) == 0 && len(cfg.imports) == 0 {
		return nil, invalid("New", "no patterns: use WithExport, WithImport or WithPatterns")
	}
	if cfg.queue != "" && (len(cfg.imports) == 0 || cfg.stream != "") {
		return nil, invalid(fmt.Sprintf("WithQueueGroup(%q)", cfg.queue), "needs import patterns, and core NATS (not WithJetStream)")
	}
	b := &Bridge{
		bus:    bus,
		nc:     nc,
		cfg:    cfg,
		origin: cfg.durable,
		seen:   newIDSet(cfg.dedupe),
		done:   make(chan struct{}),
	}
	if b.origin == "" {
		b.origin = ulid.Make().String()
	}
	b.ctx, b.cancel = context.WithCancel(context.Background())
	if err := b.start(); err != nil {
		b.once.Do(func() {})
		b.stop(context.Background())
		return nil, err
	}
	return b, nil
}

// Origin returns the bridge's identity on the wire, sent in OriginHeader with
// every event it exports: a fresh ULID, or in JetStream mode the durable name,
// which stays the same when the process restarts.
func (b *Bridge) Origin() string { return b.origin }

func (b *Bridge) start() error {
	ctx, cancel := context.WithTimeout(b.ctx, b.cfg.ackTimeout)
	defer cancel()
	if b.cfg.stream != "" {
		js, err := jetstream.New(b.nc,
			jetstream.WithPublishAsyncTimeout(b.cfg.ackTimeout),
			jetstream.WithDefaultTimeout(b.cfg.ackTimeout))
		if err != nil {
			return fmt.Errorf("%w: %w", ErrJetStream, err)
		}
		b.js = js
		stream, err := b.ensureStream(ctx)
		if err != nil {
			return err
		}
		if len(b.cfg.imports) > 0 {
			if err := b.startConsumer(ctx, stream); err != nil {
				return err
			}
		}
	} else if len(b.cfg.imports) > 0 {
		if err := b.subscribeCore(ctx); err != nil {
			return err
		}
	}
	if b.cfg.summaryEvery > 0 {
		b.summary.start(b)
	}
	if len(b.cfg.export) > 0 {
		sub, err := b.subscribeExport()
		if err != nil {
			return err
		}
		b.export, b.exportDone = sub, make(chan struct{})
		if b.js != nil {
			go b.exportJetStream(sub)
		} else {
			go b.exportCore(sub)
		}
	}
	return nil
}

// subscribeExport subscribes the exporter to the export patterns with the
// CatchUp policy, or Block with a timeout when the bus has no store.
func (b *Bridge) subscribeExport() (*eventbus.Subscription, error) {
	base := []eventbus.SubscribeOption{
		eventbus.WithName("natsbridge:" + b.origin),
		eventbus.WithBuffer(DefaultExportBuffer),
	}
	opts := append(append(base[:len(base):len(base)], eventbus.WithOverflow(eventbus.CatchUp)), b.cfg.exportOpts...)
	sub, err := b.bus.Subscribe(b.ctx, b.cfg.export[0], opts...)
	if errors.Is(err, eventbus.ErrNoStore) {
		opts = append(append(base, eventbus.WithOverflow(eventbus.Block),
			eventbus.WithBlockTimeout(DefaultBlockTimeout)), b.cfg.exportOpts...)
		sub, err = b.bus.Subscribe(b.ctx, b.cfg.export[0], opts...)
	}
	if err != nil {
		return nil, err
	}
	for _, p := range b.cfg.export[1:] {
		if err := sub.Add(p); err != nil {
			sub.Close()
			return nil, err
		}
	}
	return sub, nil
}

// Close is Shutdown with a limit of DefaultCloseTimeout (5s).
func (b *Bridge) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), DefaultCloseTimeout)
	defer cancel()
	return b.Shutdown(ctx)
}

// Shutdown stops the bridge: it ends the import subscriptions and waits
// until the handlers running on them return, then ends the export
// subscription and exports what is already in its mailbox (in JetStream mode
// waiting for each acknowledgement and retrying failed publishes), and
// flushes nc. Events the export subscription had not received yet, such as
// those a CatchUp subscription was about to read from the store, are not
// exported. If ctx ends first, the remaining work is abandoned (events not
// exported are counted in Stats.ExportErrors) and Shutdown returns ctx.Err()
// once the bridge's goroutines have stopped, which is prompt. Either way
// nothing of the bridge runs after Shutdown returns. It does not close the bus
// or nc. Shutdown is safe to call more than once; later calls wait for the
// first and return its result.
func (b *Bridge) Shutdown(ctx context.Context) error {
	first := false
	b.once.Do(func() { first = true })
	if first {
		b.stop(ctx)
		return b.err
	}
	select {
	case <-b.done:
		return b.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// stop runs the shutdown steps, sets b.err and closes b.done. When ctx ends
// it cancels b.ctx, which makes every remaining step finish at once.
func (b *Bridge) stop(ctx context.Context) {
	defer close(b.done)
	abort := context.AfterFunc(ctx, b.cancel)
	b.mu.Lock()
	for _, s := range b.imports {
		if n, err := s.sub.Dropped(); err == nil {
			b.importDropped += uint64(n)
		}
		_ = s.sub.Unsubscribe() // fails only if nc is closed, which ends it too
	}
	imports := b.imports
	b.imports = nil
	b.mu.Unlock()
	for _, s := range imports {
		<-s.closed
	}
	if b.consume != nil {
		b.consume.Stop()
		<-b.consumeClosed
	}
	if b.export != nil {
		b.export.Close()
		<-b.exportDone
	}
	if b.js != nil {
		b.js.CleanupPublisher()
	}
	b.summary.stop() // the imports have stopped: its last summary is final
	var err error
	if b.nc.IsConnected() {
		fctx, cancel := context.WithTimeout(b.ctx, b.cfg.ackTimeout)
		if ferr := b.nc.FlushWithContext(fctx); ferr != nil {
			err = fmt.Errorf("natsbridge: flush: %w", ferr)
		}
		cancel()
	}
	if !abort() {
		err = ctx.Err()
	}
	b.cancel()
	b.err = err
}

// Stats returns the bridge's counters.
func (b *Bridge) Stats() Stats {
	s := Stats{
		Exported:     b.n.exported.Load(),
		Looped:       b.n.looped.Load(),
		ExportErrors: b.n.exportErrors.Load(),
		Imported:     b.n.imported.Load(),
		Echoes:       b.n.echoes.Load(),
		Duplicates:   b.n.duplicates.Load(),
		Filtered:     b.n.filtered.Load(),
		ImportErrors: b.n.importErrors.Load(),
	}
	for k := range numKinds {
		if n := b.n.byKind[k].Load(); n > 0 {
			if s.ImportErrorsByKind == nil {
				s.ImportErrorsByKind = make(map[ImportErrorKind]uint64)
			}
			s.ImportErrorsByKind[importKinds[k]] = n
		}
	}
	if b.export != nil {
		s.ExportDropped = b.export.Stats().Dropped
	}
	b.mu.Lock()
	s.ImportDropped = b.importDropped
	for _, i := range b.imports {
		if n, err := i.sub.Dropped(); err == nil {
			s.ImportDropped += uint64(n)
		}
	}
	b.mu.Unlock()
	return s
}

// prepare checks that e is to be exported and returns its subject and body.
// It counts and reports the events it turns down.
func (b *Bridge) prepare(e eventbus.Event) (subject string, body []byte, ok bool) {
	if !b.seen.add(e.ID) {
		b.n.looped.Add(1)
		return "", nil, false
	}
	subject, err := subjectOf(b.cfg.prefix, e.Topic)
	if err == nil {
		body, err = json.Marshal(e)
	}
	if err != nil {
		b.exportFailed(e, err)
		return "", nil, false
	}
	return subject, body, true
}

func (b *Bridge) exported() {
	b.n.exported.Add(1)
	if b.exportFailing.Load() {
		b.exportFailing.Store(false)
	}
}

// exportFailed counts an event that was not exported and reports it if it
// starts a failure episode.
func (b *Bridge) exportFailed(e eventbus.Event, err error) {
	b.n.exportErrors.Add(1)
	if b.exportFailing.CompareAndSwap(false, true) {
		b.report(exportError(e, err))
	}
}

// exportError describes a failed export of e.
func exportError(e eventbus.Event, err error) error {
	if !errors.Is(err, ErrNoSubject) {
		err = fmt.Errorf("%w: %w", ErrExport, err)
	}
	return &eventbus.EventError{ID: e.ID, Topic: e.Topic, Err: err}
}

func (b *Bridge) imported() {
	b.n.imported.Add(1)
	if b.importFailing.Load() != 0 {
		b.importFailing.Store(0)
	}
}

// consumerBit marks JetStream consumer trouble in importFailing.
const consumerBit = 1 << numKinds

// importFailed counts a message that was not imported and reports it if it
// is the first of its kind in a failure episode (since the last import).
func (b *Bridge) importFailed(subject string, f *importFailure) {
	b.n.importErrors.Add(1)
	b.n.byKind[f.kind].Add(1)
	if b.firstInEpisode(1 << f.kind) {
		b.report(f.error(subject))
	}
}

// importTrouble reports err if it starts a failure episode of the
// JetStream consumer.
func (b *Bridge) importTrouble(err error) {
	if b.firstInEpisode(consumerBit) {
		b.report(err)
	}
}

// firstInEpisode sets bit in importFailing and reports whether it was clear.
func (b *Bridge) firstInEpisode(bit uint32) bool {
	for {
		old := b.importFailing.Load()
		if old&bit != 0 {
			return false
		}
		if b.importFailing.CompareAndSwap(old, old|bit) {
			return true
		}
	}
}

// report hands err to the error handler and the logger.
func (b *Bridge) report(err error) {
	attrs := []slog.Attr{slog.String("origin", b.origin), slog.Any("error", err)}
	var ee *eventbus.EventError
	if errors.As(err, &ee) {
		attrs = append(attrs, slog.String("event_id", ee.ID.String()), slog.String("topic", ee.Topic))
	}
	var ie *ImportError
	if errors.As(err, &ie) {
		attrs = append(attrs, slog.String("kind", string(ie.Kind)), slog.String("subject", ie.Subject))
	}
	b.cfg.logger.LogAttrs(context.Background(), slog.LevelWarn, "natsbridge: relay failing", attrs...)
	if b.cfg.errHandler != nil {
		b.cfg.errHandler(err)
	}
}

// wants reports whether topic matches an import pattern.
func (b *Bridge) wants(topic string) bool {
	for _, p := range b.cfg.imports {
		if eventbus.Match(p, topic) {
			return true
		}
	}
	return false
}
