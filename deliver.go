package eventbus

import (
	"fmt"
	"runtime"
	"time"
)

// delivery is the loop's state for one subscription. Only a holder of
// loop.mu reads or writes it.
type delivery struct {
	lagging bool // the catch-up goroutine is the mailbox's sender
	lag     lagCount
	replay  *groupReplay // lagging as a member of this group replay (lag and owed are its)
	ended   bool         // the loop has seen the end
	lastSeq uint64       // the highest Seq given to the mailbox, or skipped over
	run     []int32      // fanoutRun's scratch: the events of a run this one gets
	// lastPick is its queue group's choice count when it was last chosen
	// (round-robin among members with equal room).
	lastPick uint64
	// slow is set when the subscription's mailbox stayed full past the
	// stall budget (or its policy dropped an event): the loop does not
	// wait for it, its policy applies, and the episode is reported once.
	// It ends when the mailbox drains to half its bound.
	slow bool
}

// mayWait reports whether the loop may wait for room in s's mailbox:
// always under Block, and for the other policies while s is not slow and
// pacing is on.
func (l *loop) mayWait(s *Subscription) bool {
	return s.overflow == Block || (l.b.cfg.stallBudget > 0 && !s.dl.slow)
}

// deliverRun hands a subscription the events of a run it gets (run[i]
// for i in idx, in Seq order) under its overflow policy, counting into its
// statistics and n; now is b.clock(), refreshed every 16 deliveries
// (clockAge), so latency is sampled at that grain. Events go straight
// into C while nothing waits behind it and it has room; from the first
// that does not, the mailbox is locked once for the rest of the run, not
// once per event. The statistics are added once per run (and before any
// wait): a run's events share their batch's acceptance time, so most of
// them have the latency of the one before and count in one histogram
// update.
func (l *loop) deliverRun(s *Subscription, run []item, idx []int32, now *int64, clockAge *int, n *counts) {
	d, mb := &s.dl, &s.mb
	locked, startPump := false, false
	var tally runTally
	defer func() {
		if locked {
			mb.mu.Unlock()
		}
		if startPump {
			s.startPump()
		}
		tally.flush(s)
	}()
	for _, i := range idx {
		it := &run[i]
		if d.ended || it.e.Seq <= d.lastSeq {
			continue
		}
		if d.lagging {
			l.skip(s, it, n)
			continue
		}
		if s.dur != nil {
			// Before the reader can have it (and acknowledge it); one that
			// is then lost stays unacknowledged: the cursor waits for it.
			s.dur.assign(it.e.Seq)
		}
		if *clockAge++; *clockAge == 16 {
			*now, *clockAge = l.b.clock(), 0
		}
		var ok, start bool
		if !locked && mb.sendOut(&it.e) {
			ok = true // no backlog and room in C: no lock (see mailbox.push)
		} else {
			if !locked {
				mb.mu.Lock()
				locked = true
			}
			ok, start = mb.pushLocked(&it.e, it.at)
		}
		startPump = startPump || start
		if !ok && d.slow && s.overflow == DropOldest && mb.replaceOldestLocked(&it.e, it.at) {
			// A slow reader's mailbox stays full: the policy, in place.
			s.dropped.Add(1)
			n.dropped++
			ok = true
		}
		if ok {
			if d.slow && mb.pending() <= mb.bound/2 {
				d.slow = false // the episode is over: report the next one
			}
		} else {
			mb.mu.Unlock()
			locked = false
			tally.flush(s) // overflow may wait: Stats stay current
			if startPump {
				s.startPump() // the pump makes the room overflow may wait for
				startPump = false
			}
			if !l.overflow(s, it, n) {
				continue
			}
		}
		d.lastSeq = it.e.Seq
		n.delivered++
		tally.delivered++
		if mb.out != nil {
			tally.latency(s, *now-it.at)
		}
	}
}

// runTally is what deliverRun has yet to add to a subscription's
// statistics: deliveries, and the latest latency with how many deliveries
// in a row had it.
type runTally struct {
	delivered uint64
	lat, latN int64
	latSum    int64
}

// latency counts one delivery of latency ns, adding the deliveries before
// it to s's histogram when theirs differs.
func (t *runTally) latency(s *Subscription, ns int64) {
	if t.latN > 0 && ns != t.lat {
		t.latSum += s.latency.countN(t.lat, t.latN)
		t.latN = 0
	}
	t.lat = ns
	t.latN++
}

// flush adds the tally to s's statistics and empties it.
func (t *runTally) flush(s *Subscription) {
	if t.delivered > 0 {
		s.delivered.Add(t.delivered)
	}
	if t.latN > 0 {
		t.latSum += s.latency.countN(t.lat, t.latN)
	}
	if t.latSum > 0 {
		s.latency.addSum(t.latSum)
	}
	*t = runTally{}
}

// skip accounts for an event a lagging subscription does not get from
// the loop: a persisted one is owed (the catch-up goroutine reads it from
// the store), any other is lost.
func (l *loop) skip(s *Subscription, it *item, n *counts) {
	d := &s.dl
	if it.persist {
		lag := &d.lag
		if d.replay != nil {
			lag = &d.replay.lag // a group replay's member: the replay owes it
		}
		if lag.counting && it.e.Seq > lag.mark && lag.wants(&it.e) {
			lag.owed++
			if d.replay != nil {
				d.replay.owe(it.e.Seq)
			} else {
				s.owe(it.e.Seq)
			}
		}
		return
	}
	s.dropped.Add(1)
	n.dropped++
}

