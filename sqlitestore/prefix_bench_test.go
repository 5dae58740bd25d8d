package sqlitestore

import (
	"database/sql"
	"fmt"
	"path/filepath"
	"testing"
	"time"
)

// prefixGenerated is the alternative to topic_prefixes that
// BenchmarkPrefixIndex measures: virtual generated columns holding a
// topic's first segment and first two segments, each with a partial
// index, which "prefix.*" queries of one or two segments could read in
// seq order (deeper prefixes would be narrowed by the second).
const prefixGenerated = `
ALTER TABLE events ADD COLUMN prefix1 TEXT GENERATED ALWAYS AS (
    CASE WHEN instr(topic, '.') > 0 THEN substr(topic, 1, instr(topic, '.') - 1) END) VIRTUAL;
ALTER TABLE events ADD COLUMN prefix2 TEXT GENERATED ALWAYS AS (
    CASE WHEN instr(substr(topic, instr(topic, '.') + 1), '.') > 0
         THEN substr(topic, 1, instr(topic, '.') + instr(substr(topic, instr(topic, '.') + 1), '.') - 1) END) VIRTUAL;
CREATE INDEX events_prefix1 ON events (prefix1) WHERE prefix1 IS NOT NULL;
CREATE INDEX events_prefix2 ON events (prefix2) WHERE prefix2 IS NOT NULL;
`

// BenchmarkPrefixIndex writes the same rows, in batches of 256 by
// insertSQL's statements, into the store's events table and indexes,
// with "prefix.*" served three ways: none (the floor), topic_prefixes
// filled by prefixSQL (what Append does), and prefixGenerated. Topics
// are the query benchmark's mix: a few first segments, a hundred second
// ones.
func BenchmarkPrefixIndex(b *testing.B) {
	base := time.Now().UTC()
	for _, variant := range []string{"none", "topic_prefixes", "generated"} {
		b.Run(variant, func(b *testing.B) {
			db, err := sql.Open(driverName, "file:"+filepath.Join(b.TempDir(), "x.db")+
				"?_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_pragma=temp_store(MEMORY)&_txlock=immediate")
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			db.SetMaxOpenConns(1)
			if _, err := db.Exec(migrations[0] + migrations[1]); err != nil {
				b.Fatal(err)
			}
			if variant == "generated" {
				if _, err := db.Exec(`DROP TABLE topic_prefixes;` + prefixGenerated); err != nil {
					b.Fatal(err)
				}
			}
			ins := make(map[int]*sql.Stmt)
			for n := 1; n <= rowsPerInsert; n++ {
				if ins[n], err = db.Prepare(insertSQL(n)); err != nil {
					b.Fatal(err)
				}
			}
			var pre *sql.Stmt
			if variant == "topic_prefixes" {
				if pre, err = db.Prepare(prefixSQL); err != nil {
					b.Fatal(err)
				}
			}
			args := make([]any, 0, eventColumns*rowsPerInsert)
			seq := 0
			b.ReportAllocs()
			b.ResetTimer()
			for first := 0; first < b.N; first += 256 {
				n := min(256, b.N-first)
				tx, err := db.Begin()
				if err != nil {
					b.Fatal(err)
				}
				lo := seq + 1
				for c := 0; c < n; c += rowsPerInsert {
					k := min(rowsPerInsert, n-c)
					args = args[:0]
					for range k {
						seq++
						topic := fmt.Sprintf("worker.w%d.progress", seq%100)
						if seq%2 == 0 {
							topic = [...]string{"chat.room1.message", "file.changed", "user.input", "system.heartbeat"}[seq%8/2]
						}
						args = append(args, int64(seq), []byte(fmt.Sprintf("%026d", seq)), "worker_progress", topic,
							[]byte(fmt.Sprintf(`{"i":%d,"msg":"hello world"}`, seq)), base.Add(time.Duration(seq)*time.Millisecond).UnixNano(), "bench", nil, nil)
					}
					if _, err := tx.Stmt(ins[k]).Exec(args...); err != nil {
						b.Fatal(err)
					}
				}
				if pre != nil {
					if _, err := tx.Stmt(pre).Exec(int64(lo), int64(seq)); err != nil {
						b.Fatal(err)
					}
				}
				if err := tx.Commit(); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}
