package sqlitestore_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/stretchr/testify/require"

	"github.com/choiros/eventbus"
	"github.com/choiros/eventbus/sqlitestore"
)

// benchTopic is the topic of the i-th fixture event: half under worker.*
// (100 workers × 4 kinds), a fifth under chat.* (20 rooms), and file.*,
// user.input and system.heartbeat. fixtureSQL computes the same in SQL.
func benchTopic(i int) string {
	switch r := i % 20; {
	case r < 10:
		return fmt.Sprintf("worker.w%d.%s", i%100, [...]string{"spawned", "progress", "complete", "failed"}[i%4])
	case r < 14:
		return fmt.Sprintf("chat.room%d.message", (i/20)%20)
	case r < 17:
		return "file." + [...]string{"changed", "created", "deleted"}[i%3]
	case r == 17:
		return "user.input"
	}
	return "system.heartbeat"
}

// benchEvent is the i-th fixture event, as fixtureSQL writes it.
func benchEvent(tb testing.TB, i int, base time.Time) eventbus.Event {
	id, err := ulid.ParseStrict(fmt.Sprintf("%026d", i))
	require.NoError(tb, err)
	return eventbus.Event{
		ID:        id,
		Seq:       uint64(i),
		Type:      eventbus.WorkerProgress,
		Topic:     benchTopic(i),
		Payload:   []byte(fmt.Sprintf(`{"i":%d,"msg":"hello world"}`, i)),
		Timestamp: base.Add(time.Duration(i) * time.Millisecond),
		Source:    "bench",
	}
}

// fixtureSQL fills a new store with events 1..?1 one millisecond apart
// from ?2 (Unix nanoseconds), exactly as Append would write benchEvent's
// events, in one statement per table.
const fixtureSQL = `
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?1)
INSERT INTO events (seq, id, type, topic, payload, ts, source, correlation_id)
SELECT i, printf('%026d', i), 'worker_progress',
       CASE
         WHEN i % 20 < 10 THEN 'worker.w' || (i % 100) || '.' ||
              CASE i % 4 WHEN 0 THEN 'spawned' WHEN 1 THEN 'progress' WHEN 2 THEN 'complete' ELSE 'failed' END
         WHEN i % 20 < 14 THEN 'chat.room' || ((i / 20) % 20) || '.message'
         WHEN i % 20 < 17 THEN 'file.' || CASE i % 3 WHEN 0 THEN 'changed' WHEN 1 THEN 'created' ELSE 'deleted' END
         WHEN i % 20 = 17 THEN 'user.input'
         ELSE 'system.heartbeat'
       END,
       '{"i":' || i || ',"msg":"hello world"}', ?2 + i * 1000000, 'bench', NULL
FROM n;
INSERT INTO topic_prefixes (prefix, seq)
SELECT * FROM (
  SELECT substr(topic, 1, instr(topic, '.') - 1) AS prefix, seq FROM events
  UNION ALL
  SELECT substr(topic, 1, instr(topic, '.') + instr(substr(topic, instr(topic, '.') + 1), '.') - 1), seq
  FROM events WHERE instr(substr(topic, instr(topic, '.') + 1), '.') > 0
) ORDER BY prefix, seq;
`

// buildFixture creates a store of n events at path in one transaction. The
// store's indexes on events are dropped while the rows go in and made again
// from their own definitions, which is several times faster than
// maintaining them row by row.
func buildFixture(tb testing.TB, path string, n int, base time.Time) {
	st, err := sqlitestore.Open(path)
	require.NoError(tb, err)
	require.NoError(tb, st.Close())
	// A big page cache and in-memory temp storage keep the sorts for the
	// indexes off the disk.
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)"+
		"&_pragma=cache_size(-262144)&_pragma=temp_store(MEMORY)")
	require.NoError(tb, err)
	defer db.Close()
	db.SetMaxOpenConns(1)
	tx, err := db.Begin()
	require.NoError(tb, err)
	defer func() { _ = tx.Rollback() }()

	type index struct{ name, sql string }
	var indexes []index
	rows, err := tx.Query(`SELECT name, sql FROM sqlite_schema WHERE type = 'index' AND tbl_name = 'events' AND sql IS NOT NULL`)
	require.NoError(tb, err)
	for rows.Next() {
		var ix index
		require.NoError(tb, rows.Scan(&ix.name, &ix.sql))
		indexes = append(indexes, ix)
	}
	require.NoError(tb, rows.Err())
	require.NoError(tb, rows.Close())
	require.NotEmpty(tb, indexes)
	for _, ix := range indexes {
		_, err = tx.Exec(`DROP INDEX "` + ix.name + `"`)
		require.NoError(tb, err)
	}
	_, err = tx.Exec(fixtureSQL, n, base.UnixNano())
	require.NoError(tb, err)
	for _, ix := range indexes {
		_, err = tx.Exec(ix.sql)
		require.NoError(tb, err)
	}
	require.NoError(tb, tx.Commit())
}

