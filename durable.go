package eventbus

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"
)

// CursorStore is an optional extension of Store that keeps the cursors of
// durable consumers (see Durable): for each name, the highest Seq such
// that it and every event before it that the consumer matches has been
// acknowledged. SaveCursor replaces the name's cursor; LoadCursor returns
// it, or 0 for a name never saved. Both are safe for concurrent use.
// MemoryStore implements it (its cursors last as long as it does), and so
// does sqlitestore (in its file).
type CursorStore interface {
	SaveCursor(ctx context.Context, name string, seq uint64) error
	LoadCursor(ctx context.Context, name string) (seq uint64, err error)
}

// Durable makes the subscription a durable consumer named name: the bus
// keeps its cursor in the store, which must implement CursorStore
// (otherwise Subscribe returns ErrNoStore). A new subscription with the
// name resumes after the cursor: it first replays the stored events it
// matches that were not acknowledged, then continues live, with no gap
// (as FromSeq does). A process restart so redelivers only what was not
// acknowledged (at-least-once: deduplicate by ID). A name never saved
// starts at the beginning of the store.
//
// Handle acknowledges an event when its handler returns nil or the event
// has failed its last attempt (see WithRetry); Subscribe's reader calls
// Subscription.Ack. The cursor is written in batches (every 64
// acknowledgements but at most every 10ms, or 100ms after an unwritten
// one at the next acknowledgement) and when the bus shuts down or the
// name's last subscription ends.
//
// Subscriptions of one process with the same durable name share the
// cursor, and only the first of them replays. With WithQueueGroup they
// form a worker pool that survives restarts, and the replay is the
// group's: it is spread over the members like live events (each event to
// the member with the most free room, ties in turn), never replayed once
// per member. A member of that queue group that subscribes while the
// replay runs joins it; every member gets its replayed events, then its
// live ones, in Seq order, and the hand-over to live delivery has no gap
// and no duplicate. (Members with small buffers share the replay finely:
// the first member may fill its mailbox before the next one subscribes.)
// Without WithQueueGroup, or in another queue group, the later
// subscriptions join live. A durable subscription never drops what it has
// not acknowledged: its overflow policy is CatchUp unless it is Block. Its
// FromSeq and Since are ignored: it resumes after its cursor. name is
// 1–256 bytes without control characters, else the error wraps
// ErrInvalidOption.
func Durable(name string) SubscribeOption {
	return subOption(func(c *subConfig) error {
		if name == "" || len(name) > 256 || containsControl(name) {
			return invalidOption("Durable", fmt.Sprintf("%q", name), "must be 1-256 bytes without control characters")
		}
		c.durable = name
		return nil
	})
}

// Cursor batching: a write every cursorBatch acknowledgements, but not
// more often than every cursorGap (at thousands of acknowledgements a
// second, each write would be a transaction competing with the store's
// appends), or at the first acknowledgement cursorAge after an unwritten
// one.
const (
	cursorBatch = 64
	cursorGap   = int64(10 * time.Millisecond)
	cursorAge   = int64(100 * time.Millisecond)
)

// durable is the shared state of the subscriptions with one durable name:
// the events given to them and not yet acknowledged, and the cursor.
type durable struct {
	name  string
	store CursorStore
	b     *Bus

	mu        sync.Mutex
	members   int          // registry: subscriptions with the name
	inflight  []uint64     // assigned (in a mailbox, or owed by a catch-up), not acknowledged; sorted
	assigned  uint64       // the highest Seq assigned
	replaying bool         // the first member replays the stored events up to its mark
	replayer  any          // the *Subscription that replays, or the *groupReplay
	replayPos uint64       // while replaying: every matching event up to it is assigned
	replay    *groupReplay // the last group replay begun (WithQueueGroup): later members join it while it runs
	cursor    uint64
	saved     uint64 // the cursor last written
	savedAt   int64  // b.clock() then
	unsaved   int    // acknowledgements since

	writeMu sync.Mutex // writes in order
	failing bool       // the last write failed (reported once)
}

