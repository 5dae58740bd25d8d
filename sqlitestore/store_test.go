package sqlitestore_test

import (
	"bytes"
	"context"
	"database/sql"
	"io/fs"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"modernc.org/sqlite"

	"github.com/choiros/eventbus"
	"github.com/choiros/eventbus/sqlitestore"
	"github.com/choiros/eventbus/storetest"
)

func openTemp(t testing.TB, opts ...sqlitestore.Option) (*sqlitestore.Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "events.db")
	st, err := sqlitestore.Open(path, opts...)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, st.Close()) })
	return st, path
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) eventbus.Store {
		st, _ := openTemp(t)
		return st
	})
}

func newEvents(t testing.TB, first uint64, n int, topic string) []eventbus.Event {
	t.Helper()
	ts := time.Now().UTC()
	out := make([]eventbus.Event, n)
	for i := range out {
		e, err := eventbus.NewEvent(eventbus.WorkerProgress, topic, map[string]int{"n": int(first) + i}, "test")
		require.NoError(t, err)
		e.Seq, e.Timestamp = first+uint64(i), ts
		out[i] = e
	}
	return out
}

func all(t testing.TB, st eventbus.Store) []eventbus.Event {
	t.Helper()
	got, err := st.Query(context.Background(), eventbus.Query{Limit: eventbus.MaxQueryLimit})
	require.NoError(t, err)
	return got
}

func lastSeq(t testing.TB, st eventbus.Store) uint64 {
	t.Helper()
	seq, err := st.LastSeq(context.Background())
	require.NoError(t, err)
	return seq
}

func TestReopenKeepsEventsAndLastSeq(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "events.db")
	st, err := sqlitestore.Open(path)
	require.NoError(t, err)
	want := append(newEvents(t, 1, 5, "worker.task"), newEvents(t, 9, 3, "chat.room")...)
	require.NoError(t, st.Append(ctx, want[:5]))
	require.NoError(t, st.Append(ctx, want[5:]))
	require.NoError(t, st.Close())
	for _, suffix := range []string{"-wal", "-shm"} {
		_, err := os.Stat(path + suffix)
		assert.ErrorIs(t, err, fs.ErrNotExist, "Close left %s behind", suffix)
	}

	st, err = sqlitestore.Open(path)
	require.NoError(t, err)
	defer st.Close()
	assert.Equal(t, uint64(11), lastSeq(t, st))
	got := all(t, st)
	require.Len(t, got, len(want))
	for i := range want {
		assert.Equal(t, want[i].ID, got[i].ID)
		assert.Equal(t, want[i].Seq, got[i].Seq)
		assert.Equal(t, string(want[i].Payload), string(got[i].Payload))
		assert.True(t, want[i].Timestamp.Equal(got[i].Timestamp))
	}
	require.Error(t, st.Append(ctx, newEvents(t, 11, 1, "worker.task")), "Seq at LastSeq after reopen")
	require.NoError(t, st.Append(ctx, newEvents(t, 12, 1, "worker.task")))
	assert.Equal(t, uint64(12), lastSeq(t, st))
}

func TestOpenRejectsBadFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(t *testing.T, name string, data []byte) string {
		t.Helper()
		path := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(path, data, 0o644))
		return path
	}
	// damaged returns a real store whose first page, past the file header,
	// is overwritten: the schema can no longer be read.
	damaged := func(t *testing.T) string {
		t.Helper()
		path := filepath.Join(dir, "damaged.db")
		st, err := sqlitestore.Open(path)
		require.NoError(t, err)
		require.NoError(t, st.Append(context.Background(), newEvents(t, 1, 50, "worker.task")))
		require.NoError(t, st.Close())
		f, err := os.OpenFile(path, os.O_RDWR, 0)
		require.NoError(t, err)
		defer f.Close()
		_, err = f.WriteAt(bytes.Repeat([]byte{0xA5}, 1000), 100)
		require.NoError(t, err)
		return path
	}
	// foreign returns an SQLite database of another application.
	foreign := func(t *testing.T, name, ddl string) string {
		t.Helper()
		path := filepath.Join(dir, name)
		db, err := sql.Open("sqlite", path)
		require.NoError(t, err)
		_, err = db.Exec(ddl)
		require.NoError(t, err)
		require.NoError(t, db.Close())
		return path
	}

	tests := []struct {
		name string
		path func(t *testing.T) string
		want error
	}{
		{"text file", func(t *testing.T) string {
			return write(t, "text.db", bytes.Repeat([]byte("this is not a database\n"), 400))
		}, sqlitestore.ErrCorrupt},
		{"short garbage", func(t *testing.T) string { return write(t, "short.db", []byte("x")) }, sqlitestore.ErrCorrupt},
		{"random bytes", func(t *testing.T) string {
			return write(t, "random.db", bytes.Repeat([]byte{0x5a, 0x00, 0xff, 0x13}, 1024))
		}, sqlitestore.ErrCorrupt},
		{"damaged store", damaged, sqlitestore.ErrCorrupt},
		{"another application's database", func(t *testing.T) string {
			return foreign(t, "foreign.db", "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")
		}, sqlitestore.ErrSchema},
		{"a newer schema version", func(t *testing.T) string {
			path := filepath.Join(dir, "newer.db")
			st, err := sqlitestore.Open(path)
			require.NoError(t, err)
			require.NoError(t, st.Close())
			db, err := sql.Open("sqlite", path)
			require.NoError(t, err)
			_, err = db.Exec("PRAGMA user_version = 99")
			require.NoError(t, err)
			require.NoError(t, db.Close())
			return path
		}, sqlitestore.ErrSchema},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := tt.path(t)
			before, err := os.ReadFile(path)
			require.NoError(t, err)
			st, err := sqlitestore.Open(path)
			require.ErrorIs(t, err, tt.want)
			after, err2 := os.ReadFile(path)
			require.NoError(t, err2)
			assert.True(t, bytes.Equal(before, after), "Open changed a file it refused")
			for _, suffix := range []string{"-wal", "-shm", "-journal"} {
				_, statErr := os.Stat(path + suffix)
				assert.ErrorIs(t, statErr, fs.ErrNotExist, "Open left %s behind", suffix)
			}
			assert.Nil(t, st)
			assert.Contains(t, err.Error(), path)
			if tt.want == sqlitestore.ErrCorrupt && tt.name != "short garbage" {
				var driverErr *sqlite.Error
				assert.ErrorAs(t, err, &driverErr, "the driver's error is not wrapped")
			}
			t.Log(err)
		})
	}

	t.Run("a directory", func(t *testing.T) {
		_, err := sqlitestore.Open(t.TempDir())
		require.Error(t, err)
	})
	t.Run("an empty file is a new store", func(t *testing.T) {
		path := write(t, "empty.db", nil)
		st, err := sqlitestore.Open(path)
		require.NoError(t, err)
		defer st.Close()
		assert.Equal(t, uint64(0), lastSeq(t, st))
	})
}

func TestReadOnly(t *testing.T) {
	ctx := context.Background()
	create := func(t *testing.T) string {
		t.Helper()
		path := filepath.Join(t.TempDir(), "events.db")
		st, err := sqlitestore.Open(path)
		require.NoError(t, err)
		require.NoError(t, st.Append(ctx, newEvents(t, 1, 3, "worker.task")))
		require.NoError(t, st.Close())
		return path
	}

	t.Run("file without write permission", func(t *testing.T) {
		// Tests often run as root, whom permissions do not stop: Open
		// itself must notice and open the file read-only.
		path := create(t)
		require.NoError(t, os.Chmod(path, 0o444))
		st, err := sqlitestore.Open(path)
		require.NoError(t, err)
		assert.Len(t, all(t, st), 3)
		assert.Equal(t, uint64(3), lastSeq(t, st))
		err = st.Append(ctx, newEvents(t, 4, 1, "worker.task"))
		require.ErrorIs(t, err, sqlitestore.ErrReadOnly)
		require.NoError(t, st.Close())

		require.NoError(t, os.Chmod(path, 0o644))
		st, err = sqlitestore.Open(path)
		require.NoError(t, err)
		defer st.Close()
		assert.Equal(t, uint64(3), lastSeq(t, st), "the read-only store wrote")
		assert.Len(t, all(t, st), 3)
	})

	t.Run("WithReadOnly reads what a writer appends", func(t *testing.T) {
		path := create(t)
		w, err := sqlitestore.Open(path)
		require.NoError(t, err)
		defer w.Close()
		ro, err := sqlitestore.Open(path, sqlitestore.WithReadOnly())
		require.NoError(t, err)
		defer ro.Close()

		assert.Len(t, all(t, ro), 3)
		require.NoError(t, w.Append(ctx, newEvents(t, 4, 2, "worker.task")))
		assert.Len(t, all(t, ro), 5)
		assert.Equal(t, uint64(5), lastSeq(t, ro))
		require.ErrorIs(t, ro.Append(ctx, newEvents(t, 6, 1, "worker.task")), sqlitestore.ErrReadOnly)
		assert.Equal(t, uint64(5), lastSeq(t, w))
	})

	t.Run("WithReadOnly needs an existing store", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "missing.db")
		_, err := sqlitestore.Open(path, sqlitestore.WithReadOnly())
		require.Error(t, err)
		_, statErr := os.Stat(path)
		assert.ErrorIs(t, statErr, fs.ErrNotExist, "a read-only Open created the file")
	})
}

