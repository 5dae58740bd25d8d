package sqlitestore

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/choiros/eventbus"
	sqlite3 "modernc.org/sqlite/lib"
)

// withAfterPrune calls f after every pass of the pruner.
func withAfterPrune(f func()) Option {
	return option(func(c *config) error {
		c.afterPrune = f
		return nil
	})
}

// prunedStore opens a store with opts whose pruner signals each finished
// pass on the returned channel (dropping signals nobody waits for).
func prunedStore(t *testing.T, path string, opts ...Option) (*Store, chan struct{}) {
	t.Helper()
	passes := make(chan struct{}, 1)
	opts = append(opts, withAfterPrune(func() {
		select {
		case passes <- struct{}{}:
		default:
		}
	}))
	s, err := Open(path, opts...)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, s.Close()) })
	return s, passes
}

// waitPass waits until a pruner pass that started after the call has
// finished: the first signal may come from a pass already running, the
// second cannot.
func waitPass(t *testing.T, passes chan struct{}) {
	t.Helper()
	select {
	case <-passes:
	default:
	}
	for range 2 {
		select {
		case <-passes:
		case <-time.After(10 * time.Second):
			t.Fatal("the pruner did not run")
		}
	}
}

// waitFirstPass waits for the pass the pruner makes at start.
func waitFirstPass(t *testing.T, passes chan struct{}) {
	t.Helper()
	select {
	case <-passes:
	case <-time.After(10 * time.Second):
		t.Fatal("the pruner did not run")
	}
}

func mkEvents(t *testing.T, first uint64, n int, topic string, ts time.Time) []eventbus.Event {
	t.Helper()
	out := make([]eventbus.Event, n)
	for i := range out {
		e, err := eventbus.NewEvent(eventbus.WorkerProgress, topic, map[string]int{"i": i}, "test")
		require.NoError(t, err)
		e.Seq, e.Timestamp = first+uint64(i), ts
		out[i] = e
	}
	return out
}

func storedSeqs(t *testing.T, s *Store) []uint64 {
	t.Helper()
	got, err := s.Query(context.Background(), eventbus.Query{Limit: eventbus.MaxQueryLimit})
	require.NoError(t, err)
	var out []uint64
	for _, e := range got {
		out = append(out, e.Seq)
	}
	return out
}

// rows counts the rows of a table, bypassing Query's age filter.
func rows(t *testing.T, s *Store, table string) int {
	t.Helper()
	var n int
	require.NoError(t, s.r.QueryRow("SELECT count(*) FROM "+table).Scan(&n))
	return n
}

func seqRange(first, last uint64) []uint64 {
	var out []uint64
	for s := first; s <= last; s++ {
		out = append(out, s)
	}
	return out
}

