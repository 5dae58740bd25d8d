package eventbus

import (
	"context"
	"fmt"
)

// Action is what an Access asks to do.
type Action int

// The actions an Authorizer is asked about.
const (
	ActionPublish   Action = iota + 1 // publish an event on Access.Topic
	ActionSubscribe                   // subscribe to Access.Pattern
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

// AuthorizeWithin returns an Authorizer that decides by lists of allowed
// patterns: allowed(principal, action) returns the patterns principal may
// publish on (ActionPublish) or subscribe within (ActionSubscribe). A
// publish is allowed when its topic matches one of them; a subscription,
// or Subscription.Add, when its pattern is within them as PatternWithin
// decides, that is when every topic the pattern can match is matched by
// one of them, so "*", "s?cret.*" or "*ecret*" do not pass for a principal
// allowed "public.*". A denial is an error wrapping ErrForbidden that names
// the principal and the topic or pattern; a nil allowed denies everything.
// The Authorizer is safe for concurrent use if allowed is.
func AuthorizeWithin(allowed func(principal string, action Action) []string) Authorizer {
	return AuthorizerFunc(func(_ context.Context, a Access) error {
		switch a.Action {
		case ActionPublish:
			if allowed != nil && topicWithin(a.Topic, allowed(a.Principal, ActionPublish)) {
				return nil
			}
			return fmt.Errorf("%w: principal %q may not publish on %q", ErrForbidden, clip(a.Principal), clip(a.Topic))
		case ActionSubscribe:
			if allowed != nil && PatternWithin(a.Pattern, allowed(a.Principal, ActionSubscribe)...) {
				return nil
			}
			return fmt.Errorf("%w: principal %q may not subscribe to %q", ErrForbidden, clip(a.Principal), clip(a.Pattern))
		}
		return fmt.Errorf("%w: principal %q: unknown action %d", ErrForbidden, clip(a.Principal), int(a.Action))
	})
}

// topicWithin reports whether the valid topic is matched by one of allowed.
func topicWithin(topic string, allowed []string) bool {
	return checkName(topic, false) == "" && PatternWithin(topic, allowed...)
}