func TestOptionsAreChecked(t *testing.T) {
	tests := []struct {
		name string
		opt  sqlitestore.Option
	}{
		{"negative max events", sqlitestore.WithMaxEvents(-1)},
		{"negative max age", sqlitestore.WithMaxAge(-time.Second)},
		{"zero prune interval", sqlitestore.WithPruneInterval(0)},
		{"negative busy timeout", sqlitestore.WithBusyTimeout(-time.Second)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "events.db")
			_, err := sqlitestore.Open(path, tt.opt)
			require.ErrorIs(t, err, eventbus.ErrInvalidOption)
			_, statErr := os.Stat(path)
			assert.ErrorIs(t, statErr, fs.ErrNotExist, "Open with a bad option created the file")
		})
	}
	t.Run("nil option is skipped", func(t *testing.T) {
		st, err := sqlitestore.Open(filepath.Join(t.TempDir(), "events.db"), nil, sqlitestore.WithMaxEvents(0))
		require.NoError(t, err)
		require.NoError(t, st.Close())
	})
}

func TestAppendRejectsUnstorableEvents(t *testing.T) {
	st, _ := openTemp(t)
	ctx := context.Background()
	require.NoError(t, st.Append(ctx, newEvents(t, 1, 2, "worker.task")))
	tests := []struct {
		name   string
		modify func(e *eventbus.Event)
	}{
		{"seq above MaxInt64", func(e *eventbus.Event) { e.Seq = math.MaxInt64 + 1 }},
		{"zero timestamp", func(e *eventbus.Event) { e.Timestamp = time.Time{} }},
		{"timestamp after 2262", func(e *eventbus.Event) { e.Timestamp = time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC) }},
		{"timestamp before 1678", func(e *eventbus.Event) { e.Timestamp = time.Date(1600, 1, 1, 0, 0, 0, 0, time.UTC) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			batch := newEvents(t, 3, 3, "worker.task")
			tt.modify(&batch[2])
			require.Error(t, st.Append(ctx, batch))
			assert.Equal(t, uint64(2), lastSeq(t, st))
			assert.Len(t, all(t, st), 2)
		})
	}
	t.Run("largest seq and nil payload", func(t *testing.T) {
		batch := newEvents(t, math.MaxInt64, 1, "worker.task")
		batch[0].Payload = nil
		require.NoError(t, st.Append(ctx, batch))
		got := all(t, st)
		require.Len(t, got, 3)
		assert.Equal(t, uint64(math.MaxInt64), got[2].Seq)
		assert.Equal(t, "null", string(got[2].Payload))
		got, err := st.Query(ctx, eventbus.Query{AfterSeq: math.MaxInt64})
		require.NoError(t, err)
		assert.Empty(t, got)
	})
}

func TestClosedStoreReturnsErrClosed(t *testing.T) {
	st, err := sqlitestore.Open(filepath.Join(t.TempDir(), "events.db"), sqlitestore.WithMaxEvents(10))
	require.NoError(t, err)
	require.NoError(t, st.Close())
	ctx := context.Background()
	require.ErrorIs(t, st.Append(ctx, newEvents(t, 1, 1, "a.b")), eventbus.ErrClosed)
	_, err = st.Query(ctx, eventbus.Query{})
	require.ErrorIs(t, err, eventbus.ErrClosed)
	_, err = st.LastSeq(ctx)
	require.ErrorIs(t, err, eventbus.ErrClosed)
	require.NoError(t, st.Close())
}

