package eventbustest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/choiros/eventbus"
)

// DefaultTimeout is how long Expect and ExpectExactly wait for events unless
// [Recorder.SetTimeout] says otherwise.
const DefaultTimeout = 5 * time.Second

const (
	// endGrace is how long the cleanup of New waits for subscriptions whose
	// ctx has ended (t.Context() is cancelled just before cleanup) to leave
	// the bus before it calls the rest left open.
	endGrace = time.Second
	// shutdownTimeout bounds the shutdown of a bus made by New.
	shutdownTimeout = 10 * time.Second
)

// TB is the part of [testing.TB] the helpers use. *testing.T, *testing.B
// and *testing.F satisfy it; a test of a helper may pass a fake. The helpers
// return after calling Fatalf, so a fake need not stop the goroutine.
type TB interface {
	Helper()
	Errorf(format string, args ...any)
	Fatalf(format string, args ...any)
	Cleanup(func())
}

// New returns a bus made with opts that is shut down when the test ends.
// At cleanup, after the cleanups registered later (a [Recorder]'s own
// subscription among them) have run, it fails the test with Errorf if a
// subscription is still open, naming its patterns; subscriptions whose ctx
// has ended (such as one made with t.Context()) get up to a second to
// leave first. It also fails the test if the shutdown takes more than 10 s.
// A bad option fails the test with Fatalf, and New then returns nil.
func New(t TB, opts ...eventbus.Option) *eventbus.Bus {
	t.Helper()
	bus, err := eventbus.New(opts...)
	if err != nil {
		t.Fatalf("eventbustest.New: %v", err)
		return nil
	}
	t.Cleanup(func() {
		if st := waitUnsubscribed(bus, endGrace); st.Subscriptions > 0 {
			t.Errorf("eventbustest: the test left %d subscription(s) open on the bus; patterns: %s",
				st.Subscriptions, describePatterns(st.Patterns))
		}
		ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
		defer cancel()
		if err := bus.Shutdown(ctx); err != nil {
			t.Errorf("eventbustest: shutting the bus down: %v", err)
		}
	})
	return bus
}

// waitUnsubscribed returns the bus's stats once it has no subscription, or
// after grace.
func waitUnsubscribed(bus *eventbus.Bus, grace time.Duration) eventbus.Stats {
	st := bus.Stats()
	if st.Subscriptions == 0 {
		return st
	}
	deadline := time.NewTimer(grace)
	defer deadline.Stop()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-deadline.C:
			return bus.Stats()
		case <-tick.C:
			if st = bus.Stats(); st.Subscriptions == 0 {
				return st
			}
		}
	}
}

// describePatterns lists patterns and their subscription counts, sorted.
func describePatterns(pats map[string]int) string {
	keys := make([]string, 0, len(pats))
	for p := range pats {
		keys = append(keys, p)
	}
	slices.Sort(keys)
	parts := make([]string, len(keys))
	for i, p := range keys {
		parts[i] = fmt.Sprintf("%q×%d", p, pats[p])
	}
	return strings.Join(parts, ", ")
}

// A Recorder keeps every event published on a bus whose topic matches its
// pattern, from the moment [Record] returns until the test ends, for
// [Expect] and [ExpectExactly] to check. Its methods are safe for
// concurrent use.
type Recorder struct {
	bus     *eventbus.Bus
	pattern string
	sub     *eventbus.Subscription
	done    chan struct{} // closed when the reader has drained the ended subscription

	mu      sync.Mutex
	events  []eventbus.Event // everything received, in order
	next    int              // the first event no Expect has consumed
	arrived chan struct{}    // closed (and replaced) when an event arrives
	timeout time.Duration
}