// openDurable adds s to the durable consumer name, loading its cursor the
// first time. The state outlives its members (the bus keeps it until
// Shutdown): a later first member replays from its cursor, which is
// newer than the store's until written.
//
// replay reports whether s begins a replay, after cursor: it is the only
// member. When it is in queue group group, the replay is a group replay,
// r, which s has joined. For a later member of the same queue group r is
// the group replay it is to join as it is registered (see
// groupReplay.join), if that still runs; any other later member goes
// live.
func (b *Bus) openDurable(name, group string, s *Subscription) (d *durable, replay bool, cursor uint64, r *groupReplay, err error) {
	cs, ok := b.store.(CursorStore)
	if !ok {
		return nil, false, 0, nil, fmt.Errorf("%w: Durable(%q) needs a store that implements CursorStore", ErrNoStore, name)
	}
	b.durMu.Lock()
	defer b.durMu.Unlock()
	if d = b.durables[name]; d == nil {
		c, err := cs.LoadCursor(context.Background(), name)
		if err != nil {
			return nil, false, 0, nil, fmt.Errorf("%w: loading cursor %q: %w", ErrPersist, name, err)
		}
		d = &durable{name: name, store: cs, b: b, cursor: c, saved: c, assigned: c, savedAt: b.clock()}
		if b.durables == nil {
			b.durables = make(map[string]*durable)
		}
		b.durables[name] = d
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.members++; d.members > 1 {
		if r := d.replay; r != nil && group != "" && r.group == group {
			return d, false, 0, r, nil
		}
		return d, false, 0, nil, nil
	}
	// What the last members left unacknowledged is replayed.
	d.members = 0
	d.advance()
	d.members = 1
	d.inflight = d.inflight[:0]
	d.replaying, d.replayPos, d.replayer, d.replay = true, d.cursor, s, nil
	if group != "" {
		r = &groupReplay{dur: d, group: group, changed: make(chan struct{}, 1)}
		r.join(s)
		d.replayer, d.replay = r, r
	}
	return d, true, d.cursor, r, nil
}

// leave is called once when a member is done: for Subscribe when it ends,
// for Handle when its handler has finished. The last one writes the
// cursor.
func (d *durable) leave() {
	d.mu.Lock()
	d.members--
	last := d.members == 0
	d.mu.Unlock()
	if last {
		d.flush()
	}
}

// assign records that seq is given to a member: its sender calls it
// before the event enters the mailbox, so that no acknowledgement comes
// first. Assigning a Seq twice is harmless.
func (d *durable) assign(seq uint64) {
	d.mu.Lock()
	d.assigned = max(d.assigned, seq)
	if n := len(d.inflight); n == 0 || d.inflight[n-1] < seq {
		d.inflight = append(d.inflight, seq)
	} else if i, found := slices.BinarySearch(d.inflight, seq); !found {
		d.inflight = slices.Insert(d.inflight, i, seq)
	}
	d.mu.Unlock()
}

// unassign forgets that seq was given out, when no member can take it
// after all (none matches it any more): it is not the consumer's. It does
// not write the cursor.
func (d *durable) unassign(seq uint64) {
	d.mu.Lock()
	if i, found := slices.BinarySearch(d.inflight, seq); found {
		d.inflight = slices.Delete(d.inflight, i, i+1)
	}
	d.mu.Unlock()
}

// replayed records the progress of the replay by who (the replaying
// member, or the group replay): every event up to seq it matches has been
// assigned; done says it has gone live.
func (d *durable) replayed(who any, seq uint64, done bool) {
	d.mu.Lock()
	if d.replaying && d.replayer == who {
		d.replayPos = max(d.replayPos, seq)
		if done {
			d.replaying, d.replayer = false, nil
		}
	}
	d.mu.Unlock()
}

// ack acknowledges seq and moves the cursor; it writes it when a batch is
// due. It reports false for a Seq not given out or acknowledged already.
func (d *durable) ack(seq uint64) bool {
	d.mu.Lock()
	i, found := slices.BinarySearch(d.inflight, seq)
	if !found {
		d.mu.Unlock()
		return false // not given out, or acknowledged already
	}
	d.inflight = slices.Delete(d.inflight, i, i+1)
	d.advance()
	d.unsaved++
	now := d.b.clock()
	due := d.cursor > d.saved && (d.unsaved >= cursorBatch && now-d.savedAt >= cursorGap || now-d.savedAt >= cursorAge)
	d.mu.Unlock()
	if due {
		d.flush()
	}
	return true
}

// advance recomputes the cursor. d.mu must be held. While a member is
// live, every event it matches up to what the loop has fanned out has
// been assigned (once the replay is done); with no member, only those up
// to the last assigned are known to be.
func (d *durable) advance() {
	front := d.b.loop.fanned.Load()
	if d.members == 0 {
		front = d.assigned
	}
	if d.replaying {
		front = min(front, d.replayPos)
	}
	if len(d.inflight) > 0 {
		front = min(front, d.inflight[0]-1)
	}
	d.cursor = max(d.cursor, front)
}

// flush writes the cursor if it moved since the last write.
func (d *durable) flush() {
	d.writeMu.Lock()
	defer d.writeMu.Unlock()
	d.mu.Lock()
	d.advance()
	c := d.cursor
	if c <= d.saved {
		d.mu.Unlock()
		return
	}
	d.mu.Unlock()
	err := d.store.SaveCursor(context.Background(), d.name, c)
	d.mu.Lock()
	if err == nil {
		d.saved, d.savedAt, d.unsaved = c, d.b.clock(), 0
	}
	d.mu.Unlock()
	switch {
	case err != nil && !d.failing:
		d.failing = true
		d.b.report(fmt.Errorf("%w: saving cursor %q: %w", ErrPersist, d.name, err))
	case err == nil:
		d.failing = false
	}
}

// cursorNow returns the cursor for Stats.
func (d *durable) cursorNow() uint64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.advance()
	return d.cursor
}

