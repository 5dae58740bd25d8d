package eventbus

import (
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
)

// WithQueueGroup makes the subscription a member of the queue group name
// (competing consumers, as NATS calls them): for each event, every
// matching subscription without a queue group gets it, and of the
// matching members of each queue group exactly one does — the one with
// the most free room in its mailbox (ties taken in turn). A member that is
// catching up from the store is chosen only when every matching member is.
// Members join and leave at any time; an event already in a member's
// mailbox stays there, and each member gets its events in Seq order. When
// every member is full, the chosen member's overflow policy applies (and
// pacing, as for any subscription). name is 1–256 bytes and has no control
// characters; otherwise Subscribe returns an error wrapping
// ErrInvalidOption. Default: no queue group.
func WithQueueGroup(name string) SubscribeOption {
	return subOption(func(c *subConfig) error {
		if name == "" || len(name) > 256 || containsControl(name) {
			return invalidOption("WithQueueGroup", fmt.Sprintf("%q", name), "must be 1-256 bytes without control characters")
		}
		c.queueGroup = name
		return nil
	})
}

func containsControl(s string) bool {
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return true
		}
	}
	return false
}

// queueGroup is one queue group: its members are in the registry (under
// registry.mu); pick and seq belong to the loop (a holder of loop.mu).
type queueGroup struct {
	name    string
	members []*Subscription // registry.mu

	pick     *Subscription // the loop's choice for the event it routes
	pickRoom int           // the free room of pick
	seq      uint64        // choices made, for round-robin among ties

	delivered atomic.Uint64 // events given to a member
}

// QueueGroupStats describes a queue group at a moment: its members and how
// the events it was given were spread over them.
type QueueGroupStats struct {
	Name string
	// Members are the IDs of the group's current members.
	Members []string
	// Delivered counts the events the group gave to a member (whose
	// overflow policy may still have dropped some).
	Delivered uint64
	// Distribution maps each current member's ID to the events it got.
	Distribution map[string]uint64
}

// QueueGroups returns the current queue groups, sorted by name. It is safe
// for concurrent use.
func (b *Bus) QueueGroups() []QueueGroupStats {
	b.reg.mu.Lock()
	defer b.reg.mu.Unlock()
	out := make([]QueueGroupStats, 0, len(b.reg.groups))
	for _, g := range b.reg.groups {
		st := QueueGroupStats{Name: g.name, Delivered: g.delivered.Load(), Distribution: make(map[string]uint64, len(g.members))}
		for _, s := range g.members {
			st.Members = append(st.Members, s.id)
			st.Distribution[s.id] = s.delivered.Load()
		}
		out = append(out, st)
	}
	slices.SortFunc(out, func(a, b QueueGroupStats) int {
		switch {
		case a.Name < b.Name:
			return -1
		case a.Name > b.Name:
			return 1
		}
		return 0
	})
	return out
}

// joinGroup adds s to the queue group name. r.mu must be held.
func (r *registry) joinGroup(s *Subscription, name string) {
	if r.groups == nil {
		r.groups = make(map[string]*queueGroup)
	}
	g := r.groups[name]
	if g == nil {
		g = &queueGroup{name: name}
		r.groups[name] = g
	}
	g.members = append(g.members, s)
	s.group = g
}

// leaveGroup takes s out of its queue group. r.mu must be held. An empty
// group is forgotten, unless the loop still holds it as a choice.
func (r *registry) leaveGroup(s *Subscription) {
	g := s.group
	if g == nil {
		return
	}
	if i := slices.Index(g.members, s); i >= 0 {
		g.members = slices.Delete(g.members, i, i+1)
	}
	if len(g.members) == 0 && r.groups[g.name] == g {
		delete(r.groups, g.name)
	}
}

