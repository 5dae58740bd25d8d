package eventbus

// WithoutRouteCache exposes withoutRouteCache to the black-box tests.
var WithoutRouteCache = withoutRouteCache

// RouteCacheLen returns how many topics the route cache holds.
func RouteCacheLen(b *Bus) int {
	b.reg.mu.Lock()
	defer b.reg.mu.Unlock()
	return b.reg.routes.CacheLen()
}

// MaxRouteCache exposes the cache bound.
const MaxRouteCache = maxRouteCache
