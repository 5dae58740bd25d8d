package eventbus

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync/atomic"
	"time"
)

// Retry is how a Handle subscription retries an event its handler failed
// (returned an error or panicked): up to Max attempts in all, the n-th
// retry after Backoff × 2^(n-1), capped at MaxBackoff, with jitter (a
// random wait between half that and all of it). The zero MaxBackoff means
// no cap.
type Retry struct {
	Max        int           // attempts in all, at least 1
	Backoff    time.Duration // wait before the first retry, not negative
	MaxBackoff time.Duration // the longest wait; 0: no cap
}

// WithRetry makes a Handle subscription retry a failed event (see Retry).
// Later events of the subscription wait meanwhile, so order is kept. The
// attempt number is in the handler's ctx (see Attempt). After the last
// attempt the event goes to the WithDeadLetter topic, if set, and is
// reported to the error handler either way; earlier failures are only
// counted (Retried). Shutdown cancels a pending backoff at once: that
// event is not acknowledged, and failures after Shutdown began are not
// retried. Subscribe (which has no handler) refuses it with
// ErrInvalidOption, as it does a negative Backoff or MaxBackoff, Max below
// 1, or MaxBackoff below Backoff. Default: no retry (a handler error is
// the last attempt).
func WithRetry(r Retry) SubscribeOption {
	return subOption(func(c *subConfig) error {
		switch {
		case r.Max < 1:
			return invalidOption("WithRetry", r, "Max must be at least 1")
		case r.Backoff < 0 || r.MaxBackoff < 0:
			return invalidOption("WithRetry", r, "negative backoff")
		case r.MaxBackoff > 0 && r.MaxBackoff < r.Backoff:
			return invalidOption("WithRetry", r, "MaxBackoff below Backoff")
		}
		c.retry = &r
		return nil
	})
}

// WithDeadLetter makes a Handle subscription publish an event its handler
// failed for the last time (see WithRetry) to topic: a copy with a new
// ID, Seq and Timestamp and with Metadata eventbus-original-topic, eventbus-error
// (the error text, at most 1024 bytes) and eventbus-attempts added. The
// dead letter is published like any event (persisted by default), from
// the handler's goroutine; one the bus refuses (after Shutdown began, or
// an invalid Metadata) is reported. The event counts as acknowledged
// either way. topic must be a valid topic, and the option is for Handle
// only; otherwise the error wraps ErrInvalidOption. Default: none.
func WithDeadLetter(topic string) SubscribeOption {
	return subOption(func(c *subConfig) error {
		if err := ValidateTopic(topic); err != nil {
			return fmt.Errorf("%w: WithDeadLetter(%q): %w", ErrInvalidOption, topic, err)
		}
		c.deadLetter = topic
		return nil
	})
}

// Dead-letter Metadata keys.
const (
	metaOriginalTopic = "eventbus-original-topic" // the topic the event was published to
	metaError         = "eventbus-error"          // the last attempt's error text
	metaAttempts      = "eventbus-attempts"       // attempts made, in decimal
)

// maxDeadLetterError bounds the error text a dead letter carries.
const maxDeadLetterError = 1024

// work is a Handle subscription's failure policy and counters.
type work struct {
	retry      Retry // Max 1 without WithRetry
	deadLetter string

	acked, retried, deadLettered atomic.Uint64
}

func (w *work) init(c *subConfig, handle bool) error {
	if !handle {
		switch {
		case c.retry != nil:
			return invalidOption("WithRetry", *c.retry, "for Handle only")
		case c.deadLetter != "":
			return invalidOption("WithDeadLetter", c.deadLetter, "for Handle only")
		}
	}
	w.retry = Retry{Max: 1}
	if c.retry != nil {
		w.retry = *c.retry
	}
	w.deadLetter = c.deadLetter
	return nil
}

// attemptKey is the ctx key of the handler's attempt counter.
type attemptKey struct{}