// consider weighs s, a matching member of a queue group, for the event
// being routed, and records the group in l.groups the first time one of
// its members is weighed for it. l.mu must be held.
func (l *loop) consider(s *Subscription) {
	d := &s.dl
	if d.ended {
		return
	}
	g := s.group
	room := s.mb.bound - s.mb.pending() - len(d.run)
	if d.lagging {
		room = -1 << 40 // only when every member lags
	}
	if g.pick == nil {
		l.groups = append(l.groups, g)
	} else if room < g.pickRoom || room == g.pickRoom && d.lastPick >= g.pick.dl.lastPick {
		return
	}
	g.pick, g.pickRoom = s, room
}

// groupsFull reports whether some queue group among subs (an event's
// routes) has no member with free room left, counting what the run has
// given them so far. l.mu and the registry's mu must be held.
func (l *loop) groupsFull(subs []*Subscription) bool {
	full := false
	for _, s := range subs {
		if s.group != nil {
			l.consider(s)
		}
	}
	for _, g := range l.groups {
		full = full || g.pickRoom <= 0
		g.pick = nil
	}
	clear(l.groups)
	l.groups = l.groups[:0]
	return full
}

// choose gives the event at index i of the run to the member each group
// in l.groups chose, and resets the groups for the next event.
func (l *loop) choose(i int32, touched []*Subscription) []*Subscription {
	for _, g := range l.groups {
		s := g.pick
		g.pick = nil
		g.seq++
		s.dl.lastPick = g.seq
		d := &s.dl
		if len(d.run) == 0 {
			touched = append(touched, s)
		}
		d.run = append(d.run, i)
		g.delivered.Add(1)
	}
	clear(l.groups)
	l.groups = l.groups[:0]
	return touched
}

// owedSeqs lists Seqs of persisted events a catch-up reader is to
// deliver above its mark, in order. For a queue group member that lags,
// they are the events its group chose it for while it lagged (the rest
// went to other members); for a group replay, those the loop chose one of
// its members for. The loop appends; the catch-up reader (or the loop at
// the rejoin) consumes.
type owedSeqs struct {
	mu   sync.Mutex
	seqs []uint64 // seqs[head:] are owed
	head int
}

// add records that seq is owed.
func (o *owedSeqs) add(seq uint64) {
	o.mu.Lock()
	o.seqs = append(o.seqs, seq)
	o.mu.Unlock()
}

// has reports whether seq is owed, forgetting those below it. Seqs are
// asked in increasing order; seq itself stays listed until a higher one
// is asked, so a reader that could not deliver it may ask again. The
// forgotten ones are moved out once they are half the list, so a question
// costs O(1) amortised however many are owed (BenchmarkOwedSeqs: moving
// them out on every question cost 2.3 µs a question at 100,000).
func (o *owedSeqs) has(seq uint64) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	for o.head < len(o.seqs) && o.seqs[o.head] < seq {
		o.head++
	}
	if o.head > len(o.seqs)/2 {
		o.seqs, o.head = o.seqs[:copy(o.seqs, o.seqs[o.head:])], 0
	}
	return o.head < len(o.seqs) && o.seqs[o.head] == seq
}

// reset empties the list.
func (o *owedSeqs) reset() {
	o.mu.Lock()
	o.seqs, o.head = o.seqs[:0], 0
	o.mu.Unlock()
}

// owe records that the lagging subscription s owes seq (catch-up delivers
// it). l.mu must be held.
func (s *Subscription) owe(seq uint64) {
	s.assign(seq) // a durable consumer's, though not yet in its mailbox
	if s.group != nil {
		s.owed.add(seq)
	}
}

// owes reports whether s's catch-up delivers the stored event seq: every
// event at or below mark (the replay asked for), and above it only those
// its queue group chose it for. Seqs are asked in increasing order.
func (s *Subscription) owes(seq, mark uint64) bool {
	return s.group == nil || seq <= mark || s.owed.has(seq)
}

// forgetOwed empties the list when s goes live again.
func (s *Subscription) forgetOwed() {
	if s.group != nil {
		s.owed.reset()
	}
}
