package storetest_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/choiros/eventbus"
	"github.com/choiros/eventbus/storetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestMemoryStore(t *testing.T) {
	// The suite stores MaxQueryLimit+5 events to see the Limit cut, more
	// than the default MemoryStore keeps.
	storetest.Run(t, func(t *testing.T) eventbus.Store {
		return eventbus.NewMemoryStore(eventbus.WithMaxEvents(2 * eventbus.MaxQueryLimit))
	})
}

func TestMemoryStoreRetention(t *testing.T) {
	ctx := context.Background()
	mk := func(t *testing.T, seq uint64, ts time.Time) eventbus.Event {
		t.Helper()
		e, err := eventbus.NewEvent(eventbus.SystemHeartbeat, "system.heartbeat", nil, "test")
		require.NoError(t, err)
		e.Seq, e.Timestamp = seq, ts
		return e
	}
	seqsOf := func(t *testing.T, st eventbus.Store) []uint64 {
		t.Helper()
		got, err := st.Query(ctx, eventbus.Query{Limit: eventbus.MaxQueryLimit})
		require.NoError(t, err)
		var out []uint64
		for _, e := range got {
			out = append(out, e.Seq)
		}
		return out
	}

	t.Run("max events keeps the newest", func(t *testing.T) {
		st := eventbus.NewMemoryStore(eventbus.WithMaxEvents(3))
		defer st.Close()
		now := time.Now().UTC()
		for seq := uint64(1); seq <= 5; seq++ {
			require.NoError(t, st.Append(ctx, []eventbus.Event{mk(t, seq, now)}))
		}
		assert.Equal(t, []uint64{3, 4, 5}, seqsOf(t, st))
		// One batch larger than the limit keeps its newest events.
		batch := []eventbus.Event{mk(t, 6, now), mk(t, 7, now), mk(t, 8, now), mk(t, 9, now)}
		require.NoError(t, st.Append(ctx, batch))
		assert.Equal(t, []uint64{7, 8, 9}, seqsOf(t, st))
		last, err := st.LastSeq(ctx)
		require.NoError(t, err)
		assert.Equal(t, uint64(9), last)
	})

	t.Run("max age drops old events", func(t *testing.T) {
		st := eventbus.NewMemoryStore(eventbus.WithMaxAge(time.Hour))
		defer st.Close()
		now := time.Now().UTC()
		require.NoError(t, st.Append(ctx, []eventbus.Event{
			mk(t, 1, now.Add(-3*time.Hour)),
			mk(t, 2, now.Add(-2*time.Hour)),
			mk(t, 3, now.Add(-time.Minute)),
			mk(t, 4, now),
		}))
		assert.Equal(t, []uint64{3, 4}, seqsOf(t, st))
	})

	t.Run("LastSeq survives when everything is dropped", func(t *testing.T) {
		st := eventbus.NewMemoryStore(eventbus.WithMaxAge(time.Minute))
		defer st.Close()
		old := time.Now().UTC().Add(-time.Hour)
		require.NoError(t, st.Append(ctx, []eventbus.Event{mk(t, 41, old), mk(t, 42, old)}))
		assert.Empty(t, seqsOf(t, st))
		last, err := st.LastSeq(ctx)
		require.NoError(t, err)
		assert.Equal(t, uint64(42), last)
		// And the next batch must still be above it.
		require.Error(t, st.Append(ctx, []eventbus.Event{mk(t, 42, time.Now().UTC())}))
	})

	t.Run("zero means no limit", func(t *testing.T) {
		st := eventbus.NewMemoryStore(eventbus.WithMaxEvents(0), eventbus.WithMaxAge(0))
		defer st.Close()
		long := time.Now().UTC().Add(-24 * 365 * time.Hour)
		var batch []eventbus.Event
		for seq := uint64(1); seq <= 12000; seq++ {
			batch = append(batch, mk(t, seq, long))
		}
		require.NoError(t, st.Append(ctx, batch))
		got, err := st.Query(ctx, eventbus.Query{Limit: eventbus.MaxQueryLimit, Newest: true})
		require.NoError(t, err)
		require.Len(t, got, eventbus.MaxQueryLimit)
		assert.Equal(t, uint64(2001), got[0].Seq)
	})
}
