package eventbus

// WithoutRouteCache exposes withoutRouteCache to the black-box tests.
var WithoutRouteCache = withoutRouteCache

// RouteCacheLen returns how many topics the loop's route cache holds. Call
// it only after Flush, with nothing published since: Flush orders the
// loop's writes before the read.
func RouteCacheLen(b *Bus) int { return len(b.cache.entries) }

// MaxRouteCache exposes the cache bound.
const MaxRouteCache = maxRouteCache