// Record subscribes a Recorder to pattern on bus. The subscription uses
// the Block policy and is read at once into a list without bound, so the
// recorder misses nothing published after Record returns; it is closed at
// the test's cleanup (before the cleanup of [New]). A subscription that
// fails (an invalid pattern, a closed bus) fails the test with Fatalf, and
// Record then returns nil.
func Record(t TB, bus *eventbus.Bus, pattern string) *Recorder {
	t.Helper()
	sub, err := bus.Subscribe(context.Background(), pattern,
		eventbus.WithOverflow(eventbus.Block), eventbus.WithName("eventbustest.Record("+pattern+")"))
	if err != nil {
		t.Fatalf("eventbustest.Record(%q): %v", pattern, err)
		return nil
	}
	r := &Recorder{
		bus: bus, pattern: pattern, sub: sub,
		done: make(chan struct{}), arrived: make(chan struct{}), timeout: DefaultTimeout,
	}
	go r.read()
	t.Cleanup(r.close)
	return r
}

// read moves events from the subscription to the list until it ends.
func (r *Recorder) read() {
	defer close(r.done)
	for e := range r.sub.C() {
		r.mu.Lock()
		r.events = append(r.events, e)
		close(r.arrived)
		r.arrived = make(chan struct{})
		r.mu.Unlock()
	}
}

// close ends the subscription and waits for the reader.
func (r *Recorder) close() {
	_ = r.sub.Close()
	<-r.done
}

// SetTimeout sets how long Expect and ExpectExactly wait on r from now on.
// Default: DefaultTimeout.
func (r *Recorder) SetTimeout(d time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.timeout = d
}

// Events returns a copy of every event r has received so far, consumed or
// not, in the order received.
func (r *Recorder) Events() []eventbus.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.events)
}

// snapshot returns the events from index from on, the channel closed at the
// next arrival, and whether the reader has finished.
func (r *Recorder) snapshot(from int) ([]eventbus.Event, <-chan struct{}, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	select {
	case <-r.done:
		return r.events[from:len(r.events):len(r.events)], r.arrived, true
	default:
		return r.events[from:len(r.events):len(r.events)], r.arrived, false
	}
}

// Expect waits until events matching matchers, one event per matcher, have
// arrived on rec in the matchers' order; other events may come before,
// between and after them. It starts after the events earlier calls on rec
// consumed, and consumes the events up to the last one it matched. If they
// do not arrive within rec's timeout, or rec's subscription ends first, it
// fails the test with Fatalf, listing what each matcher matched and every
// event that did arrive.
func Expect(t TB, rec *Recorder, matchers ...Matcher) {
	t.Helper()
	if err := rec.expect(matchers, false); err != nil {
		t.Fatalf("%v", err)
	}
}

// ExpectExactly waits until len(matchers) events have arrived on rec after
// those earlier calls consumed, and checks that the first matches the
// first matcher, the second the second, and so on, and that nothing else
// arrived: before it succeeds it flushes the bus (see [eventbus.Bus.Flush])
// and waits until rec has read everything delivered to it, so an extra
// event published before the call is caught. It consumes the events it
// matched. On a mismatch, an extra event, a timeout or the end of rec's
// subscription it fails the test with Fatalf, listing what did arrive.
func ExpectExactly(t TB, rec *Recorder, matchers ...Matcher) {
	t.Helper()
	if err := rec.expect(matchers, true); err != nil {
		t.Fatalf("%v", err)
	}
}

