package eventbus_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/choiros/eventbus"
)

func TestAuthorizeWithin(t *testing.T) {
	auth := eventbus.AuthorizeWithin(func(principal string, action eventbus.Action) []string {
		switch {
		case principal == "":
			return nil
		case action == eventbus.ActionPublish:
			return []string{"users." + principal + ".*"}
		}
		return []string{"users." + principal + ".*", "news.*"}
	})
	pub := func(p, topic string) eventbus.Access {
		return eventbus.Access{Action: eventbus.ActionPublish, Principal: p, Topic: topic}
	}
	sub := func(p, pattern string) eventbus.Access {
		return eventbus.Access{Action: eventbus.ActionSubscribe, Principal: p, Pattern: pattern}
	}
	tests := []struct {
		name string
		a    eventbus.Access
		want string // "" allows
	}{
		{"publish below own prefix", pub("ann", "users.ann.note"), ""},
		{"publish on another's", pub("ann", "users.bob.note"), `eventbus: forbidden: principal "ann" may not publish on "users.bob.note"`},
		{"publish on a pattern", pub("ann", "users.ann.*"), `eventbus: forbidden: principal "ann" may not publish on "users.ann.*"`},
		{"publish where one may only subscribe", pub("ann", "news.today"), `eventbus: forbidden: principal "ann" may not publish on "news.today"`},
		{"subscribe to own prefix", sub("ann", "users.ann.*"), ""},
		{"subscribe to a glob below", sub("ann", "news.*.sport?"), ""},
		{"subscribe to every user", sub("ann", "users.*"), `eventbus: forbidden: principal "ann" may not subscribe to "users.*"`},
		{"a glob reaching another user", sub("ann", "users.?nn.*"), `eventbus: forbidden: principal "ann" may not subscribe to "users.?nn.*"`},
		{"a star inside a segment", sub("ann", "users.ann*"), `eventbus: forbidden: principal "ann" may not subscribe to "users.ann*"`},
		{"no principal", sub("", "news.*"), `eventbus: forbidden: principal "" may not subscribe to "news.*"`},
		{"an invalid pattern", sub("ann", "news.>"), `eventbus: forbidden: principal "ann" may not subscribe to "news.>"`},
		{"an unknown action", eventbus.Access{Principal: "ann", Topic: "users.ann.x"}, `eventbus: forbidden: principal "ann": unknown action 0`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := auth.Authorize(t.Context(), tt.a)
			if tt.want == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, eventbus.ErrForbidden)
			require.EqualError(t, err, tt.want)
		})
	}
	require.ErrorIs(t, eventbus.AuthorizeWithin(nil).Authorize(t.Context(), sub("ann", "news.*")), eventbus.ErrForbidden, "nil allows nothing")
}
