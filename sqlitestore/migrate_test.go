package sqlitestore_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/choiros/eventbus"
	"github.com/choiros/eventbus/sqlitestore"
)

// v1Events are the events in testdata/v1.db, as testdata/genv1 wrote them
// with the schema version 1 code of commit f8f2fce (a nil Payload is
// stored as null).
func v1Events() []eventbus.Event {
	base := time.Date(2026, 11, 29, 12, 0, 0, 123456789, time.UTC)
	topics := []string{"worker.task.spawned", "worker.task.complete", "chat.room1", "file.changed", "system.heartbeat", "worker.pool.progress", "user.input"}
	var events []eventbus.Event
	seq := uint64(0)
	for i := range 12 {
		seq++
		if i == 7 {
			seq += 3
		}
		payload := json.RawMessage(fmt.Sprintf("{\"i\": %d,  \"s\":\"h\u00e9llo\\n\"}", i))
		if i == 4 {
			payload = json.RawMessage("null")
		}
		e := eventbus.Event{ID: ulid.MustNew(ulid.Timestamp(base)+uint64(i), nil), Seq: seq, Type: eventbus.WorkerProgress,
			Topic: topics[i%len(topics)], Payload: payload, Timestamp: base.Add(time.Duration(i) * time.Second), Source: fmt.Sprintf("src-%d", i%3)}
		if i%4 == 1 {
			e.CorrelationID = fmt.Sprintf("corr-%d", i)
		}
		events = append(events, e)
	}
	return events
}

// copyV1 copies testdata/v1.db into a new directory and returns its path.
func copyV1(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "v1.db"))
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), "v1.db")
	require.NoError(t, os.WriteFile(path, data, 0o644))
	return path
}

// pragma reads an integer pragma of the file at path, read-only.
func pragma(t *testing.T, path, name string) int {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	require.NoError(t, err)
	defer db.Close()
	var v int
	require.NoError(t, db.QueryRow("PRAGMA "+name).Scan(&v))
	return v
}

// requireEvents checks got against want field by field, Payload bytes
// and Metadata exactly.
func requireEvents(t *testing.T, want, got []eventbus.Event) {
	t.Helper()
	require.Len(t, got, len(want))
	for i := range want {
		w, g := want[i], got[i]
		assert.Equal(t, w.Seq, g.Seq)
		assert.Equal(t, w.ID, g.ID, "ID of seq %d", w.Seq)
		assert.Equal(t, w.Type, g.Type, "Type of seq %d", w.Seq)
		assert.Equal(t, w.Topic, g.Topic, "Topic of seq %d", w.Seq)
		assert.Equal(t, string(w.Payload), string(g.Payload), "Payload of seq %d", w.Seq)
		assert.True(t, w.Timestamp.Equal(g.Timestamp), "Timestamp of seq %d", w.Seq)
		assert.Equal(t, w.Source, g.Source, "Source of seq %d", w.Seq)
		assert.Equal(t, w.CorrelationID, g.CorrelationID, "CorrelationID of seq %d", w.Seq)
		assert.Equal(t, w.Metadata, g.Metadata, "Metadata of seq %d", w.Seq)
	}
}

