package storetest

// The query shapes of the conformance suite: patterns, Since, AfterSeq,
// Limit, Newest, and all of them against a reference model.

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/choiros/eventbus"
)

// patternTopics are the topics the pattern tests publish on, chosen to trip
// prefix comparisons: "worker-x", "worker/x" and "worker0" sort around
// "worker." byte-wise, and "worker" is the parent of "worker.*".
var patternTopics = []string{
	"worker",
	"worker.task",
	"worker.task.complete",
	"worker.task.failed",
	"worker.pool.complete",
	"worker.7.progress",
	"workers.task",
	"worker-x.task",
	"worker/x.task",
	"worker0.task",
	"chat",
	"chat.room1",
	"chat.room2",
	"chat.room10",
	"chat.räum",
	"file.changed",
	"system.heartbeat",
	"system.error.failed",
}

// appendPatternTopics stores two events per pattern topic, interleaved, in
// two batches, and returns them.
func appendPatternTopics(t *testing.T, st eventbus.Store) []eventbus.Event {
	b := base()
	var all []eventbus.Event
	for range 2 {
		var events []eventbus.Event
		for _, topic := range patternTopics {
			seq := uint64(len(all) + len(events) + 1)
			events = append(events, event(t, seq, topic, b.Add(time.Duration(seq)*time.Second)))
		}
		appendAll(t, st, events)
		all = append(all, events...)
	}
	return all
}

func testQueryPattern(t *testing.T, st eventbus.Store) {
	all := appendPatternTopics(t, st)
	tests := []struct {
		name    string
		pattern string
		want    []string // topics, in patternTopics order
	}{
		{"exact topic", "worker.task", []string{"worker.task"}},
		{"exact parent topic", "worker", []string{"worker"}},
		{"exact deep topic", "worker.task.complete", []string{"worker.task.complete"}},
		{"exact unicode topic", "chat.räum", []string{"chat.räum"}},
		{"exact topic nobody used", "nothing.here", nil},
		{"prefix", "worker.*", []string{"worker.task", "worker.task.complete", "worker.task.failed", "worker.pool.complete", "worker.7.progress"}},
		{"deeper prefix", "worker.task.*", []string{"worker.task.complete", "worker.task.failed"}},
		{"prefix with unicode below", "chat.*", []string{"chat.room1", "chat.room2", "chat.room10", "chat.räum"}},
		{"prefix of a leaf topic", "worker.task.complete.*", nil},
		{"prefix nobody used", "nothing.*", nil},
		{"all", "*", patternTopics},
		{"empty pattern", "", patternTopics},
		{"glob with leading star", "*.complete", []string{"worker.task.complete", "worker.pool.complete"}},
		{"glob crossing levels", "*.failed", []string{"worker.task.failed", "system.error.failed"}},
		{"glob in the middle", "worker.*.complete", []string{"worker.task.complete", "worker.pool.complete"}},
		{"glob under another root", "system.*.failed", []string{"system.error.failed"}},
		{"question mark", "chat.room?", []string{"chat.room1", "chat.room2"}},
		{"question mark on a multibyte character", "chat.r?um", []string{"chat.räum"}},
		{"question mark matches a dot", "worker?task", []string{"worker.task"}},
		{"star inside the first segment", "work*", []string{"worker", "worker.task", "worker.task.complete", "worker.task.failed", "worker.pool.complete", "worker.7.progress", "workers.task", "worker-x.task", "worker/x.task", "worker0.task"}},
		{"star after a partial segment", "chat.room1*", []string{"chat.room1", "chat.room10"}},
		{"glob nobody matches", "nothing.*.here", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var want []eventbus.Event
			for _, e := range all {
				if slices.Contains(tt.want, e.Topic) {
					want = append(want, e)
				}
			}
			// The table is checked against Match, so it cannot drift from
			// the pattern rules.
			require.Equal(t, seqs(want), seqs(model(all, eventbus.Query{Pattern: tt.pattern})), "table disagrees with eventbus.Match")

			got := query(t, st, eventbus.Query{Pattern: tt.pattern})
			assert.Equal(t, topics(want), topics(got))
			requireSameEvents(t, want, got)
		})
	}
}

