package eventbus_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/choiros/eventbus"
)

// TestErrorsHaveOnePrefix: an error about a part of a larger value names
// both categories for errors.Is but says "eventbus:" once (issue 12 saw
// "eventbus: invalid query: eventbus: invalid pattern …").
func TestErrorsHaveOnePrefix(t *testing.T) {
	store := eventbus.NewMemoryStore()
	t.Cleanup(func() { _ = store.Close() })
	_, queryErr := store.Query(t.Context(), eventbus.Query{Pattern: "x..y"})
	_, normErr := eventbus.Query{Pattern: "x..y"}.Normalize()
	_, optErr := eventbus.New(eventbus.WithNoPersistTopics("a.*", "a..b"))
	tests := []struct {
		name string
		err  error
		want string
		is   []error
	}{
		{"Query.Normalize", normErr, `eventbus: invalid query: pattern "x..y": empty segment`,
			[]error{eventbus.ErrInvalidQuery, eventbus.ErrInvalidPattern}},
		{"MemoryStore.Query", queryErr, `eventbus: invalid query: pattern "x..y": empty segment`,
			[]error{eventbus.ErrInvalidQuery, eventbus.ErrInvalidPattern}},
		{"WithNoPersistTopics", optErr, `eventbus: invalid option: WithNoPersistTopics: invalid pattern "a..b": empty segment`,
			[]error{eventbus.ErrInvalidOption, eventbus.ErrInvalidPattern}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.EqualError(t, tt.err, tt.want)
			for _, target := range tt.is {
				require.ErrorIs(t, tt.err, target)
			}
		})
	}
}
