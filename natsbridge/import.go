package natsbridge

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/choiros/eventbus"
)

// nakDelay is how long JetStream waits before redelivering a message the bus
// refused.
const nakDelay = time.Second

// subscribeCore subscribes to the subjects that cover the import patterns
// (see importSubjects), in the queue group if there is one, and flushes,
// so that the server has them before New returns. nats.go calls the
// handler of each subscription on a goroutine of its own, one message at a
// time, so events on one subject keep their order.
func (b *Bridge) subscribeCore(ctx context.Context) error {
	subjects, exact := importSubjects(b.cfg.prefix, b.cfg.imports)
	for i, subject := range subjects {
		ex := exact[i]
		closed := make(chan struct{})
		// With no queue group (""), QueueSubscribe is Subscribe.
		sub, err := b.nc.QueueSubscribe(subject, b.cfg.queue, func(m *nats.Msg) { b.importCore(m, ex) })
		if err != nil {
			return fmt.Errorf("natsbridge: subscribe %q: %w", subject, err)
		}
		sub.SetClosedHandler(func(string) { close(closed) })
		b.mu.Lock()
		b.imports = append(b.imports, importSub{sub: sub, closed: closed})
		b.mu.Unlock()
	}
	if b.nc.IsConnected() {
		if err := b.nc.FlushWithContext(ctx); err != nil {
			return fmt.Errorf("natsbridge: flush: %w", err)
		}
	}
	return nil
}

// importCore publishes the event a core NATS message carries into the bus,
// unless this bridge exported it, it crossed the bridge before, or (on a
// subject that covers more than the patterns, exact false) its topic matches
// no import pattern. The bus assigns its own Seq and keeps the rest.
func (b *Bridge) importCore(m *nats.Msg, exact bool) {
	if m.Header.Get(OriginHeader) == b.origin {
		b.n.echoes.Add(1)
		return
	}
	e, fail := b.decode(m.Subject, m.Data, m.Header)
	if fail != nil {
		b.importFailed(m.Subject, fail)
		return
	}
	if !exact && !b.wants(e.Topic) {
		b.n.filtered.Add(1)
		return
	}
	if !b.seen.add(e.ID) {
		b.n.duplicates.Add(1)
		return
	}
	if err := b.bus.PublishAsync(b.ctx, e); err != nil {
		b.seen.remove(e.ID)
		b.importFailed(m.Subject, &importFailure{kind: kindRefused, id: e.ID, topic: e.Topic, err: err})
		return
	}
	b.imported()
}

// ensureStream returns the stream, creating it with the subject "<prefix>.>"
// or adding that subject to an existing stream that does not cover it.
func (b *Bridge) ensureStream(ctx context.Context) (jetstream.Stream, error) {
	want := b.cfg.prefix + ".>"
	stream, err := b.js.Stream(ctx, b.cfg.stream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		stream, err = b.js.CreateStream(ctx, jetstream.StreamConfig{
			Name:     b.cfg.stream,
			Subjects: []string{want},
			Storage:  jetstream.FileStorage,
		})
		if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) { // made meanwhile
			stream, err = b.js.Stream(ctx, b.cfg.stream)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("%w: stream %q: %w", ErrJetStream, b.cfg.stream, err)
	}
	cfg := stream.CachedInfo().Config
	if !slices.ContainsFunc(cfg.Subjects, func(s string) bool { return covers(s, want) }) {
		cfg.Subjects = append(cfg.Subjects, want)
		if stream, err = b.js.UpdateStream(ctx, cfg); err != nil {
			return nil, fmt.Errorf("%w: stream %q: add subject %q: %w", ErrJetStream, b.cfg.stream, want, err)
		}
	}
	return stream, nil
}

// startConsumer makes (or updates the filter of) the durable pull consumer
// and starts consuming. A new consumer delivers what is published from now
// on; an existing one resumes after the last message it acknowledged. Before
// that, the IDs of the newest stored events of the bus (if it has a store)
// join the seen set, so that redeliveries of events imported before a restart
// are dropped as duplicates.
func (b *Bridge) startConsumer(ctx context.Context, stream jetstream.Stream) error {
	if events, err := b.bus.Query(ctx, eventbus.Query{Newest: true, Limit: min(b.cfg.dedupe, eventbus.MaxQueryLimit)}); err == nil {
		for _, e := range events {
			b.seen.add(e.ID)
		}
	} else if !errors.Is(err, eventbus.ErrNoStore) {
		b.report(fmt.Errorf("natsbridge: reading recent event IDs: %w", err))
	}

	subjects, _ := importSubjects(b.cfg.prefix, b.cfg.imports)
	cons, err := stream.Consumer(ctx, b.cfg.durable)
	switch {
	case errors.Is(err, jetstream.ErrConsumerNotFound):
		cons, err = stream.CreateConsumer(ctx, jetstream.ConsumerConfig{
			Durable:        b.cfg.durable,
			FilterSubjects: subjects,
			AckPolicy:      jetstream.AckExplicitPolicy,
			DeliverPolicy:  jetstream.DeliverNewPolicy,
		})
	case err == nil:
		cfg := cons.CachedInfo().Config
		have := append(slices.Clone(cfg.FilterSubjects), cfg.FilterSubject)
		have = slices.DeleteFunc(have, func(s string) bool { return s == "" })
		slices.Sort(have)
		if !slices.Equal(have, slices.Sorted(slices.Values(subjects))) {
			cfg.FilterSubject, cfg.FilterSubjects = "", subjects
			cons, err = stream.UpdateConsumer(ctx, cfg)
		}
	}
	if err != nil {
		return fmt.Errorf("%w: consumer %q: %w", ErrJetStream, b.cfg.durable, err)
	}
	cc, err := cons.Consume(b.importJetStream, jetstream.ConsumeErrHandler(
		func(_ jetstream.ConsumeContext, err error) {
			b.importTrouble(fmt.Errorf("%w: consumer %q: %w", ErrJetStream, b.cfg.durable, err))
		}))
	if err != nil {
		return fmt.Errorf("%w: consume %q: %w", ErrJetStream, b.cfg.durable, err)
	}
	b.consume, b.consumeClosed = cc, cc.Closed()
	return nil
}

// importJetStream publishes the event a JetStream message carries into the
// bus and acknowledges it once the bus has taken it (persisted it, when the
// bus persists), so a crash before that means a redelivery, not a loss. Like
// importCore it drops its own exports, events that crossed the bridge before
// and topics no import pattern matches, and acknowledges them. A message
// that is not an Event is terminated (never redelivered); one the bus
// refuses is redelivered after nakDelay. Ack errors are ignored: a lost ack
// means a redelivery, which the seen set drops.
func (b *Bridge) importJetStream(m jetstream.Msg) {
	if m.Headers().Get(OriginHeader) == b.origin {
		b.n.echoes.Add(1)
		_ = m.Ack()
		return
	}
	e, fail := b.decode(m.Subject(), m.Data(), m.Headers())
	if fail != nil {
		b.importFailed(m.Subject(), fail)
		_ = m.Term()
		return
	}
	if !b.wants(e.Topic) {
		b.n.filtered.Add(1)
		_ = m.Ack()
		return
	}
	if !b.seen.add(e.ID) {
		b.n.duplicates.Add(1)
		_ = m.Ack()
		return
	}
	if err := b.bus.Publish(b.ctx, e); err != nil {
		b.seen.remove(e.ID)
		b.importFailed(m.Subject(), &importFailure{kind: kindRefused, id: e.ID, topic: e.Topic, err: err})
		_ = m.NakWithDelay(nakDelay)
		return
	}
	b.imported()
	_ = m.Ack()
}
