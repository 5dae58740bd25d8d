package eventbus

import (
	"context"
	"fmt"
	"time"
)

// lagCount is the loop's account of one lagging episode: the persisted,
// matching events with Seq above mark that the loop skipped because the
// catch-up goroutine is to deliver them (owed), and those the loop handed
// over itself. At the rejoin, what the goroutine reports it delivered
// above mark settles the account; the rest was lost (past the store's
// retention) and is counted as dropped.
type lagCount struct {
	counting bool
	mark     uint64
	since    time.Time // Since: only events stamped at or after it are replayed
	owed     uint64
	handed   uint64
}

// wants reports whether the catch-up goroutine would deliver e (its Since
// filter); matching patterns is checked apart.
func (l *lagCount) wants(e *Event) bool {
	return l.since.IsZero() || !e.Timestamp.Before(l.since)
}

// catchUpPage is how many events the catch-up goroutine reads per query.
const catchUpPage = 256

// catchUp is the goroutine that feeds a lagging subscription from the store,
// starting after cursor (and at since, if set), until the bus loop takes it
// back live (rejoin). It is the mailbox's only sender while it runs. It counts the
// events it delivers above mark for the loop's lagCount.
func (b *Bus) catchUp(s *Subscription, cursor uint64, since time.Time, mark uint64) {
	var caught uint64 // events delivered above mark (see lagCount)
	var failing bool  // the store's last Query failed
	var backoff *time.Timer
	defer func() {
		if backoff != nil {
			backoff.Stop()
		}
	}()
	// wait pauses after a fruitless round so a stuck store is not polled hot.
	wait := func() bool {
		if backoff == nil {
			backoff = time.NewTimer(10 * time.Millisecond)
		} else {
			backoff.Reset(10 * time.Millisecond)
		}
		select {
		case <-backoff.C:
			return true
		case <-s.done:
			return false
		}
	}
	for {
		select {
		case <-s.done:
			s.closeMailbox()
			return
		default:
		}
		// Only what the loop has fanned out: the store has an event
		// before the loop has done its accounts of it for s (whether a
		// queue group member owes it, a durable consumer's assignment),
		// which must come first.
		front := b.loop.fanned.Load()
		pats := *s.pats.Load()
		q := Query{Pattern: "*", Since: since, AfterSeq: cursor, Limit: catchUpPage}
		if len(pats) == 1 {
			q.Pattern = pats[0].src
		}
		events, err := b.store.Query(context.Background(), q)
		if err != nil {
			if !failing { // once per failure episode, not every retry
				b.report(fmt.Errorf("eventbus: catch-up of subscription %s: %w", s.id, err))
			}
			failing = true
			if !wait() {
				s.closeMailbox()
				return
			}
			continue
		}
		failing = false
		events = routed(events, front)
		for i := range events {
			e := &events[i]
			if s.matches(e.Topic) && s.owes(e.Seq, mark) {
				if e.Seq <= mark {
					s.assign(e.Seq) // before the reader can ack it; above mark the loop did
				}
				if !s.sendWait(e, 0, nil, nil) {
					s.closeMailbox()
					return
				}
				s.delivered.Add(1)
				b.delivered.Add(1)
				if e.Seq > mark {
					caught++
				}
			}
			cursor = e.Seq
			if s.dur != nil {
				s.replayed(cursor, cursor >= mark) // a durable cursor moves during a long replay
			}
		}
		s.replayed(cursor, cursor >= mark) // past mark, the loop assigns what it owes
		if len(events) == catchUpPage {
			continue
		}
		r, ok := b.rejoin(control{sub: s, cursor: cursor, caught: caught})
		switch {
		case !ok || r.ended:
			s.finish(ErrClosed)
			s.closeMailbox()
			return
		case r.live:
			s.replayed(mark, true)
			return
		}
		progressed := r.cursor > cursor
		cursor = r.cursor
		if !progressed && len(events) == 0 && !wait() {
			s.closeMailbox()
			return
		}
	}
}

// routed cuts a page of stored events (in Seq order) after front, the
// last Seq the loop has fanned out: the store may hold events the loop
// has appended and not yet routed, so not yet chosen a queue group member
// for. A cut page is not full: the reader asks to rejoin, and the loop
// hands over the rest from the tail or sends it on.
func routed(events []Event, front uint64) []Event {
	for i := len(events); i > 0; i-- {
		if events[i-1].Seq <= front {
			return events[:i]
		}
	}
	return events[:0]
}

type rejoinReply struct {
	live   bool   // the loop is the sender again
	ended  bool   // the subscription has ended
	cursor uint64 // otherwise: the catch-up goroutine goes on after cursor
}

// rejoin asks the loop to take c.sub (or c.replay's members) back live
// after c.cursor. It reports false if the loop has stopped.
func (b *Bus) rejoin(c control) (rejoinReply, bool) {
	c.kind, c.reply = ctlRejoin, make(chan rejoinReply, 1)
	if !b.in.control(c) {
		return rejoinReply{}, false
	}
	return <-c.reply, true
}

// rejoin is the loop's side of a catch-up goroutine's request to go
// live. Every event up to l.processed has been fanned out; those after
// cursor that s missed are in the tail or the store. If the tail holds
// them all and they fit in the mailbox, the loop delivers them and s is
// live again; otherwise the catch-up goroutine goes on from the last one
// delivered.
func (l *loop) rejoin(s *Subscription, cursor, caught uint64) rejoinReply {
	b, d := l.b, &s.dl
	if d.ended {
		return rejoinReply{ended: true}
	}
	// Only stored events are owed to a lagging subscription: when none
	// came after cursor, it goes live whatever the tail holds.
	if cursor < l.processed && cursor < l.stored {
		if !l.tail.covers(cursor + 1) {
			return rejoinReply{cursor: cursor}
		}
		for seq, env := range l.tail.since(cursor + 1) {
			if env == nil || !s.matches(env.e.Topic) || !d.lag.wants(&env.e) || !s.owes(seq, d.lag.mark) {
				cursor = seq
				continue
			}
			if seq <= d.lag.mark {
				s.assign(seq) // before the reader can ack it
			}
			if !s.trySend(&env.e, env.at) {
				return rejoinReply{cursor: cursor}
			}
			s.delivered.Add(1)
			b.delivered.Add(1)
			if seq > d.lag.mark {
				d.lag.handed++
			}
			cursor = seq
		}
	}
	d.lagging = false
	s.isLagging.Store(false)
	s.forgetOwed()
	d.lastSeq = max(cursor, l.processed)
	if got := caught + d.lag.handed; d.lag.counting && d.lag.owed > got {
		// The store no longer held them: pruned by its retention before
		// the catch-up goroutine got there.
		lost := d.lag.owed - got
		s.dropped.Add(lost)
		b.dropped.Add(lost)
		b.report(fmt.Errorf("%w: subscription %s %q lost %d events that left the store before it caught up", ErrSlowConsumer, s.id, s.name, lost))
	}
	d.lag = lagCount{}
	return rejoinReply{live: true}
}