// TestFixtureMatchesAppend checks that the benchmark fixture holds exactly
// what Append writes for the same events.
func TestFixtureMatchesAppend(t *testing.T) {
	const n = 500
	base := time.Date(2025, 1, 2, 3, 4, 5, 6, time.UTC)
	dir := t.TempDir()
	built := filepath.Join(dir, "built.db")
	buildFixture(t, built, n, base)

	appended := filepath.Join(dir, "appended.db")
	st, err := sqlitestore.Open(appended)
	require.NoError(t, err)
	var events []eventbus.Event
	for i := 1; i <= n; i++ {
		events = append(events, benchEvent(t, i, base))
	}
	require.NoError(t, st.Append(context.Background(), events))
	require.NoError(t, st.Close())

	dump := func(path string) []string {
		db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
		require.NoError(t, err)
		defer db.Close()
		var out []string
		for _, q := range []string{
			"SELECT seq, id, type, topic, payload, ts, source, coalesce(correlation_id, 'NULL') || coalesce(metadata, 'NULL') FROM events ORDER BY seq",
			"SELECT prefix, seq, '', '', '', '', '', '' FROM topic_prefixes ORDER BY prefix, seq",
			"SELECT key, value, '', '', '', '', '', '' FROM meta WHERE key != 'epoch' ORDER BY key",
		} {
			rows, err := db.Query(q)
			require.NoError(t, err)
			for rows.Next() {
				var c [8]string
				require.NoError(t, rows.Scan(&c[0], &c[1], &c[2], &c[3], &c[4], &c[5], &c[6], &c[7]))
				out = append(out, fmt.Sprint(c))
			}
			require.NoError(t, rows.Err())
			require.NoError(t, rows.Close())
		}
		return out
	}
	require.Equal(t, dump(appended), dump(built))
}

// benchEvents is the size of BenchmarkQuery's store.
const benchEvents = 1_000_000

var (
	fixtureOnce sync.Once
	fixtureDir  string
	fixturePath string
	fixtureErr  error
)

// queryFixture returns the path of a store of benchEvents events, built
// once per process and removed by TestMain.
func queryFixture(b *testing.B) string {
	fixtureOnce.Do(func() {
		fixtureDir, fixtureErr = os.MkdirTemp("", "sqlitestore-bench")
		if fixtureErr != nil {
			return
		}
		fixturePath = filepath.Join(fixtureDir, "events.db")
		start := time.Now()
		buildFixture(b, fixturePath, benchEvents, time.Now().Add(-2*time.Hour))
		b.Logf("built a store of %d events in %v", benchEvents, time.Since(start).Round(time.Millisecond))
	})
	require.NoError(b, fixtureErr)
	return fixturePath
}

func removeFixtures() {
	if fixtureDir != "" {
		_ = os.RemoveAll(fixtureDir)
	}
}

// BenchmarkAppend appends batches of 1 and 100 events through Store.Append,
// beside the same rows written by a plain prepared INSERT through the same
// driver, one transaction per batch: "plain" into a table with no
// secondary index, "plain-indexed" with events_topic and events_ts.
// Append's extra cost over plain-indexed is the topic_prefixes rows
// (mostly the pages they change; see BenchmarkPrefixIndex); its saving is
// multi-row INSERTs through the driver.
func BenchmarkAppend(b *testing.B) {
	base := time.Now().UTC()
	for _, n := range []int{1, 100} {
		b.Run(fmt.Sprintf("store/batch=%d", n), func(b *testing.B) {
			st, err := sqlitestore.Open(filepath.Join(b.TempDir(), "events.db"))
			require.NoError(b, err)
			b.Cleanup(func() { st.Close() })
			batch := make([]eventbus.Event, n)
			for i := range batch {
				batch[i] = benchEvent(b, i+1, base)
			}
			ctx := context.Background()
			seq := uint64(0)
			b.ReportAllocs()
			for b.Loop() {
				for i := range batch {
					seq++
					batch[i].Seq = seq
					batch[i].Timestamp = base.Add(time.Duration(seq) * time.Millisecond)
				}
				if err := st.Append(ctx, batch); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(seq)/b.Elapsed().Seconds(), "events/s")
		})
		for _, indexed := range []bool{false, true} {
			name := "plain"
			if indexed {
				name = "plain-indexed"
			}
			b.Run(fmt.Sprintf("%s/batch=%d", name, n), func(b *testing.B) {
				db, ins := plainTable(b, indexed)
				batch := make([]eventbus.Event, n)
				for i := range batch {
					batch[i] = benchEvent(b, i+1, base)
				}
				seq := int64(0)
				b.ReportAllocs()
				for b.Loop() {
					tx, err := db.Begin()
					if err != nil {
						b.Fatal(err)
					}
					stmt := tx.Stmt(ins)
					for i := range batch {
						e := &batch[i]
						seq++
						e.Timestamp = base.Add(time.Duration(seq) * time.Millisecond)
						var corr any
						if e.CorrelationID != "" {
							corr = e.CorrelationID
						}
						if _, err := stmt.Exec(seq, e.ID.String(), string(e.Type), e.Topic, string(e.Payload),
							e.Timestamp.UnixNano(), e.Source, corr); err != nil {
							b.Fatal(err)
						}
					}
					if err := tx.Commit(); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(seq)/b.Elapsed().Seconds(), "events/s")
			})
		}
	}
}

