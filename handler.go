package eventbus

import (
	"context"
	"fmt"
	"runtime/debug"
)

// runHandler is the goroutine of a Handle subscription: it calls h for each
// event in order, recovering errors and panics, until the mailbox closes.
// Its ctx is cancelled with ErrClosed when it returns, or earlier when the
// bus gives up waiting for handlers at Shutdown; events left then are
// dropped and counted.
func (b *Bus) runHandler(s *Subscription, base context.Context, h func(context.Context, Event) error) {
	ctx, cancel := context.WithCancelCause(context.WithoutCancel(base))
	ctx, att := withAttempt(ctx)
	stop := context.AfterFunc(b.root, func() { cancel(ErrClosed) })
	defer func() {
		stop()
		cancel(ErrClosed)
		s.leaveDurable()
	}()
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
		start := b.clock()
		if env.at != 0 {
			s.latency.observe(start - env.at)
		}
		att.n.Store(1)
		err := callHandler(ctx, h, env.e)
		s.runtimeHst.observe(b.clock() - start)
		if err != nil {
			b.failed(ctx, s, att, h, &env.e, err) // retry.go: retries, dead letter, report
			continue
		}
		s.handled(&env.e)
	}
}

// callHandler runs h, turning an error or a panic into an error wrapping
// ErrHandler.
func callHandler(ctx context.Context, h func(context.Context, Event) error, e Event) (err error) {
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