// overflow deals with a subscription whose mailbox is full. Unless it is
// slow, the loop first waits for its reader, up to the stall budget (or
// WithBlockTimeout under Block); then the policy applies. It reports
// whether the event got in after all; otherwise it has counted what was
// lost.
func (l *loop) overflow(s *Subscription, it *item, n *counts) bool {
	b := l.b
	d := &s.dl
	if s.overflow == Block {
		if l.wait(s, it, s.blockWait, s.mb.bound-1) {
			return true
		}
		l.lost(s, n)
		return false
	}
	if l.mayWait(s) {
		// Pacing: wait for the reader to make room for a quarter of the
		// bound. One that keeps up does so well within the budget; one
		// that does not is slow until it drains to half.
		if l.wait(s, it, b.cfg.stallBudget, s.mb.bound-max(1, s.mb.bound/4)) {
			return true
		}
	}
	switch s.overflow {
	case DropOldest:
		if !s.evictOldest() {
			break // nothing to evict: the new one is lost
		}
		l.lost(s, n)
		// There is room now. The pump may count the event it has just
		// put into C twice for a moment: the room shows once it has
		// settled, which takes it no longer than taking the lock.
		for !s.trySend(&it.e, it.at) {
			runtime.Gosched()
		}
		return true
	case Disconnect:
		l.end(s, ErrSlowConsumer)
		s.dropped.Add(1)
		n.dropped++
		b.report(fmt.Errorf("%w: subscription %s %q disconnected", ErrSlowConsumer, s.id, s.name))
		return false
	case CatchUp:
		cursor := d.lastSeq
		l.startLag(s, cursor, time.Time{}, cursor)
		if it.persist {
			d.lag.owed++
			s.owe(it.e.Seq)
			return false // the catch-up goroutine delivers it
		}
	}
	l.lost(s, n)
	return false
}

// wait waits up to limit (0: no limit) for at most target events to wait
// in s's mailbox, then puts it.e in. It reports whether it got in.
func (l *loop) wait(s *Subscription, it *item, limit time.Duration, target int) bool {
	var stop <-chan time.Time
	if limit > 0 {
		l.timer.Reset(limit)
		stop = l.timer.C
		defer l.timer.Stop()
	}
	for {
		if s.mb.backlogInOut() {
			// Only the reader can make room, and it tells nobody: wait
			// on C itself.
			select {
			case s.mb.out <- it.e:
				return true
			case <-stop:
			case <-l.b.abort:
			case <-s.done:
			}
			return false
		}
		if !s.mb.waitRoom(target, stop, l.b.abort, s.done) {
			return false
		}
		// The pump counts an event both in out and behind it for a moment
		// after sending it: the room seen may not be there yet.
		if s.trySend(&it.e, it.at) {
			return true
		}
	}
}

// lost counts one event s lost to its policy and reports the start of a
// slow episode.
func (l *loop) lost(s *Subscription, n *counts) {
	s.dropped.Add(1)
	n.dropped++
	if !s.dl.slow {
		s.dl.slow = true
		l.b.report(fmt.Errorf("%w: subscription %s %q is losing events (%s)", ErrSlowConsumer, s.id, s.name, s.overflow))
	}
}

// startLag makes s lagging and starts its catch-up goroutine from cursor.
// The loop counts what it skips above mark (see lagCount).
func (l *loop) startLag(s *Subscription, cursor uint64, since time.Time, mark uint64) {
	s.dl.lagging = true
	s.isLagging.Store(true)
	s.dl.lag = lagCount{counting: true, mark: mark, since: since}
	l.b.wg.Go(func() { l.b.catchUp(s, cursor, since, mark) })
}

// end ends a subscription from the loop, which is then its sender.
func (l *loop) end(s *Subscription, err error) {
	if s.finish(err) {
		l.b.reg.remove(s)
	}
	s.dl.ended = true
	if !s.dl.lagging {
		s.closeMailbox()
	}
}

// control carries out a control request on the loop.
func (l *loop) control(c *control) {
	switch c.kind {
	case ctlFlush:
		close(c.done)
	case ctlEnd:
		c.sub.dl.ended = true
		if !c.sub.dl.lagging {
			c.sub.closeMailbox()
		}
	case ctlRejoin:
		if c.replay != nil {
			c.reply <- l.rejoinReplay(c.replay, c.cursor, c.caught)
		} else {
			c.reply <- l.rejoin(c.sub, c.cursor, c.caught)
		}
	case ctlReplay:
		if r := c.sub.dl.replay; r != nil {
			// A durable queue group resumes: its reader serves every
			// member that joins (and closes the mailboxes of those that
			// have ended).
			l.startReplay(r, c.cursor)
		} else if !c.sub.dl.ended {
			// Events at or below the cursor are not replayed, and those
			// the loop fanned out before now are not in its account.
			l.startLag(c.sub, c.cursor, c.since, max(l.processed, c.cursor))
		} else {
			c.sub.closeMailbox() // it was never lagging: the loop is its sender
		}
	}
}
