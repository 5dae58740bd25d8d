package eventbus

import (
	"context"
	"fmt"
	"reflect"
	"sync"
	"time"
)

// groupReplay is the replay of a resuming durable queue group (Durable
// with WithQueueGroup): one catch-up reader, its own goroutine, reads the
// stored events after the consumer's cursor and spreads them over the
// group's members as the loop spreads live events — each to one member,
// the one with the most free room, ties in turn — until it has caught up
// and the loop takes every member live at once (the rejoin), so each
// member gets its replayed events, then its live ones, in Seq order.
//
// The first member begins it; a later member of the queue group with the
// durable name joins it while it runs, as it is registered (so it is
// lagging from the start and gets nothing from the loop). From its join
// to the rejoin a member lags: the reader is its mailbox's sender, and
// what the loop chooses one of the members for is owed to the replay,
// which delivers it to whichever member has room.
type groupReplay struct {
	dur   *durable
	group string // the queue group's name

	// lag is the loop's account of what it skipped above the mark for
	// the members (see lagCount); only a holder of loop.mu touches it.
	lag lagCount

	// turn counts the replay's choices, for ties; it belongs to the
	// members' sender: the reader, or the loop at the rejoin while the
	// reader waits for its answer.
	turn uint64

	owed owedSeqs // above the mark: what the loop chose a member for

	mu       sync.Mutex
	members  []*Subscription // joined, in order
	finished bool            // the members went live, or every one ended: no more joins
	changed  chan struct{}   // cap 1: a member joined
}

// join adds s, which nobody else touches yet, to the replay, lagging,
// and reports whether it could: not once the replay has finished. A
// later member joins under the registry's mutex, before it is added to
// the route index.
func (r *groupReplay) join(s *Subscription) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.finished {
		return false
	}
	s.dl.lagging = true
	s.isLagging.Store(true)
	s.dl.replay = r
	r.members = append(r.members, s)
	select {
	case r.changed <- struct{}{}:
	default:
	}
	return true
}

// active returns the members that have not ended, and closes the
// mailboxes of those that have. Only the members' sender calls it. With
// finishIfNone, when there are none it marks the replay finished, so
// none can join.
func (r *groupReplay) active(out []*Subscription, finishIfNone bool) []*Subscription {
	r.mu.Lock()
	out = out[:0]
	var ended []*Subscription
	for _, s := range r.members {
		if s.Err() == nil {
			out = append(out, s)
		} else {
			ended = append(ended, s)
		}
	}
	if len(out) == 0 && finishIfNone {
		r.finished = true
	}
	r.mu.Unlock()
	for _, s := range ended {
		s.closeMailbox() // once it has ended, nothing more enters
	}
	return out
}

// stop finishes the replay without a rejoin and closes every member's
// mailbox: the reader's end when every member has ended or the loop has
// stopped.
func (r *groupReplay) stop() {
	r.mu.Lock()
	r.finished = true
	members := r.members
	r.mu.Unlock()
	for _, s := range members {
		s.closeMailbox()
	}
}

// owe records that the loop chose a member for seq while the replay
// runs. l.mu must be held.
func (r *groupReplay) owe(seq uint64) {
	r.dur.assign(seq) // before it can be acknowledged
	r.owed.add(seq)
}

// owes reports whether the replay delivers the stored event seq: every
// one at or below mark (if a member matches it), and above it those the
// loop chose a member for.
func (r *groupReplay) owes(seq, mark uint64) bool { return seq <= mark || r.owed.has(seq) }

// roomiest returns, of the members in subs that have not ended and
// match e, the one with the most free room (ties in turn), and that room;
// nil if none does. Only the members' sender calls it.
func (r *groupReplay) roomiest(subs []*Subscription, e *Event) (best *Subscription, room int) {
	n := len(subs)
	for k := range n {
		s := subs[(int(r.turn%uint64(n))+k)%n]
		if s.Err() != nil || !s.matches(e.Topic) {
			continue
		}
		if free := s.mb.bound - s.mb.pending(); best == nil || free > room {
			best, room = s, free
		}
	}
	return best, room
}