func testQuerySince(t *testing.T, st eventbus.Store) {
	events := batch(t, 1, 10, "since.topic") // Timestamps base+0.1s … base+1s
	appendAll(t, st, events)
	ts := func(seq int) time.Time { return events[seq-1].Timestamp }
	tests := []struct {
		name  string
		since time.Time
		want  []uint64
	}{
		{"zero means no bound", time.Time{}, []uint64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}},
		{"before every event", ts(1).Add(-time.Hour), []uint64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}},
		{"exactly at an event includes it", ts(4), []uint64{4, 5, 6, 7, 8, 9, 10}},
		{"one nanosecond after an event excludes it", ts(4).Add(time.Nanosecond), []uint64{5, 6, 7, 8, 9, 10}},
		{"one nanosecond before an event includes it", ts(4).Add(-time.Nanosecond), []uint64{4, 5, 6, 7, 8, 9, 10}},
		{"at the last event", ts(10), []uint64{10}},
		{"after every event", ts(10).Add(time.Nanosecond), nil},
		{"in another time zone", ts(7).In(time.FixedZone("UTC+5", 5*3600)), []uint64{7, 8, 9, 10}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := query(t, st, eventbus.Query{Since: tt.since})
			assert.Equal(t, tt.want, nilIfEmpty(seqs(got)))
		})
	}

	t.Run("timestamps out of seq order", func(t *testing.T) {
		// Since filters by Timestamp, not by position.
		b := base()
		late := []eventbus.Event{
			event(t, 11, "since.late", b.Add(-time.Minute)),
			event(t, 12, "since.late", b.Add(time.Hour)),
			event(t, 13, "since.late", b.Add(-time.Minute)),
		}
		appendAll(t, st, late)
		got := query(t, st, eventbus.Query{Since: ts(9)})
		assert.Equal(t, []uint64{9, 10, 12}, seqs(got))
		got = query(t, st, eventbus.Query{Pattern: "since.late", Since: b})
		assert.Equal(t, []uint64{12}, seqs(got))
	})
}

func nilIfEmpty(s []uint64) []uint64 {
	if len(s) == 0 {
		return nil
	}
	return s
}

func testQueryAfterSeq(t *testing.T, st eventbus.Store) {
	b := base()
	var events []eventbus.Event
	for _, seq := range []uint64{1, 2, 5, 9, 10, 30} { // gaps, as WithoutPersist leaves
		events = append(events, event(t, seq, "after.topic", b.Add(time.Duration(seq)*time.Second)))
	}
	appendAll(t, st, events)
	tests := []struct {
		name     string
		afterSeq uint64
		want     []uint64
	}{
		{"zero means from the start", 0, []uint64{1, 2, 5, 9, 10, 30}},
		{"at a stored seq excludes it", 2, []uint64{5, 9, 10, 30}},
		{"inside a gap", 3, []uint64{5, 9, 10, 30}},
		{"just before a stored seq", 8, []uint64{9, 10, 30}},
		{"at LastSeq", 30, nil},
		{"beyond LastSeq", 1000, nil},
		{"at the largest seq", 1<<64 - 1, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := query(t, st, eventbus.Query{AfterSeq: tt.afterSeq})
			assert.Equal(t, tt.want, nilIfEmpty(seqs(got)))
			got = query(t, st, eventbus.Query{AfterSeq: tt.afterSeq, Newest: true})
			assert.Equal(t, tt.want, nilIfEmpty(seqs(got)), "with Newest")
			got = query(t, st, eventbus.Query{Pattern: "after.*", AfterSeq: tt.afterSeq})
			assert.Equal(t, tt.want, nilIfEmpty(seqs(got)), "with a prefix pattern")
			got = query(t, st, eventbus.Query{Pattern: "after.topic", AfterSeq: tt.afterSeq})
			assert.Equal(t, tt.want, nilIfEmpty(seqs(got)), "with an exact pattern")
		})
	}
}