func TestRetention(t *testing.T) {
	ctx := context.Background()
	now := time.Now().UTC()

	t.Run("max events keeps the newest", func(t *testing.T) {
		s, passes := prunedStore(t, filepath.Join(t.TempDir(), "r.db"), WithMaxEvents(10), WithPruneInterval(time.Hour))
		waitFirstPass(t, passes) // the next pass is an hour away
		for first := uint64(1); first <= 25; first += 5 {
			require.NoError(t, s.Append(ctx, mkEvents(t, first, 5, "worker.task.progress", now)))
		}
		s.prune(time.Now())
		assert.Equal(t, seqRange(16, 25), storedSeqs(t, s))
		assert.Equal(t, 20, rows(t, s, "topic_prefixes"), "prefix rows of deleted events remain")

		require.NoError(t, s.Append(ctx, mkEvents(t, 26, 5, "chat.room", now)))
		s.prune(time.Now())
		assert.Equal(t, seqRange(21, 30), storedSeqs(t, s))
		last, err := s.LastSeq(ctx)
		require.NoError(t, err)
		assert.Equal(t, uint64(30), last)
	})

	t.Run("max age deletes old events and hides them before", func(t *testing.T) {
		s, passes := prunedStore(t, filepath.Join(t.TempDir(), "r.db"), WithMaxAge(time.Hour), WithPruneInterval(time.Hour))
		waitFirstPass(t, passes)
		var events []eventbus.Event
		for i, age := range []time.Duration{3 * time.Hour, 2 * time.Hour, time.Minute, 0} {
			events = append(events, mkEvents(t, uint64(i+1), 1, "worker.task.progress", now.Add(-age))...)
		}
		require.NoError(t, s.Append(ctx, events))
		assert.Equal(t, []uint64{3, 4}, storedSeqs(t, s), "Query returned expired events")
		assert.Equal(t, 4, rows(t, s, "events"))

		s.prune(time.Now())
		assert.Equal(t, 2, rows(t, s, "events"))
		assert.Equal(t, 4, rows(t, s, "topic_prefixes"))
		assert.Equal(t, []uint64{3, 4}, storedSeqs(t, s))

		// An hour later the rest goes too.
		s.prune(time.Now().Add(time.Hour + time.Minute))
		assert.Equal(t, 0, rows(t, s, "events"))
		assert.Equal(t, 0, rows(t, s, "topic_prefixes"))
	})

	t.Run("LastSeq survives deleting everything", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "r.db")
		s, passes := prunedStore(t, path, WithMaxAge(time.Minute), WithPruneInterval(time.Hour))
		waitFirstPass(t, passes)
		require.NoError(t, s.Append(ctx, mkEvents(t, 41, 2, "system.heartbeat", now.Add(-time.Hour))))
		s.prune(time.Now())
		assert.Equal(t, 0, rows(t, s, "events"))
		last, err := s.LastSeq(ctx)
		require.NoError(t, err)
		assert.Equal(t, uint64(42), last)
		require.Error(t, s.Append(ctx, mkEvents(t, 42, 1, "system.heartbeat", now)), "Seq at LastSeq accepted")
		require.NoError(t, s.Close())

		s2, err := Open(path)
		require.NoError(t, err)
		defer s2.Close()
		last, err = s2.LastSeq(ctx)
		require.NoError(t, err)
		assert.Equal(t, uint64(42), last, "after reopening")
	})

	t.Run("a backlog is deleted in several transactions", func(t *testing.T) {
		s, passes := prunedStore(t, filepath.Join(t.TempDir(), "r.db"), WithMaxAge(time.Minute), WithMaxEvents(100), WithPruneInterval(time.Hour))
		waitFirstPass(t, passes)
		n := 2*pruneBatch + 500
		require.NoError(t, s.Append(ctx, mkEvents(t, 1, n, "worker.task.progress", now.Add(-time.Hour))))
		require.NoError(t, s.Append(ctx, mkEvents(t, uint64(n+1), 300, "worker.task.progress", now)))
		s.prune(time.Now())
		assert.Equal(t, seqRange(uint64(n+201), uint64(n+300)), storedSeqs(t, s))
		assert.Equal(t, 100, rows(t, s, "events"))
		assert.Equal(t, 200, rows(t, s, "topic_prefixes"))
		assert.Equal(t, int64(100), s.count.Load())
	})

	t.Run("the count is taken again at open", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "r.db")
		s, err := Open(path)
		require.NoError(t, err)
		require.NoError(t, s.Append(ctx, mkEvents(t, 1, 8, "a.b", now)))
		require.NoError(t, s.Close())

		s2, passes := prunedStore(t, path, WithMaxEvents(5), WithPruneInterval(time.Hour))
		waitFirstPass(t, passes)
		assert.Equal(t, seqRange(4, 8), storedSeqs(t, s2))
	})

	t.Run("the background pruner runs on its own", func(t *testing.T) {
		s, passes := prunedStore(t, filepath.Join(t.TempDir(), "r.db"), WithMaxEvents(3), WithPruneInterval(time.Millisecond))
		require.NoError(t, s.Append(ctx, mkEvents(t, 1, 10, "worker.x", now)))
		waitPass(t, passes)
		assert.Equal(t, []uint64{8, 9, 10}, storedSeqs(t, s))
	})

	t.Run("a read-only store does not prune", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "r.db")
		s, err := Open(path)
		require.NoError(t, err)
		require.NoError(t, s.Append(ctx, mkEvents(t, 1, 8, "a.b", now)))
		ro, err := Open(path, WithReadOnly(), WithMaxEvents(2))
		require.NoError(t, err)
		assert.False(t, ro.pruning())
		require.NoError(t, ro.Close())
		assert.Len(t, storedSeqs(t, s), 8)
		require.NoError(t, s.Close())
	})
}

func TestPragmas(t *testing.T) {
	tests := []struct {
		name string
		opts []Option
		sync int
	}{
		{"default is NORMAL", nil, 1},
		{"WithFullSync is FULL", []Option{WithFullSync()}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Open(filepath.Join(t.TempDir(), "p.db"), tt.opts...)
			require.NoError(t, err)
			defer s.Close()
			var mode string
			var sync, busy int
			require.NoError(t, s.wc.QueryRowContext(context.Background(), "PRAGMA journal_mode").Scan(&mode))
			require.NoError(t, s.wc.QueryRowContext(context.Background(), "PRAGMA synchronous").Scan(&sync))
			require.NoError(t, s.wc.QueryRowContext(context.Background(), "PRAGMA busy_timeout").Scan(&busy))
			assert.Equal(t, "wal", mode)
			assert.Equal(t, tt.sync, sync)
			assert.Equal(t, int(DefaultBusyTimeout.Milliseconds()), busy)
			require.NoError(t, s.r.QueryRow("PRAGMA busy_timeout").Scan(&busy))
			assert.Equal(t, int(DefaultBusyTimeout.Milliseconds()), busy, "readers")
		})
	}
}

// TestReadOnlyConnectionRefusesWrites checks that a read-only store is
// read-only in SQLite itself (mode=ro), not only in Append: the test runs
// as root in CI, which file permissions do not stop.
func TestReadOnlyConnectionRefusesWrites(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ro.db")
	s, err := Open(path)
	require.NoError(t, err)
	require.NoError(t, s.Close())

	ro, err := Open(path, WithReadOnly())
	require.NoError(t, err)
	defer ro.Close()
	require.Nil(t, ro.w)
	for _, stmt := range []string{
		"INSERT INTO meta (key, value) VALUES ('x', 1)",
		"UPDATE meta SET value = 99 WHERE key = 'last_seq'",
		"PRAGMA user_version = 5",
	} {
		_, err := ro.r.Exec(stmt)
		require.Error(t, err, stmt)
		assert.True(t, isCode(err, sqlite3.SQLITE_READONLY), "%s: %v", stmt, err)
	}
	_, err = ro.r.Exec("PRAGMA query_only = 0; " + fmt.Sprintf("UPDATE meta SET value = %d", 7))
	assert.True(t, isCode(err, sqlite3.SQLITE_READONLY), "query_only cannot lift mode=ro: %v", err)
	last, err := ro.LastSeq(context.Background())
	require.NoError(t, err)
	assert.Equal(t, uint64(0), last)
}
