package eventbus

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"
)

// report sends err to the error handler and the logger, from the
// reporter's goroutine.
func (b *Bus) report(err error) { b.rep.report(err) }

// maxReports bounds the reports waiting for the error handler.
const maxReports = 1024

// reporter is the one goroutine that calls the error handler and logs
// errors that have no caller, so user code never runs on the loop.
type reporter struct {
	logger  *slog.Logger
	handler func(error)
	mu      sync.Mutex
	queue   []error
	lost    uint64 // reports refused since the last delivered note of it
	stopped bool
	wake    chan struct{}
	stop    chan struct{}
	done    chan struct{}
}

func newReporter(l *slog.Logger, h func(error)) *reporter {
	r := &reporter{logger: l, handler: h, wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	go r.run()
	return r
}

func (r *reporter) report(err error) {
	r.mu.Lock()
	if r.stopped {
		// Late reports (a subscription ended after Shutdown) are delivered
		// by their caller, which is never the loop: it has exited.
		r.mu.Unlock()
		r.deliver(err)
		return
	}
	if len(r.queue) >= maxReports {
		// The error handler is not keeping up: count, and say so once
		// the queue has room again (below), rather than grow without
		// bound.
		r.lost++
		r.mu.Unlock()
		return
	}
	r.queue = append(r.queue, err)
	r.mu.Unlock()
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

func (r *reporter) run() {
	defer close(r.done)
	for {
		stopping := false
		select {
		case <-r.wake:
		case <-r.stop:
			stopping = true
		}
		r.mu.Lock()
		q := r.queue
		r.queue = nil
		if r.lost > 0 {
			q = append(q, fmt.Errorf("%w: %d error reports dropped: the error handler did not keep up", ErrReportsDropped, r.lost))
			r.lost = 0
		}
		r.stopped = stopping
		r.mu.Unlock()
		for _, err := range q {
			r.deliver(err)
		}
		if stopping {
			return
		}
	}
}

func (r *reporter) deliver(err error) {
	attrs := []any{slog.Any("err", err)}
	if ee, ok := errors.AsType[*EventError](err); ok {
		attrs = append(attrs, slog.String("event_id", ee.ID.String()), slog.String("topic", ee.Topic))
	}
	r.logger.Error("eventbus", attrs...)
	if r.handler != nil {
		func() {
			defer func() {
				if v := recover(); v != nil {
					r.logger.Error("eventbus: error handler panicked", slog.Any("panic", v))
				}
			}()
			r.handler(err)
		}()
	}
}

// close delivers what is queued and stops the goroutine.
func (r *reporter) close() {
	close(r.stop)
	<-r.done
}
