package eventbus

import (
	"context"
	"errors"
	"fmt"
	"maps"
)

// Publish validates e, waits (bounded by ctx) for room in the intake,
// and returns once the bus has persisted it (when it is to be persisted)
// and handed it to every matching subscription under that subscription's
// overflow policy. Seq is assigned by the bus goroutine when it takes the
// event from the intake; a zero ID and a zero Timestamp are filled in then
// too, so bus-made IDs follow Seq order.
//
// After Publish returns nil, every subscription that existed before the
// call has the event in its mailbox or counted it as dropped. If the store
// fails, the event is not delivered and the error wraps ErrPersist and the
// store's error. Other errors wrap ErrInvalidTopic, ErrInvalidEventType,
// ErrInvalidPayload, ErrForbidden or ErrClosed, or ErrDeadlock when a
// handler of a Block subscription publishes, with its handler ctx, into
// its own full mailbox (it would wait for itself). ctx limits waiting, not
// work the bus has accepted: if Publish returns a ctx error, the event may
// still be delivered.
func (b *Bus) Publish(ctx context.Context, e Event, opts ...PublishOption) error {
	_, err := b.publish(ctx, &e, opts, pubAck)
	return err
}

// PublishAsync validates e and returns once it is accepted into the bus
// mailbox, waiting (bounded by ctx) for room. It does not wait for
// persistence or delivery: if the store then fails, the event is not
// delivered and the error goes to the error handler. Use Flush to wait.
// Errors are those of Publish except ErrPersist.
func (b *Bus) PublishAsync(ctx context.Context, e Event, opts ...PublishOption) error {
	_, err := b.publish(ctx, &e, opts, 0)
	return err
}

// pubFlags say how publish goes about it.
type pubFlags uint8

const (
	pubAck     pubFlags = 1 << iota // wait for the loop's result (Publish)
	pubChecked                      // e comes from NewEvent, which validated it
	pubHooked                       // the publish hooks have run (publishHooked)
)

// publish checks and enqueues e; with pubAck it waits for the loop and
// returns the Seq assigned. The publisher reads no clock: the loop stamps
// a zero ID and Timestamp when it takes the event, with one clock read
// per batch.
func (b *Bus) publish(ctx context.Context, e *Event, opts []PublishOption, flags pubFlags) (uint64, error) {
	sync := flags&pubAck != 0
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if hs := b.hooks.cur.Load(); hs != nil && len(hs.pub) > 0 && flags&pubHooked == 0 {
		return b.publishHooked(ctx, hs, e, opts, flags) // observe.go
	}
	if err := b.prepare(e, flags&pubChecked != 0); err != nil {
		return 0, err
	}
	if sync && b.blockSubs.Load() > 0 {
		if err := b.selfDeadlock(ctx, e.Topic); err != nil {
			return 0, err
		}
	}
	if b.cfg.authorizer != nil {
		p := PrincipalFrom(ctx)
		if err := b.authorize(ctx, Access{Action: ActionPublish, Principal: p, Topic: e.Topic}); err != nil {
			return 0, err
		}
	}
	var pc pubConfig
	if len(opts) > 0 {
		pc = applyPublishOptions(opts)
	}
	var w *waiter
	if sync {
		w = b.waiters.Get().(*waiter)
	}
	// An acknowledged publisher that may take the loop's turn does not
	// wake the loop: it tries to do the work itself (combine).
	combining := sync && b.combines
	if err := b.in.put(ctx, e, b.shouldPersist(e.Topic, pc), w, !combining); err != nil {
		if w != nil {
			b.waiters.Put(w)
		}
		return 0, err
	}
	if !sync {
		return 0, nil
	}
	if combining {
		b.combine()
	}
	if !w.wait(ctx) { // most often the result is there already
		return 0, ctx.Err()
	}
	seq, err := w.seq, w.err
	w.reset()
	b.waiters.Put(w)
	return seq, err
}

// applyPublishOptions is apart from publish so that the config escaping
// to the heap costs an allocation only when there are options.
func applyPublishOptions(opts []PublishOption) pubConfig {
	var pc pubConfig
	for _, o := range opts {
		if o != nil {
			o.applyPub(&pc)
		}
	}
	return pc
}

// prepare validates e (unless checked), fills a nil Payload and puts a
// set Timestamp in UTC.
func (b *Bus) prepare(e *Event, checked bool) error {
	if !checked {
		if err := e.validate(); err != nil {
			return err
		}
	}
	if e.Payload == nil {
		e.Payload = nullJSON
	}
	if len(e.Metadata) == 0 {
		e.Metadata = nil
	} else {
		// The bus shares an accepted event among subscribers: it must
		// not see the caller's later changes to the map.
		e.Metadata = maps.Clone(e.Metadata)
	}
	if !e.Timestamp.IsZero() {
		e.Timestamp = e.Timestamp.UTC()
	}
	return nil
}

func (b *Bus) shouldPersist(topic string, pc pubConfig) bool {
	if b.store == nil || !b.cfg.persistDefault || pc.noPersist {
		return false
	}
	for _, p := range b.cfg.noPersist {
		if p.matches(topic) {
			return false
		}
	}
	return true
}

// authorize asks the Authorizer, if any. Denials wrap ErrForbidden.
func (b *Bus) authorize(ctx context.Context, a Access) error {
	if b.cfg.authorizer == nil {
		return nil
	}
	err := b.cfg.authorizer.Authorize(ctx, a)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrForbidden):
		return err
	}
	return fmt.Errorf("%w: %w", ErrForbidden, err)
}

// Flush waits until every event accepted before the call has been
// persisted and handed to its subscriptions. It does not wait for
// subscribers to read them. It returns ErrClosed after Shutdown, or
// ctx.Err() if ctx ends first.
func (b *Bus) Flush(ctx context.Context) error {
	if b.in.isClosed() {
		return ErrClosed
	}
	done := make(chan struct{})
	if !b.in.control(control{kind: ctlFlush, done: done}) {
		return ErrClosed
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// combine is an acknowledged publisher's turn at the loop's work: if no
// one holds loop.mu, it processes what is waiting, its own event included,
// so an acknowledged publish on an idle bus costs no goroutine hand-off.
// It never waits for a subscriber: at a mailbox it would have to wait for,
// it leaves the rest of the batch to the loop goroutine. If loop.mu is
// held, its holder will see the event (or wake the loop for it). Only a
// bus whose store cannot block (none, or a MemoryStore) lets publishers
// combine (Bus.combines), so Publish still returns at its ctx whatever the
// store does.
func (b *Bus) combine() {
	l := b.loop
	if !l.mu.TryLock() {
		return
	}
	l.runBatch(publisherTurn)
	l.mu.Unlock()
	b.in.kick()
}
