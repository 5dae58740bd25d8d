package monitor

import (
	"cmp"
	"slices"
	"time"
)

// Snapshot is what the feed sends and /snapshot returns: the bus's totals
// and every live subscription, at one moment. Durations are seconds.
type Snapshot struct {
	Time          time.Time      `json:"time"`
	Interval      float64        `json:"interval"` // seconds since the previous sample the rates are over; 0 for the first
	Bus           BusStats       `json:"bus"`
	Subscriptions []Subscription `json:"subscriptions"` // stalled first, then slow, then in the order they were made
}

// BusStats are the bus's totals and rates.
type BusStats struct {
	Published     uint64  `json:"published"`
	Persisted     uint64  `json:"persisted"`
	Delivered     uint64  `json:"delivered"`
	Dropped       uint64  `json:"dropped"`
	Subscriptions int     `json:"subscriptions"`
	QueueDepth    int     `json:"queue_depth"`
	PublishedRate float64 `json:"published_per_s"`
	DeliveredRate float64 `json:"delivered_per_s"`
	DroppedRate   float64 `json:"dropped_per_s"`
	Slow          int     `json:"slow"`
	Stalled       int     `json:"stalled"`
}

// Subscription is one subscription's line.
type Subscription struct {
	ID            string   `json:"id"`
	Name          string   `json:"name"`
	Patterns      []string `json:"patterns"`
	Site          string   `json:"site"`
	Pending       int      `json:"pending"`
	Buffer        int      `json:"buffer"`
	Delivered     uint64   `json:"delivered"`
	DeliveredRate float64  `json:"delivered_per_s"`
	Dropped       uint64   `json:"dropped"`
	Lagging       bool     `json:"lagging"`
	LatencyP50    float64  `json:"latency_p50"`
	LatencyP99    float64  `json:"latency_p99"`
	HandlerP50    float64  `json:"handler_p50"`
	HandlerP99    float64  `json:"handler_p99"`
	StalledFor    float64  `json:"stalled_for"`
	Slow          bool     `json:"slow"`
	Stalled       bool     `json:"stalled"`
	Why           string   `json:"why,omitempty"` // why it is slow or stalled, in words
}

// snapshot returns a snapshot no older than s.fresh.
func (s *sampler) snapshot(now time.Time) *Snapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.last != nil && now.Sub(s.last.Time) < s.fresh {
		return s.last
	}
	st := s.bus.Stats()
	infos := s.bus.Subscriptions()
	snap := &Snapshot{Time: now, Subscriptions: make([]Subscription, 0, len(infos))}
	var dt float64
	if s.last != nil {
		dt = now.Sub(s.last.Time).Seconds()
		snap.Interval = dt
	}
	rate := func(cur, prev uint64) float64 {
		if dt <= 0 || cur < prev {
			return 0
		}
		return float64(cur-prev) / dt
	}
	snap.Bus = BusStats{
		Published: st.Published, Persisted: st.Persisted, Delivered: st.Delivered, Dropped: st.Dropped,
		Subscriptions: st.Subscriptions, QueueDepth: st.QueueDepth,
	}
	if s.last != nil {
		snap.Bus.PublishedRate = rate(st.Published, s.last.Bus.Published)
		snap.Bus.DeliveredRate = rate(st.Delivered, s.last.Bus.Delivered)
		snap.Bus.DroppedRate = rate(st.Dropped, s.last.Bus.Dropped)
	}
	prev, drop := s.prev, s.drop
	s.prev, s.drop = make(map[string]uint64, len(infos)), make(map[string]uint64, len(infos))
	for _, in := range infos {
		ss := in.Stats
		line := Subscription{
			ID: in.ID, Name: in.Name, Patterns: in.Patterns, Site: in.Site,
			Pending: ss.Pending, Buffer: ss.Buffer, Delivered: ss.Delivered, Dropped: ss.Dropped, Lagging: ss.Lagging,
			LatencyP50: ss.LatencyP50.Seconds(), LatencyP99: ss.LatencyP99.Seconds(),
			HandlerP50: ss.HandlerP50.Seconds(), HandlerP99: ss.HandlerP99.Seconds(),
			StalledFor: ss.StalledFor.Seconds(),
		}
		if p, ok := prev[in.ID]; ok {
			line.DeliveredRate = rate(ss.Delivered, p)
		}
		s.prev[in.ID], s.drop[in.ID] = ss.Delivered, ss.Dropped
		d, seen := drop[in.ID]
		switch {
		case ss.StalledFor > 0:
			line.Stalled, line.Why = true, "handler stalled on one event for "+ss.StalledFor.Round(time.Millisecond).String()
		case ss.Lagging:
			line.Slow, line.Why = true, "lagging: catching up from the store"
		case seen && ss.Dropped > d:
			line.Slow, line.Why = true, "dropping events"
		case ss.Buffer > 0 && ss.Pending*4 >= ss.Buffer*3:
			line.Slow, line.Why = true, "mailbox at least 3/4 full"
		case ss.LatencyP50 >= s.slow:
			line.Slow, line.Why = true, "median latency "+ss.LatencyP50.String()
		}
		if line.Stalled {
			snap.Bus.Stalled++
		}
		if line.Slow {
			snap.Bus.Slow++
		}
		snap.Subscriptions = append(snap.Subscriptions, line)
	}
	rank := func(l Subscription) int {
		switch {
		case l.Stalled:
			return 0
		case l.Slow:
			return 1
		}
		return 2
	}
	slices.SortStableFunc(snap.Subscriptions, func(a, b Subscription) int { return cmp.Compare(rank(a), rank(b)) })
	s.last = snap
	return snap
}