func TestMigrateV1(t *testing.T) {
	ctx := context.Background()
	want := v1Events()

	t.Run("read-only reads it unchanged", func(t *testing.T) {
		for _, how := range []string{"WithReadOnly", "no write permission"} {
			t.Run(how, func(t *testing.T) {
				path := copyV1(t)
				before, err := os.ReadFile(path)
				require.NoError(t, err)
				var st *sqlitestore.Store
				if how == "WithReadOnly" {
					st, err = sqlitestore.Open(path, sqlitestore.WithReadOnly())
				} else {
					require.NoError(t, os.Chmod(path, 0o444))
					st, err = sqlitestore.Open(path)
				}
				require.NoError(t, err)
				requireEvents(t, want, all(t, st))
				requireEvents(t, want[5:6], query(t, st, eventbus.Query{Pattern: "worker.pool.*"}))
				assert.Equal(t, uint64(15), lastSeq(t, st))
				epoch, err := st.Epoch(ctx)
				require.NoError(t, err)
				assert.Empty(t, epoch, "a read-only version 1 file has no epoch")
				cur, err := st.LoadCursor(ctx, "any")
				require.NoError(t, err)
				assert.Zero(t, cur)
				require.ErrorIs(t, st.Append(ctx, newEvents(t, 16, 1, "a.b")), sqlitestore.ErrReadOnly)
				require.NoError(t, st.Close())
				after, err := os.ReadFile(path)
				require.NoError(t, err)
				assert.True(t, bytes.Equal(before, after), "a read-only store changed the file")
			})
		}
	})

	t.Run("Open upgrades it in place", func(t *testing.T) {
		path := copyV1(t)
		require.Equal(t, 1, pragma(t, path, "user_version"))
		st, err := sqlitestore.Open(path)
		require.NoError(t, err)
		assert.Equal(t, 2, pragma(t, path, "user_version"))
		requireEvents(t, want, all(t, st))
		assert.Equal(t, uint64(15), lastSeq(t, st))
		for _, q := range []eventbus.Query{
			{Pattern: "worker.*"}, {Pattern: "worker.task.*"}, {Pattern: "chat.room1"},
			{Pattern: "*.changed"}, {AfterSeq: 7}, {Newest: true, Limit: 3},
		} {
			var w []eventbus.Event
			for _, e := range want {
				if e.Seq > q.AfterSeq && (q.Pattern == "" || eventbus.Match(q.Pattern, e.Topic)) {
					w = append(w, e)
				}
			}
			if q.Newest {
				w = w[len(w)-q.Limit:]
			}
			requireEvents(t, w, query(t, st, q))
		}
		epoch, err := st.Epoch(ctx)
		require.NoError(t, err)
		_, err = ulid.ParseStrict(epoch)
		require.NoError(t, err, "epoch %q is not a ULID", epoch)

		// New events, with metadata, go on from the old ones.
		require.Error(t, st.Append(ctx, newEvents(t, 15, 1, "worker.task.spawned")), "Seq at LastSeq")
		added := newEvents(t, 16, 3, "worker.task.spawned")
		added[0].Metadata = map[string]string{"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}
		added[2].Metadata = map[string]string{"eventbus-attempts": "2", "note": "h\u00e9 \"x\"\n"}
		require.NoError(t, st.Append(ctx, added))
		require.NoError(t, st.SaveCursor(ctx, "workers", 12))
		require.NoError(t, st.Close())

		// And it all survives a reopen, epoch included.
		st, err = sqlitestore.Open(path)
		require.NoError(t, err)
		defer st.Close()
		requireEvents(t, append(want, added...), all(t, st))
		requireEvents(t, added, query(t, st, eventbus.Query{Pattern: "worker.task.spawned", AfterSeq: 15}))
		assert.Equal(t, uint64(18), lastSeq(t, st))
		again, err := st.Epoch(ctx)
		require.NoError(t, err)
		assert.Equal(t, epoch, again, "the epoch changed on reopen")
		cur, err := st.LoadCursor(ctx, "workers")
		require.NoError(t, err)
		assert.Equal(t, uint64(12), cur)
	})

	t.Run("a failed upgrade changes nothing", func(t *testing.T) {
		// A table in the way of the upgrade's third statement makes it
		// fail after the first has added the metadata column: the whole
		// upgrade must be undone.
		path := copyV1(t)
		db, err := sql.Open("sqlite", path)
		require.NoError(t, err)
		_, err = db.Exec(`CREATE TABLE meta_v2 (x)`)
		require.NoError(t, err)
		require.NoError(t, db.Close())

		_, err = sqlitestore.Open(path)
		require.Error(t, err)
		assert.Equal(t, 1, pragma(t, path, "user_version"))
		db, err = sql.Open("sqlite", "file:"+path+"?mode=ro")
		require.NoError(t, err)
		defer db.Close()
		var n int
		require.NoError(t, db.QueryRow(`SELECT count(*) FROM pragma_table_info('events') WHERE name = 'metadata'`).Scan(&n))
		assert.Zero(t, n, "the metadata column outlived the failed upgrade")
		require.NoError(t, db.QueryRow(`SELECT count(*) FROM sqlite_schema WHERE name = 'cursors'`).Scan(&n))
		assert.Zero(t, n, "the cursors table outlived the failed upgrade")

		st, err := sqlitestore.Open(path, sqlitestore.WithReadOnly())
		require.NoError(t, err)
		defer st.Close()
		requireEvents(t, want, all(t, st))
	})
}

func query(t testing.TB, st eventbus.Store, q eventbus.Query) []eventbus.Event {
	t.Helper()
	got, err := st.Query(context.Background(), q)
	require.NoError(t, err)
	return got
}

func TestEpoch(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	epochOf := func(t *testing.T, st *sqlitestore.Store) string {
		t.Helper()
		e, err := st.Epoch(ctx)
		require.NoError(t, err)
		return e
	}
	a := filepath.Join(dir, "a.db")
	st, err := sqlitestore.Open(a)
	require.NoError(t, err)
	first := epochOf(t, st)
	_, err = ulid.ParseStrict(first)
	require.NoError(t, err, "epoch %q is not a ULID", first)
	require.NoError(t, st.Append(ctx, newEvents(t, 1, 2, "a.b")))
	require.NoError(t, st.Close())
	_, err = st.Epoch(ctx)
	require.ErrorIs(t, err, eventbus.ErrClosed)

	tests := []struct {
		name string
		path string
		opts []sqlitestore.Option
		same bool
	}{
		{"reopened", a, nil, true},
		{"reopened read-only", a, []sqlitestore.Option{sqlitestore.WithReadOnly()}, true},
		{"with retention", a, []sqlitestore.Option{sqlitestore.WithMaxEvents(1)}, true},
		{"another file", filepath.Join(dir, "b.db"), nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, err := sqlitestore.Open(tt.path, tt.opts...)
			require.NoError(t, err)
			defer st.Close()
			if tt.same {
				assert.Equal(t, first, epochOf(t, st))
			} else {
				assert.NotEqual(t, first, epochOf(t, st))
				assert.NotEmpty(t, epochOf(t, st))
			}
		})
	}

	t.Run("the bus takes it", func(t *testing.T) {
		st, err := sqlitestore.Open(a)
		require.NoError(t, err)
		defer st.Close()
		bus, err := eventbus.New(eventbus.WithStore(st))
		require.NoError(t, err)
		defer bus.Close()
		assert.Equal(t, first, bus.Epoch())
	})
}

