package eventbus

import "github.com/choiros/eventbus/internal/route"

// routeIndex maps topics to the subscriptions whose patterns match: the
// incremental index of internal/route, with its bounded per-topic cache.
// It belongs to the registry: only a holder of registry.mu calls it.
type routeIndex = route.Index[*Subscription]

// maxRouteCache bounds the route cache.
const maxRouteCache = 4096

func newRouteIndex(noCache bool) *routeIndex {
	if noCache {
		return route.New[*Subscription](0)
	}
	return route.New[*Subscription](maxRouteCache)
}