// attempt is a handler runner's attempt counter, in its ctx once (so a
// retry costs no context).
type attempt struct {
	n     atomic.Int32
	timer *time.Timer // the backoff; made by the first retry
}

func withAttempt(ctx context.Context) (context.Context, *attempt) {
	a := new(attempt)
	return context.WithValue(ctx, attemptKey{}, a), a
}

// Attempt returns which attempt at its event a handler's run is: 1 the
// first time, 2 for the first retry (see WithRetry). Outside a handler's
// ctx it returns 0. The count belongs to the run that ctx was given to:
// read it from the handler's goroutine, not after the handler returned.
func Attempt(ctx context.Context) int {
	if a, ok := ctx.Value(attemptKey{}).(*attempt); ok {
		return int(a.n.Load())
	}
	return 0
}

// backoff returns the wait before retry n (1 for the first), jittered.
func (r *Retry) backoff(n int) time.Duration {
	d := r.Backoff
	for i := 1; i < n && d > 0; i++ {
		if r.MaxBackoff > 0 && d >= r.MaxBackoff || d > time.Duration(1<<62) {
			break
		}
		d *= 2
	}
	if r.MaxBackoff > 0 {
		d = min(d, r.MaxBackoff)
	}
	if d <= 1 {
		return d
	}
	half := d / 2
	return half + rand.N(d-half+1)
}

// failed deals with an event whose handler run failed with err: it retries
// it as the subscription's Retry says, then dead-letters and reports it
// (acknowledged), unless Shutdown cancels a backoff first (reported, not
// acknowledged).
func (b *Bus) failed(ctx context.Context, s *Subscription, a *attempt, h func(context.Context, Event) error, e *Event, err error) {
	w := &s.work
	n := 1
	for ; n < w.retry.Max; n++ {
		if !a.wait(b, w.retry.backoff(n)) {
			b.report(&EventError{ID: e.ID, Topic: e.Topic, Err: fmt.Errorf("%w: retry cancelled by Shutdown after %d attempts: %w", ErrClosed, n, err)})
			return
		}
		w.retried.Add(1)
		a.n.Store(int32(n + 1))
		start := b.clock()
		err = callHandler(ctx, h, *e)
		s.runtimeHst.observe(b.clock() - start)
		if err == nil {
			s.handled(e)
			return
		}
	}
	s.handled(e)
	if w.deadLetter != "" {
		if derr := b.deadLetter(ctx, w.deadLetter, e, err, n); derr != nil {
			b.report(&EventError{ID: e.ID, Topic: e.Topic, Err: fmt.Errorf("%w (dead letter to %q refused: %w)", err, w.deadLetter, derr)})
			return
		}
		w.deadLettered.Add(1)
	}
	b.report(&EventError{ID: e.ID, Topic: e.Topic, Err: err})
}

// wait waits d, or less if Shutdown begins (then it reports false).
func (a *attempt) wait(b *Bus, d time.Duration) bool {
	select {
	case <-b.closing:
		return false
	default:
	}
	if d <= 0 {
		return true
	}
	if a.timer == nil {
		a.timer = time.NewTimer(d)
	} else {
		a.timer.Reset(d)
	}
	select {
	case <-a.timer.C:
		return true
	case <-b.closing:
		a.timer.Stop()
		return false
	}
}

// deadLetter publishes a copy of e to topic with the failure in Metadata.
func (b *Bus) deadLetter(ctx context.Context, topic string, e *Event, err error, attempts int) error {
	msg := err.Error()
	if len(msg) > maxDeadLetterError {
		msg = msg[:maxDeadLetterError]
	}
	md := make(map[string]string, len(e.Metadata)+3)
	for k, v := range e.Metadata {
		md[k] = v
	}
	md[metaOriginalTopic] = e.Topic
	md[metaError] = msg
	md[metaAttempts] = strconv.Itoa(attempts)
	dl := Event{Type: e.Type, Topic: topic, Source: e.Source, Payload: e.Payload, Metadata: md}
	return b.PublishAsync(ctx, dl)
}