// expect is Expect (exact false) and ExpectExactly (exact true); it returns
// the failure to report.
func (r *Recorder) expect(ms []Matcher, exact bool) error {
	r.mu.Lock()
	start, timeout := r.next, r.timeout
	r.mu.Unlock()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	name := "Expect"
	if exact {
		name = "ExpectExactly"
	}
	fail := func(evs []eventbus.Event, at []int, why string) error {
		return failure(name, r.pattern, ms, evs, at, why)
	}
	for {
		evs, arrived, ended := r.snapshot(start)
		var at []int
		if exact {
			for i := 0; i < len(ms) && i < len(evs); i++ {
				if !ms[i].Match(evs[i]) {
					return fail(evs, at, fmt.Sprintf("event #%d does not match matcher %d, %v", i+1, i+1, ms[i]))
				}
				at = append(at, i)
			}
			if len(evs) > len(ms) {
				return fail(evs, at, fmt.Sprintf("%d more event(s) arrived than the %d expected", len(evs)-len(ms), len(ms)))
			}
		} else {
			at = matchInOrder(ms, evs)
		}
		if len(at) == len(ms) {
			if exact {
				if err := r.settle(deadline.C); err != nil {
					return fail(evs, at, err.Error())
				}
				if evs, _, _ = r.snapshot(start); len(evs) > len(ms) {
					return fail(evs, at, fmt.Sprintf("%d more event(s) arrived than the %d expected", len(evs)-len(ms), len(ms)))
				}
			}
			r.mu.Lock()
			if len(at) > 0 {
				r.next = start + at[len(at)-1] + 1
			}
			r.mu.Unlock()
			return nil
		}
		if ended {
			return fail(evs, at, fmt.Sprintf("the recorder's subscription ended (%v) before matcher %d, %v, matched", r.sub.Err(), len(at)+1, ms[len(at)]))
		}
		select {
		case <-arrived:
		case <-r.done: // the next snapshot sees the end
		case <-deadline.C:
			evs, _, _ = r.snapshot(start)
			if !exact {
				at = matchInOrder(ms, evs)
			}
			return fail(evs, at, fmt.Sprintf("matcher %d, %v, not matched within %v", len(at)+1, ms[min(len(at), len(ms)-1)], timeout))
		}
	}
}

// settle waits until everything published before it has been delivered to
// r's subscription and read into the list, or until timeout fires.
func (r *Recorder) settle(timeout <-chan time.Time) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		select {
		case <-timeout:
			cancel()
		case <-stop:
		}
	}()
	if err := r.bus.Flush(ctx); err != nil && !errors.Is(err, eventbus.ErrClosed) {
		return fmt.Errorf("flushing the bus to look for more events: %w", err)
	}
	want := r.sub.Stats().Delivered
	for {
		r.mu.Lock()
		have, arrived := uint64(len(r.events)), r.arrived
		r.mu.Unlock()
		if have >= want {
			return nil
		}
		select {
		case <-arrived:
		case <-r.done:
			return nil
		case <-ctx.Done():
			return errors.New("timed out waiting for the recorder to read what the bus delivered to it")
		}
	}
}

// matchInOrder returns the indexes in evs of the events matching ms in
// order, each matcher taking the earliest event after the previous one's
// (which finds a match whenever one exists); it stops at the first matcher
// that matches nothing.
func matchInOrder(ms []Matcher, evs []eventbus.Event) []int {
	var at []int
	i := 0
	for _, m := range ms {
		for i < len(evs) && !m.Match(evs[i]) {
			i++
		}
		if i == len(evs) {
			break
		}
		at = append(at, i)
		i++
	}
	return at
}

// failure formats a failed expectation: why, what each matcher matched, and
// every event that arrived since the expectation started.
func failure(name, pattern string, ms []Matcher, evs []eventbus.Event, at []int, why string) error {
	var b strings.Builder
	fmt.Fprintf(&b, "eventbustest.%s on %q: %s\n", name, pattern, why)
	fmt.Fprintf(&b, "matchers (%d):\n", len(ms))
	for i, m := range ms {
		if i < len(at) {
			fmt.Fprintf(&b, "  %d. %v: matched event #%d\n", i+1, m, at[i]+1)
		} else {
			fmt.Fprintf(&b, "  %d. %v: not matched\n", i+1, m)
		}
	}
	if len(evs) == 0 {
		b.WriteString("no event arrived")
		return errors.New(b.String())
	}
	fmt.Fprintf(&b, "arrived (%d):", len(evs))
	for i, e := range evs {
		fmt.Fprintf(&b, "\n  #%d %s", i+1, formatEvent(e))
	}
	return errors.New(b.String())
}

// maxPayload is how much of a payload a failure message shows.
const maxPayload = 200

// formatEvent describes e in one line: seq, topic, type, source and payload.
func formatEvent(e eventbus.Event) string {
	p := string(e.Payload)
	if len(p) > maxPayload {
		p = p[:maxPayload] + fmt.Sprintf("… (%d bytes)", len(e.Payload))
	}
	if p == "" {
		p = "null"
	}
	return fmt.Sprintf("seq=%d topic=%s type=%s source=%q payload=%s", e.Seq, e.Topic, e.Type, e.Source, p)
}
