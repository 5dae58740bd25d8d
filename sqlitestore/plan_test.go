package sqlitestore

import (
	"context"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/choiros/eventbus"
)

// explain returns the EXPLAIN QUERY PLAN lines of query.
func explain(t *testing.T, s *Store, query string, args ...any) []string {
	t.Helper()
	rows, err := s.r.Query("EXPLAIN QUERY PLAN "+query, args...)
	require.NoError(t, err)
	defer rows.Close()
	var lines []string
	for rows.Next() {
		var id, parent, notUsed int
		var detail string
		require.NoError(t, rows.Scan(&id, &parent, &notUsed, &detail))
		lines = append(lines, detail)
	}
	require.NoError(t, rows.Err())
	return lines
}

// fullScan matches a plan line that reads a whole table or index ("SCAN e",
// "SCAN events USING INDEX …"); seeks are "SEARCH".
var fullScan = regexp.MustCompile(`^SCAN (e|p|events|topic_prefixes)\b`)

func TestQueryPlanUsesIndexes(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "plan.db"), WithMaxAge(24*time.Hour))
	require.NoError(t, err)
	defer s.Close()
	// A few rows, so the plan is not the empty-table one.
	var events []eventbus.Event
	for i := 1; i <= 20; i++ {
		e, err := eventbus.NewEvent(eventbus.WorkerProgress, "worker.task.progress", i, "test")
		require.NoError(t, err)
		e.Seq = uint64(i)
		events = append(events, e)
	}
	require.NoError(t, s.Append(context.Background(), events))

	since := time.Now().Add(-time.Hour)
	tests := []struct {
		name string
		q    eventbus.Query
		want []string // plan lines that must appear, as substrings
	}{
		{"exact topic", eventbus.Query{Pattern: "worker.task"},
			[]string{"SEARCH e USING INDEX events_topic (topic=? AND rowid>?)"}},
		{"exact topic newest", eventbus.Query{Pattern: "worker.task", Newest: true},
			[]string{"SEARCH e USING INDEX events_topic (topic=? AND rowid>?)"}},
		{"exact topic after seq since", eventbus.Query{Pattern: "worker.task", AfterSeq: 5, Since: since},
			[]string{"SEARCH e USING INDEX events_topic (topic=? AND rowid>?)"}},
		{"prefix", eventbus.Query{Pattern: "worker.*"},
			[]string{"SEARCH p USING PRIMARY KEY (prefix=? AND seq>?)", "SEARCH e USING INTEGER PRIMARY KEY (rowid=?)"}},
		{"prefix newest", eventbus.Query{Pattern: "worker.task.*", Newest: true, Limit: 100},
			[]string{"SEARCH p USING PRIMARY KEY (prefix=? AND seq>?)", "SEARCH e USING INTEGER PRIMARY KEY (rowid=?)"}},
		{"prefix after seq since", eventbus.Query{Pattern: "worker.*", AfterSeq: 7, Since: since},
			[]string{"SEARCH p USING PRIMARY KEY (prefix=? AND seq>?)"}},
		{"all", eventbus.Query{Pattern: "*"},
			[]string{"SEARCH e USING INTEGER PRIMARY KEY (rowid>?)"}},
		{"all newest", eventbus.Query{Newest: true},
			[]string{"SEARCH e USING INTEGER PRIMARY KEY (rowid>?)"}},
		{"after seq", eventbus.Query{AfterSeq: 10},
			[]string{"SEARCH e USING INTEGER PRIMARY KEY (rowid>?)"}},
		{"after seq and since", eventbus.Query{AfterSeq: 10, Since: since},
			[]string{"SEARCH e USING INTEGER PRIMARY KEY (rowid>?)"}},
		{"since", eventbus.Query{Since: since},
			[]string{"SEARCH e USING INDEX events_ts (ts>?)"}},
		{"since newest", eventbus.Query{Since: since, Newest: true},
			[]string{"SEARCH e USING INDEX events_ts (ts>?)"}},
		{"glob narrowed by a prefix", eventbus.Query{Pattern: "worker.*.progress"},
			[]string{"SEARCH p USING PRIMARY KEY (prefix=? AND seq>?)"}},
		{"glob narrowed by a partial segment", eventbus.Query{Pattern: "chat.room?"},
			[]string{"SEARCH p USING PRIMARY KEY (prefix=? AND seq>?)"}},
		{"glob narrowed by a topic range", eventbus.Query{Pattern: "work*"},
			[]string{"SEARCH e USING INDEX events_topic (topic>? AND topic<?)"}},
		{"glob with a leading star after seq", eventbus.Query{Pattern: "*.progress", AfterSeq: 3},
			[]string{"SEARCH e USING INTEGER PRIMARY KEY (rowid>?)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, err := tt.q.Normalize()
			require.NoError(t, err)
			p, ok := s.plan(q, time.Now())
			require.True(t, ok)
			lines := explain(t, s, p.sql, p.args...)
			for _, l := range lines {
				assert.NotRegexp(t, fullScan, l, "full scan in %q", p.sql)
			}
			plan := strings.Join(lines, "\n")
			for _, w := range tt.want {
				assert.Contains(t, plan, w, "plan of %q", p.sql)
			}
			// And the query itself runs.
			_, err = s.Query(context.Background(), tt.q)
			require.NoError(t, err)
		})
	}

	t.Run("retention deletes and topic prefixes", func(t *testing.T) {
		for _, query := range []string{
			`DELETE FROM events WHERE seq IN (SELECT seq FROM events WHERE ts < ? LIMIT ?) RETURNING seq, topic`,
			`DELETE FROM events WHERE seq IN (SELECT seq FROM events ORDER BY seq LIMIT ?) RETURNING seq, topic`,
			`DELETE FROM topic_prefixes WHERE prefix = ? AND seq = ?`,
			prefixSQL,
		} {
			n := strings.Count(query, "?")
			args := make([]any, n)
			for i := range args {
				args[i] = 1
			}
			rows, err := s.wc.QueryContext(context.Background(), "EXPLAIN QUERY PLAN "+query, args...)
			require.NoError(t, err)
			for rows.Next() {
				var id, parent, notUsed int
				var detail string
				require.NoError(t, rows.Scan(&id, &parent, &notUsed, &detail))
				// "SCAN events" here is the ordered walk from the oldest
				// row, stopped by LIMIT: it reads only the rows it deletes.
				if strings.Contains(query, "ORDER BY seq LIMIT") && detail == "SCAN events" {
					continue
				}
				assert.NotRegexp(t, fullScan, detail, "full scan in %q", query)
			}
			require.NoError(t, rows.Err())
			require.NoError(t, rows.Close())
		}
	})
}