// sent counts e, just given to member s by the replay (mark is the
// replay's), and moves the turn on.
func (r *groupReplay) sent(s *Subscription, e *Event, mark uint64) {
	r.turn++
	s.delivered.Add(1)
	s.b.delivered.Add(1)
	if e.Seq <= mark && s.group != nil {
		s.group.delivered.Add(1) // above the mark the loop counted its choice
	}
}

// startReplay starts r's reader after cursor. Events at or below the
// mark are replayed; those the loop fans out from now on (above it) it
// accounts for in r.lag. l.mu must be held.
func (l *loop) startReplay(r *groupReplay, cursor uint64) {
	mark := max(l.processed, cursor)
	r.lag = lagCount{counting: true, mark: mark}
	l.b.wg.Go(func() { l.b.replayGroup(r, cursor, mark) })
}

// replayGroup is r's reader (see groupReplay). It reads the store after
// cursor, gives each event r owes to one member, and asks the loop to
// take the members live once it has read everything. It ends then, or
// when every member has ended (closing their mailboxes, since it is
// their sender).
func (b *Bus) replayGroup(r *groupReplay, cursor, mark uint64) {
	var caught uint64 // events delivered above mark (see lagCount)
	var failing bool  // the store's last Query failed
	var subs []*Subscription
	pause := time.NewTimer(time.Hour)
	pause.Stop()
	defer pause.Stop()
	for {
		if subs = r.active(subs, true); len(subs) == 0 {
			r.stop()
			return
		}
		// Only what the loop has fanned out: whether r owes an event
		// above mark is known once the loop has routed it.
		front := b.loop.fanned.Load()
		q := Query{Pattern: replayPattern(subs), AfterSeq: cursor, Limit: catchUpPage}
		events, err := b.store.Query(context.Background(), q)
		if err != nil {
			if !failing { // once per failure episode, not every retry
				b.report(fmt.Errorf("eventbus: replay of durable %q: %w", r.dur.name, err))
			}
			failing = true
			pause.Reset(10 * time.Millisecond) // not polled hot; members that end are seen after
			<-pause.C
			continue
		}
		failing = false
		events = routed(events, front)
		for i := range events {
			e := &events[i]
			if r.owes(e.Seq, mark) {
				s, ok := r.give(e, mark, &subs)
				if !ok {
					r.stop()
					return
				}
				if s != nil && e.Seq > mark {
					caught++
				}
			}
			cursor = e.Seq
			r.dur.replayed(r, cursor, cursor >= mark)
		}
		if len(events) == catchUpPage {
			continue
		}
		reply, ok := b.rejoin(control{replay: r, cursor: cursor, caught: caught})
		switch {
		case !ok: // the loop has stopped: every member ends
			r.stop()
			return
		case reply.live:
			r.dur.replayed(r, mark, true)
			return
		case reply.ended:
			continue // unless one joined meanwhile, the top of the loop stops
		}
		progressed := reply.cursor > cursor
		cursor = reply.cursor
		if !progressed && len(events) == 0 {
			// Nothing the store gave moved it on: do not poll it hot.
			pause.Reset(10 * time.Millisecond)
			<-pause.C
		}
	}
}

// replayPattern is the pattern to query the store with for subs: their
// one pattern if they have the same single one, else "*".
func replayPattern(subs []*Subscription) string {
	ps := *subs[0].pats.Load()
	if len(ps) != 1 {
		return "*"
	}
	for _, s := range subs[1:] {
		if qs := *s.pats.Load(); len(qs) != 1 || qs[0].src != ps[0].src {
			return "*"
		}
	}
	return ps[0].src
}

