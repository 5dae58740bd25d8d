package eventbus

import "context"

// Action is what an Access asks to do.
type Action int

// The actions an Authorizer is asked about.
const (
	ActionPublish   Action = iota + 1 // publish an event on Access.Topic
	ActionSubscribe                   // subscribe to Access.Pattern
)

// Publish and Subscribe are short names for ActionPublish and ActionSubscribe.
const (
	Publish   = ActionPublish
	Subscribe = ActionSubscribe
)

// String returns "publish" or "subscribe".
func (a Action) String() string {
	switch a {
	case ActionPublish:
		return "publish"
	case ActionSubscribe:
		return "subscribe"
	}
	return "unknown"
}

// Access is one request an Authorizer decides on.
type Access struct {
	Action    Action
	Principal string // from PrincipalFrom(ctx); "" when none was set
	Topic     string // the event's topic, for ActionPublish
	Pattern   string // the pattern, for ActionSubscribe
}

// Authorizer decides whether a principal may publish on a topic or subscribe
// to a pattern. Authorize returns nil to allow; a denial should wrap
// ErrForbidden (the bus wraps any other error in ErrForbidden itself). It is
// called on the caller's goroutine of Publish, PublishAsync, Subscribe,
// Handle and Subscription.Add, never on the bus loop or under a bus lock, and
// must be safe for concurrent use. The ctx is the caller's (for Add, a
// background context carrying the subscription's principal).
type Authorizer interface {
	Authorize(ctx context.Context, a Access) error
}

// AuthorizerFunc adapts a function to the Authorizer interface.
type AuthorizerFunc func(ctx context.Context, a Access) error

// Authorize calls f(ctx, a).
func (f AuthorizerFunc) Authorize(ctx context.Context, a Access) error { return f(ctx, a) }

type principalKey struct{}

// WithPrincipal returns a copy of ctx carrying the principal p, for the
// Authorizer to see.
func WithPrincipal(ctx context.Context, p string) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// PrincipalFrom returns the principal carried by ctx, or "" if none.
func PrincipalFrom(ctx context.Context) string {
	p, _ := ctx.Value(principalKey{}).(string)
	return p
}