// plainTable opens a database with the store's pragmas and an events table,
// and prepares a plain INSERT into it.
func plainTable(b *testing.B, indexed bool) (*sql.DB, *sql.Stmt) {
	path := filepath.Join(b.TempDir(), "plain.db")
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_txlock=immediate")
	require.NoError(b, err)
	db.SetMaxOpenConns(1)
	b.Cleanup(func() { db.Close() })
	_, err = db.Exec(`CREATE TABLE events (seq INTEGER PRIMARY KEY, id TEXT NOT NULL, type TEXT NOT NULL,
		topic TEXT NOT NULL, payload TEXT NOT NULL, ts INTEGER NOT NULL, source TEXT NOT NULL, correlation_id TEXT)`)
	require.NoError(b, err)
	if indexed {
		_, err = db.Exec(`CREATE INDEX events_topic ON events (topic); CREATE INDEX events_ts ON events (ts)`)
		require.NoError(b, err)
	}
	ins, err := db.Prepare(`INSERT INTO events (seq, id, type, topic, payload, ts, source, correlation_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`)
	require.NoError(b, err)
	b.Cleanup(func() { ins.Close() })
	return db, ins
}

// BenchmarkQuery queries a store of 1,000,000 events (half of them under
// worker.*, see benchTopic). The store is built once per process, in a few
// seconds; the benchmark is skipped with -short.
func BenchmarkQuery(b *testing.B) {
	if testing.Short() {
		b.Skip("builds a store of 1,000,000 events")
	}
	st, err := sqlitestore.Open(queryFixture(b))
	require.NoError(b, err)
	b.Cleanup(func() { st.Close() })
	ctx := context.Background()
	last, err := st.LastSeq(ctx)
	require.NoError(b, err)
	require.Equal(b, uint64(benchEvents), last)
	newest, err := st.Query(ctx, eventbus.Query{Newest: true, Limit: 1})
	require.NoError(b, err)
	lastTS := newest[0].Timestamp

	tests := []struct {
		name string
		q    eventbus.Query
		want int
	}{
		{"prefix-newest-100", eventbus.Query{Pattern: "worker.*", Newest: true, Limit: 100}, 100},
		{"prefix-after-seq-100", eventbus.Query{Pattern: "worker.*", AfterSeq: benchEvents - 1000, Limit: 100}, 100},
		{"exact-newest-100", eventbus.Query{Pattern: "chat.room7.message", Newest: true, Limit: 100}, 100},
		{"all-newest-100", eventbus.Query{Newest: true, Limit: 100}, 100},
		{"glob-newest-100", eventbus.Query{Pattern: "worker.*.failed", Newest: true, Limit: 100}, 100},
		{"since-last-second", eventbus.Query{Since: lastTS.Add(-time.Second + time.Millisecond), Limit: 10000}, 1000},
	}
	for _, tt := range tests {
		b.Run(tt.name, func(b *testing.B) {
			got, err := st.Query(ctx, tt.q)
			require.NoError(b, err)
			require.Len(b, got, tt.want)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := st.Query(ctx, tt.q); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*tt.want)/b.Elapsed().Seconds(), "events/s")
		})
	}

	// The design not taken: "worker.*" as a range of events_topic, which
	// yields the rows by topic, so all 500,000 must be read and sorted by
	// seq to find the newest 100.
	b.Run("alt-topic-range-newest-100", func(b *testing.B) {
		db, err := sql.Open("sqlite", "file:"+queryFixture(b)+"?mode=ro")
		require.NoError(b, err)
		b.Cleanup(func() { db.Close() })
		stmt, err := db.Prepare(`SELECT seq, id, type, topic, payload, ts, source, correlation_id FROM events
			WHERE topic >= 'worker.' AND topic < 'worker/' ORDER BY seq DESC LIMIT 100`)
		require.NoError(b, err)
		b.Cleanup(func() { stmt.Close() })
		b.ReportAllocs()
		for b.Loop() {
			rows, err := stmt.Query()
			if err != nil {
				b.Fatal(err)
			}
			n := 0
			for rows.Next() {
				var (
					seq, ts                         int64
					id, typ, topic, payload, source string
					corr                            sql.NullString
				)
				if err := rows.Scan(&seq, &id, &typ, &topic, &payload, &ts, &source, &corr); err != nil {
					b.Fatal(err)
				}
				n++
			}
			if err := rows.Close(); err != nil || n != 100 {
				b.Fatal(err, n)
			}
		}
		b.ReportMetric(float64(b.N*100)/b.Elapsed().Seconds(), "events/s")
	})
}
