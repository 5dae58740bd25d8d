package eventbus

import (
	"context"
	"fmt"
	"runtime/debug"
	"time"
)

// runHandler is the goroutine of a Handle subscription: it calls h for each
// event in order, recovering errors and panics, until the mailbox closes.
// Its ctx is cancelled with ErrClosed when it returns, or earlier when the
// bus gives up waiting for handlers at Shutdown; events left then are
// dropped and counted.
func (b *Bus) runHandler(s *Subscription, base context.Context, h func(context.Context, Event) error) {
	ctx, cancel := context.WithCancelCause(context.WithValue(context.WithoutCancel(base), subKey{}, s))
	ctx, att := withAttempt(ctx)
	stop := context.AfterFunc(b.root, func() { cancel(ErrClosed) })
	defer func() {
		stop()
		cancel(ErrClosed)
		s.leaveDurable()
	}()
	w := b.watch
	if w != nil {
		w.add(s)
		defer w.remove(s)
	}
	var hs *hookSet
	call := HandlerFunc(h)
	if len(s.mw) > 0 {
		call = chain(nil, s.mw, h)
	}
	for {
		env, ok := s.mb.take()
		if !ok {
			return
		}
		if ctx.Err() != nil {
			s.dropped.Add(1)
			b.dropped.Add(1)
			continue
		}
		if cur := b.hooks.cur.Load(); cur != hs {
			hs, call = cur, chain(cur, s.mw, h)
		}
		start := b.clock()
		if env.at != 0 {
			s.latency.observe(start - env.at)
		}
		att.n.Store(1)
		if w != nil {
			s.run.begin(start, &env.e)
		}
		err := callHandler(ctx, call, env.e)
		end := b.clock()
		s.runtimeHst.observe(end - start)
		if w != nil && s.run.finish() {
			b.report(s.stallError(env.e.ID, env.e.Topic, time.Duration(end-start), true))
		}
		if err != nil {
			// Retries go through the same middleware, so each attempt is
			// wrapped.
			b.failed(ctx, s, att, call, &env.e, err) // retry.go: retries, dead letter, report
			continue
		}
		s.handled(&env.e)
	}
}

// callHandler runs h, turning an error or a panic into an error wrapping
// ErrHandler.
func callHandler(ctx context.Context, h HandlerFunc, e Event) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("%w: %w", ErrHandler, &PanicError{Value: v, Stack: debug.Stack()})
		}
	}()
	if err := h(ctx, e); err != nil {
		return fmt.Errorf("%w: %w", ErrHandler, err)
	}
	return nil
}
