package eventbus

// WithoutRouteCache exposes withoutRouteCache to the black-box tests.
var WithoutRouteCache = withoutRouteCache