func testQueryLimit(t *testing.T, st eventbus.Store) {
	const n = eventbus.MaxQueryLimit + 5
	for first := 1; first <= n; first += 2500 {
		appendAll(t, st, batch(t, uint64(first), min(2500, n-first+1), "limit.topic"))
	}
	last := lastSeq(t, st)
	require.Equal(t, uint64(n), last)

	t.Run("zero means the default", func(t *testing.T) {
		got := query(t, st, eventbus.Query{})
		require.Len(t, got, eventbus.DefaultQueryLimit)
		assert.True(t, slices.IsSorted(seqs(got)))
		got = query(t, st, eventbus.Query{Pattern: "limit.topic", Newest: true})
		require.Len(t, got, eventbus.DefaultQueryLimit)
		assert.Equal(t, last, got[len(got)-1].Seq)
	})
	t.Run("explicit limit", func(t *testing.T) {
		for _, limit := range []int{1, 7, 250} {
			got := query(t, st, eventbus.Query{AfterSeq: 100, Limit: limit})
			want := make([]uint64, limit)
			for i := range want {
				want[i] = uint64(101 + i)
			}
			assert.Equal(t, want, seqs(got), "Limit %d", limit)
		}
	})
	t.Run("above the maximum is cut to it", func(t *testing.T) {
		got := query(t, st, eventbus.Query{Limit: eventbus.MaxQueryLimit + 1000})
		require.Len(t, got, eventbus.MaxQueryLimit)
		assert.True(t, slices.IsSorted(seqs(got)))
		assert.Less(t, got[len(got)-1].Seq, last, "oldest first: the newest events are cut")

		got = query(t, st, eventbus.Query{Limit: eventbus.MaxQueryLimit + 1000, Newest: true})
		require.Len(t, got, eventbus.MaxQueryLimit)
		assert.True(t, slices.IsSorted(seqs(got)))
		assert.Equal(t, last, got[len(got)-1].Seq, "Newest: the oldest events are cut")
	})
	t.Run("limit above what matches", func(t *testing.T) {
		got := query(t, st, eventbus.Query{AfterSeq: last - 3, Limit: 50})
		assert.Equal(t, []uint64{last - 2, last - 1, last}, seqs(got))
	})
}

func testQueryNewest(t *testing.T, st eventbus.Store) {
	b := base()
	var events []eventbus.Event
	for i := 1; i <= 30; i++ {
		topic := "newest.even"
		if i%2 == 1 {
			topic = "newest.odd"
		}
		events = append(events, event(t, uint64(i), topic, b.Add(time.Duration(i)*time.Second)))
	}
	appendAll(t, st, events[:10])
	appendAll(t, st, events[10:])
	tests := []struct {
		name string
		q    eventbus.Query
		want []uint64
	}{
		{"newest few, oldest first", eventbus.Query{Newest: true, Limit: 5}, []uint64{26, 27, 28, 29, 30}},
		{"newest one", eventbus.Query{Newest: true, Limit: 1}, []uint64{30}},
		{"limit above what matches", eventbus.Query{Newest: true, Limit: 50}, seqRange(1, 30)},
		{"with an exact pattern", eventbus.Query{Pattern: "newest.odd", Newest: true, Limit: 3}, []uint64{25, 27, 29}},
		{"with a prefix pattern", eventbus.Query{Pattern: "newest.*", Newest: true, Limit: 4}, []uint64{27, 28, 29, 30}},
		{"with a glob", eventbus.Query{Pattern: "*.even", Newest: true, Limit: 2}, []uint64{28, 30}},
		{"with AfterSeq near the end", eventbus.Query{AfterSeq: 27, Newest: true, Limit: 5}, []uint64{28, 29, 30}},
		{"with AfterSeq far back", eventbus.Query{AfterSeq: 3, Newest: true, Limit: 2}, []uint64{29, 30}},
		{"with Since", eventbus.Query{Since: events[27].Timestamp, Newest: true, Limit: 10}, []uint64{28, 29, 30}},
		{"nothing matches", eventbus.Query{Pattern: "newest.none", Newest: true}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := query(t, st, tt.q)
			assert.Equal(t, tt.want, nilIfEmpty(seqs(got)))
			requireSameEvents(t, model(events, tt.q), got)
		})
	}
}

func seqRange(first, last uint64) []uint64 {
	var out []uint64
	for s := first; s <= last; s++ {
		out = append(out, s)
	}
	return out
}