func TestCursors(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "events.db")
	st, err := sqlitestore.Open(path)
	require.NoError(t, err)
	load := func(t *testing.T, st *sqlitestore.Store, name string) uint64 {
		t.Helper()
		seq, err := st.LoadCursor(ctx, name)
		require.NoError(t, err)
		return seq
	}

	steps := []struct {
		name string
		save map[string]uint64 // one name: SaveCursor; more: SaveCursors
		want map[string]uint64 // what LoadCursor returns afterwards
	}{
		{"unknown names are 0", nil, map[string]uint64{"workers": 0, "": 0}},
		{"save one", map[string]uint64{"workers": 10}, map[string]uint64{"workers": 10, "other": 0}},
		{"move it on", map[string]uint64{"workers": 25}, map[string]uint64{"workers": 25}},
		{"move it back", map[string]uint64{"workers": 3}, map[string]uint64{"workers": 3}},
		{"several at once", map[string]uint64{"workers": 40, "mailer": 7, "ünïcode name": 1 << 62, "": 5},
			map[string]uint64{"workers": 40, "mailer": 7, "ünïcode name": 1 << 62, "": 5}},
		{"zero", map[string]uint64{"mailer": 0}, map[string]uint64{"mailer": 0, "workers": 40}},
	}
	for _, step := range steps {
		t.Run(step.name, func(t *testing.T) {
			switch len(step.save) {
			case 0:
			case 1:
				for name, seq := range step.save {
					require.NoError(t, st.SaveCursor(ctx, name, seq))
				}
			default:
				require.NoError(t, st.SaveCursors(ctx, step.save))
			}
			for name, seq := range step.want {
				assert.Equal(t, seq, load(t, st, name), "cursor %q", name)
			}
		})
	}

	t.Run("unstorable seq changes nothing", func(t *testing.T) {
		err := st.SaveCursors(ctx, map[string]uint64{"workers": 41, "mailer": 1 << 63})
		require.Error(t, err)
		assert.Equal(t, uint64(40), load(t, st, "workers"))
		assert.Zero(t, load(t, st, "mailer"))
	})
	t.Run("an empty batch is nothing", func(t *testing.T) {
		require.NoError(t, st.SaveCursors(ctx, nil))
	})
	t.Run("cancelled ctx saves nothing", func(t *testing.T) {
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		require.ErrorIs(t, st.SaveCursor(cctx, "workers", 99), context.Canceled)
		assert.Equal(t, uint64(40), load(t, st, "workers"))
	})
	require.NoError(t, st.Close())
	require.ErrorIs(t, st.SaveCursor(ctx, "workers", 1), eventbus.ErrClosed)
	_, err = st.LoadCursor(ctx, "workers")
	require.ErrorIs(t, err, eventbus.ErrClosed)

	t.Run("they survive a reopen", func(t *testing.T) {
		st, err := sqlitestore.Open(path)
		require.NoError(t, err)
		defer st.Close()
		for name, seq := range map[string]uint64{"workers": 40, "mailer": 0, "ünïcode name": 1 << 62, "": 5, "never": 0} {
			assert.Equal(t, seq, load(t, st, name), "cursor %q", name)
		}
	})
	t.Run("read-only loads but does not save", func(t *testing.T) {
		st, err := sqlitestore.Open(path, sqlitestore.WithReadOnly())
		require.NoError(t, err)
		defer st.Close()
		assert.Equal(t, uint64(40), load(t, st, "workers"))
		require.ErrorIs(t, st.SaveCursor(ctx, "workers", 50), sqlitestore.ErrReadOnly)
		assert.Equal(t, uint64(40), load(t, st, "workers"))
	})
	t.Run("the sqlite3 shell reads them", func(t *testing.T) {
		db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
		require.NoError(t, err)
		defer db.Close()
		var seq int64
		require.NoError(t, db.QueryRow(`SELECT seq FROM cursors WHERE name = 'workers'`).Scan(&seq))
		assert.Equal(t, int64(40), seq)
	})
}