func TestClassify(t *testing.T) {
	tests := []struct {
		pattern string
		shape   shape
		key     string
		glob    bool
	}{
		{"*", shapeAll, "", false},
		{"worker", shapeExact, "worker", false},
		{"worker.task", shapeExact, "worker.task", false},
		{"worker.*", shapePrefix, "worker", false},
		{"worker.task.*", shapePrefix, "worker.task", false},
		{"worker.*.complete", shapePrefix, "worker", true},
		{"worker.task.*.x", shapePrefix, "worker.task", true},
		{"worker.t*", shapePrefix, "worker", true},
		{"chat.room?", shapePrefix, "chat", true},
		{"worker.?", shapePrefix, "worker", true},
		{"work*", shapeRange, "work", true},
		{"worker?task", shapeRange, "worker", true},
		{"*.failed", shapeAll, "", true},
		{"?orker", shapeAll, "", true},
		{"*.*", shapeAll, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.pattern, func(t *testing.T) {
			require.NoError(t, eventbus.ValidatePattern(tt.pattern))
			sh, key, glob := classify(tt.pattern)
			assert.Equal(t, tt.shape, sh)
			assert.Equal(t, tt.key, key)
			assert.Equal(t, tt.glob, glob)
		})
	}
	assert.Equal(t, "worl", upper("work"))
	assert.Equal(t, "worker/", upper("worker."))
}