func testQueryModel(t *testing.T, st eventbus.Store) {
	// 400 events over the pattern topics, in batches of varying size, with
	// Seq gaps and timestamps that mostly grow but sometimes step back.
	rng := rand.New(rand.NewPCG(1, 2))
	b := base()
	var all []eventbus.Event
	seq := uint64(0)
	for len(all) < 400 {
		n := 1 + rng.IntN(40)
		var events []eventbus.Event
		for range n {
			seq += 1 + uint64(rng.IntN(3))
			ts := b.Add(time.Duration(seq) * time.Second)
			if rng.IntN(7) == 0 {
				ts = ts.Add(-time.Duration(rng.IntN(60)) * time.Second)
			}
			topic := patternTopics[rng.IntN(len(patternTopics))]
			e := event(t, seq, topic, ts)
			if rng.IntN(4) == 0 {
				e = e.WithCorrelationID(fmt.Sprintf("corr-%d", rng.IntN(5)))
			}
			events = append(events, e)
		}
		appendAll(t, st, events)
		all = append(all, events...)
	}

	patterns := []string{"", "*", "worker", "worker.task", "chat.räum", "worker.*", "worker.task.*", "chat.*",
		"*.complete", "worker.*.complete", "chat.room?", "work*", "nothing.*", "*.failed"}
	pick := func() eventbus.Event { return all[rng.IntN(len(all))] }
	sinces := func() time.Time {
		switch rng.IntN(5) {
		case 0:
			return time.Time{}
		case 1:
			return pick().Timestamp
		case 2:
			return pick().Timestamp.Add(time.Nanosecond)
		case 3:
			return b.Add(-time.Hour)
		}
		return all[len(all)-1].Timestamp.Add(time.Hour)
	}
	afters := func() uint64 {
		switch rng.IntN(5) {
		case 0:
			return 0
		case 1:
			return pick().Seq
		case 2:
			return pick().Seq - 1
		case 3:
			return seq
		}
		return seq + 10
	}
	limits := []int{0, 1, 3, 17, 100, 1000}

	// Hand-picked combinations first, then random ones.
	queries := []eventbus.Query{
		{Pattern: "worker.*", Since: all[100].Timestamp, AfterSeq: all[50].Seq, Limit: 10},
		{Pattern: "worker.*", Since: all[100].Timestamp, AfterSeq: all[50].Seq, Limit: 10, Newest: true},
		{Pattern: "chat.room?", AfterSeq: all[200].Seq, Limit: 5, Newest: true},
		{Pattern: "*.complete", Since: all[300].Timestamp, Limit: 1000},
		{Pattern: "worker.task", Since: all[10].Timestamp, AfterSeq: all[390].Seq},
		{Since: all[399].Timestamp, Newest: true},
	}
	for range 600 {
		queries = append(queries, eventbus.Query{
			Pattern:  patterns[rng.IntN(len(patterns))],
			Since:    sinces(),
			AfterSeq: afters(),
			Limit:    limits[rng.IntN(len(limits))],
			Newest:   rng.IntN(2) == 0,
		})
	}
	for _, q := range queries {
		want := model(all, q)
		got := query(t, st, q)
		if !assert.Equal(t, seqs(want), seqs(got), "Query(%+v)", q) {
			return
		}
	}
	// Field by field on a few broad queries.
	requireSameEvents(t, all, query(t, st, eventbus.Query{Limit: 1000}))
	requireSameEvents(t, model(all, eventbus.Query{Pattern: "worker.*", Limit: 1000}), query(t, st, eventbus.Query{Pattern: "worker.*", Limit: 1000}))
}

func testInvalidQuery(t *testing.T, st eventbus.Store) {
	appendAll(t, st, batch(t, 1, 3, "invalid.topic"))
	tests := []struct {
		name string
		q    eventbus.Query
	}{
		{"negative limit", eventbus.Query{Limit: -1}},
		{"empty segment", eventbus.Query{Pattern: "a..b"}},
		{"trailing dot", eventbus.Query{Pattern: "worker."}},
		{"space", eventbus.Query{Pattern: "worker task"}},
		{"backslash", eventbus.Query{Pattern: `worker\.x`}},
		{"too long", eventbus.Query{Pattern: string(make([]byte, 300))}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := st.Query(context.Background(), tt.q)
			assert.Error(t, err)
		})
	}
}