// give puts e into the mailbox of one active member matching it, the one
// with the most free room, waiting for room when none has any, and
// returns it: nil if no active member matches it (then e is no longer
// assigned: it is not the consumer's). It reports false when every
// member has ended. subs is refreshed as members join and end.
func (r *groupReplay) give(e *Event, mark uint64, subs *[]*Subscription) (*Subscription, bool) {
	fresh := false // subs was refreshed since the last choice
	for {
		s, room := r.roomiest(*subs, e)
		if s == nil && !fresh {
			// Those that match may have ended and others joined.
			if *subs = r.active(*subs, true); len(*subs) == 0 {
				return nil, false
			}
			fresh = true
			continue
		}
		if s == nil {
			r.dur.unassign(e.Seq)
			return nil, true
		}
		// Assigned before a member can acknowledge it; above mark the
		// loop did it.
		if e.Seq <= mark {
			r.dur.assign(e.Seq)
		}
		if room > 0 && s.trySend(e, 0) {
			r.sent(s, e, mark)
			return s, true
		}
		if s = r.waitRoom(*subs, e); s != nil {
			r.sent(s, e, mark)
			return s, true
		}
		if *subs = r.active(*subs, true); len(*subs) == 0 {
			return nil, false
		}
		fresh = true
	}
}

// waitRoom waits, when no member matching e has room, until one may have
// (it may also send e into a Subscribe member's C, and then returns that
// member), one ends, or one joins.
func (r *groupReplay) waitRoom(subs []*Subscription, e *Event) *Subscription {
	cases := make([]reflect.SelectCase, 0, 2*len(subs)+1)
	to := make([]*Subscription, 0, 2*len(subs)+1) // the member a send case is for
	recv := func(ch any) {
		cases = append(cases, reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(ch)})
		to = append(to, nil)
	}
	recv(r.changed)
	for _, s := range subs {
		recv(s.done) // its mailbox is to be closed
		if !s.matches(e.Topic) {
			continue
		}
		if s.mb.backlogInOut() {
			// Only C's reader can make room, and it tells nobody: offer e
			// on C itself.
			cases = append(cases, reflect.SelectCase{Dir: reflect.SelectSend, Chan: reflect.ValueOf(s.mb.out), Send: reflect.ValueOf(*e)})
			to = append(to, s)
			continue
		}
		if s.mb.roomNow(s.mb.bound - 1) {
			return nil // room now: choose again
		}
		recv(s.mb.room)
	}
	i, _, _ := reflect.Select(cases)
	return to[i]
}

// rejoinReplay is the loop's side of r's reader asking to go live. Every
// event up to l.processed has been fanned out; those after cursor that r
// owes are in the tail or the store. If the tail holds them all and the
// members have room, the loop gives them out, and every member is live
// again; otherwise the reader goes on from the last one given.
func (l *loop) rejoinReplay(r *groupReplay, cursor, caught uint64) rejoinReply {
	b, mark := l.b, r.lag.mark
	subs := r.active(nil, false)
	if len(subs) == 0 {
		return rejoinReply{ended: true}
	}
	if cursor < l.processed && cursor < l.stored {
		if !l.tail.covers(cursor + 1) {
			return rejoinReply{cursor: cursor}
		}
		for seq, env := range l.tail.since(cursor + 1) {
			if env == nil || !r.owes(seq, mark) {
				cursor = seq
				continue
			}
			s, room := r.roomiest(subs, &env.e)
			if s == nil {
				r.dur.unassign(seq) // not the consumer's after all
			} else {
				if room <= 0 {
					return rejoinReply{cursor: cursor}
				}
				if seq <= mark {
					r.dur.assign(seq)
				}
				if !s.trySend(&env.e, env.at) {
					return rejoinReply{cursor: cursor}
				}
				r.sent(s, &env.e, mark)
				if seq > mark {
					r.lag.handed++
				}
			}
			cursor = seq
		}
	}
	r.mu.Lock()
	r.finished = true
	members := r.members
	r.mu.Unlock()
	for _, s := range members {
		d := &s.dl
		d.lagging, d.replay = false, nil
		s.isLagging.Store(false)
		d.lastSeq = max(cursor, l.processed)
		if d.ended {
			s.closeMailbox() // the loop is its sender now
		}
	}
	r.owed.reset()
	if got := caught + r.lag.handed; r.lag.owed > got {
		// The store no longer held them: pruned by its retention before
		// the reader got there.
		lost := r.lag.owed - got
		subs[0].dropped.Add(lost)
		b.dropped.Add(lost)
		b.report(fmt.Errorf("%w: durable %q lost %d events that left the store before its replay reached them", ErrSlowConsumer, r.dur.name, lost))
	}
	r.lag = lagCount{}
	return rejoinReply{live: true}
}
