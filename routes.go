package eventbus

// routeIndex maps topics to the subscriptions whose patterns match. It
// belongs to the registry: only a holder of registry.mu calls it.
//
// TEMPORARY: rebuilt whole on change, until internal/route lands.
type routeIndex struct {
	pats  map[*Subscription][]pattern
	table *routeTable // nil when stale
	cache routeCache
}

func newRouteIndex(noCache bool) *routeIndex {
	return &routeIndex{pats: make(map[*Subscription][]pattern), cache: routeCache{off: noCache}}
}

func (x *routeIndex) add(p pattern, s *Subscription) {
	x.pats[s] = append(x.pats[s], p)
	x.table = nil
}

func (x *routeIndex) remove(p pattern, s *Subscription) {
	ps := x.pats[s]
	for i := range ps {
		if ps[i].src == p.src {
			ps = append(ps[:i:i], ps[i+1:]...)
			break
		}
	}
	if len(ps) == 0 {
		delete(x.pats, s)
	} else {
		x.pats[s] = ps
	}
	x.table = nil
}

func (x *routeIndex) current() *routeTable {
	if x.table == nil {
		x.table = buildRoutes(x.pats)
	}
	return x.table
}

// route returns each subscription an event on topic reaches, once. The
// slice is shared: callers must not keep or modify it.
func (x *routeIndex) route(topic string) []*Subscription {
	return x.cache.route(x.current(), topic)
}

// lookup appends the same set to dst, uncached.
func (x *routeIndex) lookup(topic string, dst []*Subscription) []*Subscription {
	return x.current().lookup(topic, dst)
}

// forEachPattern calls f with each pattern and how many subscriptions hold it.
func (x *routeIndex) forEachPattern(f func(pattern string, n int)) {
	for p, n := range x.current().patterns {
		f(p, n)
	}
}

func (x *routeIndex) cacheLen() int { return len(x.cache.entries) }