// flushDurables writes every durable cursor (Shutdown, after the handlers
// have finished).
func (b *Bus) flushDurables() {
	b.durMu.Lock()
	ds := make([]*durable, 0, len(b.durables))
	for _, d := range b.durables {
		ds = append(ds, d)
	}
	b.durMu.Unlock()
	for _, d := range ds {
		d.flush()
	}
}

// Ack acknowledges e, an event this durable subscription received (see
// Durable): once it and every earlier event the consumer matches are
// acknowledged, the cursor moves past it. Acknowledging an event twice,
// or one not received, does nothing. It may be called after the
// subscription ended, for events read from C since. It is safe for
// concurrent use. For a subscription without Durable it returns an error
// wrapping ErrInvalidOption.
func (s *Subscription) Ack(e Event) error {
	if s.dur == nil {
		return fmt.Errorf("%w: Ack: subscription %s is not Durable", ErrInvalidOption, s.id)
	}
	if s.dur.ack(e.Seq) {
		s.work.acked.Add(1)
	}
	return nil
}

// assign and replayed are nil-safe forms for the delivery paths.
func (s *Subscription) assign(seq uint64) {
	if s.dur != nil {
		s.dur.assign(seq)
	}
}

func (s *Subscription) replayed(seq uint64, done bool) {
	if s.dur != nil {
		s.dur.replayed(s, seq, done)
	}
}

// leaveDurable ends s's membership of its durable name, once.
func (s *Subscription) leaveDurable() {
	if s.dur != nil {
		s.durLeft.Do(s.dur.leave)
	}
}

// handled is the Handle runner's acknowledgement of e.
func (s *Subscription) handled(e *Event) {
	s.work.acked.Add(1)
	if s.dur != nil {
		s.dur.ack(e.Seq)
	}
}

// SaveCursor implements CursorStore.
func (m *MemoryStore) SaveCursor(_ context.Context, name string, seq uint64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	if m.cursors == nil {
		m.cursors = make(map[string]uint64)
	}
	m.cursors[name] = seq
	return nil
}

// LoadCursor implements CursorStore.
func (m *MemoryStore) LoadCursor(_ context.Context, name string) (uint64, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.closed {
		return 0, ErrClosed
	}
	return m.cursors[name], nil
}

var _ CursorStore = (*MemoryStore)(nil)