func TestQueryHonoursContext(t *testing.T) {
	st, _ := openTemp(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := st.Query(ctx, eventbus.Query{})
	require.ErrorIs(t, err, context.Canceled)
	require.ErrorIs(t, st.Append(ctx, newEvents(t, 1, 1, "a.b")), context.Canceled)
	assert.Equal(t, uint64(0), lastSeq(t, st))
}

// TestFileReadableBySQLiteShell checks the schema the package doc promises,
// with the sqlite3 shell when it is installed.
func TestFileReadableBySQLiteShell(t *testing.T) {
	shell, err := exec.LookPath("sqlite3")
	if err != nil {
		t.Skip("sqlite3 shell not installed")
	}
	path := filepath.Join(t.TempDir(), "events.db")
	st, err := sqlitestore.Open(path)
	require.NoError(t, err)
	events := newEvents(t, 1, 3, "worker.task.progress")
	events[1] = events[1].WithCorrelationID("job-1")
	events[0].Timestamp = time.Date(2024, 5, 6, 7, 8, 9, 123456789, time.UTC)
	events[2].Metadata = map[string]string{"traceparent": "00-abc-01", "note": "h\u00e9 \"x\""}
	require.NoError(t, st.Append(context.Background(), events))
	require.NoError(t, st.SaveCursors(context.Background(), map[string]uint64{"workers": 2, "mailer": 3}))
	epoch, err := st.Epoch(context.Background())
	require.NoError(t, err)
	require.NoError(t, st.Close())

	run := func(sql string) string {
		t.Helper()
		out, err := exec.Command(shell, "-readonly", "-batch", path, sql).CombinedOutput()
		require.NoError(t, err, "%s", out)
		return strings.TrimSpace(string(out))
	}
	assert.Equal(t, "ok", run("PRAGMA integrity_check"))
	assert.Equal(t, "2", run("PRAGMA user_version"))
	assert.Equal(t, "1|worker.task.progress|1|2024-05-06 07:08:09|\n2|worker.task.progress|2||job-1\n3|worker.task.progress|3||",
		run(`SELECT seq, topic, json_extract(payload, '$.n'),
		            CASE seq WHEN 1 THEN datetime(ts / 1000000000, 'unixepoch') ELSE '' END,
		            coalesce(correlation_id, '')
		     FROM events ORDER BY seq`))
	assert.Equal(t, events[2].ID.String(), run("SELECT id FROM events WHERE seq = 3"))
	assert.Equal(t, "worker|3\nworker.task|3", run("SELECT prefix, count(*) FROM topic_prefixes GROUP BY prefix ORDER BY prefix"))
	assert.Equal(t, "last_seq|0", run("SELECT key, value FROM meta WHERE key = 'last_seq'"), "no event was deleted")
	assert.Equal(t, epoch, run("SELECT value FROM meta WHERE key = 'epoch'"))
	assert.Equal(t, "1||\n2||\n3|00-abc-01|"+`{"note":"hé \"x\"","traceparent":"00-abc-01"}`,
		run(`SELECT seq, json_extract(metadata, '$.traceparent'), metadata FROM events ORDER BY seq`))
	assert.Equal(t, "mailer|3\nworkers|2", run("SELECT name, seq FROM cursors ORDER BY name"))
}

func TestPathWithURICharacters(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a dir?with#odd%20chars&mode=ro")
	require.NoError(t, os.Mkdir(dir, 0o755))
	path := filepath.Join(dir, "events?.db")
	st, err := sqlitestore.Open(path)
	require.NoError(t, err)
	require.NoError(t, st.Append(context.Background(), newEvents(t, 1, 2, "a.b")))
	require.NoError(t, st.Close())
	fi, err := os.Stat(path)
	require.NoError(t, err, "the file is not where it was asked to be")
	assert.Positive(t, fi.Size())

	st, err = sqlitestore.Open(path, sqlitestore.WithReadOnly())
	require.NoError(t, err)
	defer st.Close()
	assert.Equal(t, uint64(2), lastSeq(t, st))
}

// TestSecondWriterCollision shows what the one-writer rule protects: a
// second Store writing the same file assigns Seqs the first does not know
// of, and a batch of the first that reuses one fails whole.
func TestSecondWriterCollision(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "events.db")
	a, err := sqlitestore.Open(path)
	require.NoError(t, err)
	defer a.Close()
	b, err := sqlitestore.Open(path)
	require.NoError(t, err)
	defer b.Close()

	require.NoError(t, b.Append(ctx, newEvents(t, 1, 3, "b.events")))
	require.Error(t, a.Append(ctx, newEvents(t, 2, 3, "a.events")), "Seq 2 and 3 are b's")
	assert.Empty(t, query(t, b, eventbus.Query{Pattern: "a.*"}), "part of a failed batch was stored")
	assert.Empty(t, query(t, b, eventbus.Query{Pattern: "a.events"}))
	assert.Equal(t, uint64(0), lastSeq(t, a), "a failed batch moved LastSeq")

	// The file is still whole and a's next batch above b's Seqs goes in.
	require.NoError(t, a.Append(ctx, newEvents(t, 4, 1, "a.events")))
	assert.Equal(t, []uint64{1, 2, 3, 4}, seqsOf(all(t, b)))
}
