package storetest

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/choiros/eventbus"
)

// Run checks that the stores newStore makes keep the [eventbus.Store]
// contract. It runs one subtest per rule, each on a new, empty store from
// newStore, which it closes when the subtest ends. See the package
// documentation for what is covered and what newStore must provide.
func Run(t *testing.T, newStore func(t *testing.T) eventbus.Store) {
	t.Helper()
	tests := []struct {
		name string
		run  func(t *testing.T, st eventbus.Store)
	}{
		{"new store is empty", testEmpty},
		{"append keeps order across batches", testAppendOrder},
		{"events round-trip intact", testRoundTrip},
		{"metadata round-trips exactly", testMetadata},
		{"empty batch stores nothing", testEmptyBatch},
		{"batch with non-increasing seq stores nothing", testRejectedBatch},
		{"failed append leaves nothing behind", testFailedAppend},
		{"append does not keep or modify the caller's slice", testAppendSlice},
		{"returned events are copies", testReturnedCopies},
		{"LastSeq is the highest seq stored", testLastSeq},
		{"query by pattern", testQueryPattern},
		{"query since", testQuerySince},
		{"query after seq", testQueryAfterSeq},
		{"query limit", testQueryLimit},
		{"query newest", testQueryNewest},
		{"query combinations match the reference model", testQueryModel},
		{"invalid query is an error", testInvalidQuery},
		{"query during append sees whole batches", testConcurrent},
		{"close twice and use after close", testClose},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := newStore(t)
			require.NotNil(t, st, "newStore returned nil")
			t.Cleanup(func() { _ = st.Close() })
			tt.run(t, st)
		})
	}
}

// base is the time of the suite's first event: recent, so that stores with
// an age limit of an hour or more keep everything, and with nanoseconds, so
// that precision loss shows.
func base() time.Time {
	return time.Now().UTC().Add(-30 * time.Minute).Truncate(time.Second).Add(123456789)
}

// event returns a new event on topic with the given Seq and Timestamp.
func event(t testing.TB, seq uint64, topic string, ts time.Time) eventbus.Event {
	t.Helper()
	e, err := eventbus.NewEvent(eventbus.WorkerProgress, topic, map[string]any{"seq": seq}, "storetest")
	require.NoError(t, err)
	e.Seq = seq
	e.Timestamp = ts
	return e
}

// batch returns n events with Seqs first, first+1, … on topic, with
// Timestamps Seq tenths of a second after base.
func batch(t testing.TB, first uint64, n int, topic string) []eventbus.Event {
	t.Helper()
	b := base()
	out := make([]eventbus.Event, n)
	for i := range out {
		seq := first + uint64(i)
		out[i] = event(t, seq, topic, b.Add(time.Duration(seq)*100*time.Millisecond))
	}
	return out
}

func appendAll(t testing.TB, st eventbus.Store, events []eventbus.Event) {
	t.Helper()
	require.NoError(t, st.Append(context.Background(), events))
}

func query(t testing.TB, st eventbus.Store, q eventbus.Query) []eventbus.Event {
	t.Helper()
	got, err := st.Query(context.Background(), q)
	require.NoError(t, err, "Query(%+v)", q)
	return got
}

func lastSeq(t testing.TB, st eventbus.Store) uint64 {
	t.Helper()
	seq, err := st.LastSeq(context.Background())
	require.NoError(t, err)
	return seq
}

// everything returns every stored event, oldest first (the suite never
// stores more than MaxQueryLimit events where it calls this).
func everything(t testing.TB, st eventbus.Store) []eventbus.Event {
	t.Helper()
	return query(t, st, eventbus.Query{Limit: eventbus.MaxQueryLimit})
}

func seqs(events []eventbus.Event) []uint64 {
	out := make([]uint64, len(events))
	for i, e := range events {
		out[i] = e.Seq
	}
	return out
}

func topics(events []eventbus.Event) []string {
	out := make([]string, len(events))
	for i, e := range events {
		out[i] = e.Topic
	}
	return out
}

// model answers q over events (sorted by Seq) the plain way: the reference
// the stores are compared with.
func model(events []eventbus.Event, q eventbus.Query) []eventbus.Event {
	pattern := q.Pattern
	if pattern == "" {
		pattern = "*"
	}
	limit := q.Limit
	switch {
	case limit == 0:
		limit = eventbus.DefaultQueryLimit
	case limit > eventbus.MaxQueryLimit:
		limit = eventbus.MaxQueryLimit
	}
	var out []eventbus.Event
	for _, e := range events {
		if e.Seq > q.AfterSeq && eventbus.Match(pattern, e.Topic) &&
			(q.Since.IsZero() || !e.Timestamp.Before(q.Since)) {
			out = append(out, e)
		}
	}
	if len(out) > limit {
		if q.Newest {
			out = out[len(out)-limit:]
		} else {
			out = out[:limit]
		}
	}
	return out
}

// requireSameEvents checks that got holds exactly want, field by field.
func requireSameEvents(t testing.TB, want, got []eventbus.Event) {
	t.Helper()
	require.Equal(t, seqs(want), seqs(got), "Seqs")
	for i := range want {
		w, g := want[i], got[i]
		assert.Equal(t, w.ID, g.ID, "ID of seq %d", w.Seq)
		assert.Equal(t, w.Type, g.Type, "Type of seq %d", w.Seq)
		assert.Equal(t, w.Topic, g.Topic, "Topic of seq %d", w.Seq)
		assert.Equal(t, string(w.Payload), string(g.Payload), "Payload of seq %d", w.Seq)
		assert.True(t, w.Timestamp.Equal(g.Timestamp), "Timestamp of seq %d: want %v, got %v", w.Seq, w.Timestamp, g.Timestamp)
		assert.Equal(t, w.Source, g.Source, "Source of seq %d", w.Seq)
		assert.Equal(t, w.CorrelationID, g.CorrelationID, "CorrelationID of seq %d", w.Seq)
		if len(w.Metadata) == 0 {
			// nil stays nil; an empty map may come back as nil.
			assert.Empty(t, g.Metadata, "Metadata of seq %d", w.Seq)
			if w.Metadata == nil {
				assert.Nil(t, g.Metadata, "Metadata of seq %d", w.Seq)
			}
		} else {
			assert.Equal(t, w.Metadata, g.Metadata, "Metadata of seq %d", w.Seq)
		}
	}
}

func testEmpty(t *testing.T, st eventbus.Store) {
	assert.Equal(t, uint64(0), lastSeq(t, st))
	for _, q := range []eventbus.Query{
		{},
		{Pattern: "*"},
		{Pattern: "worker.task"},
		{Pattern: "worker.*"},
		{Pattern: "worker.*.complete"},
		{Since: base()},
		{AfterSeq: 5},
		{Newest: true},
		{Pattern: "worker.*", Since: base(), AfterSeq: 1, Limit: 5, Newest: true},
	} {
		assert.Empty(t, query(t, st, q), "Query(%+v)", q)
	}
}

func testAppendOrder(t *testing.T, st eventbus.Store) {
	var all []eventbus.Event
	for i, n := range []int{1, 5, 20} {
		b := batch(t, uint64(len(all)+1), n, fmt.Sprintf("order.batch%d", i))
		appendAll(t, st, b)
		all = append(all, b...)
	}
	requireSameEvents(t, all, everything(t, st))
	assert.Equal(t, uint64(len(all)), lastSeq(t, st))
}

func testRoundTrip(t *testing.T, st eventbus.Store) {
	ts := base()
	mk := func(seq uint64, typ eventbus.EventType, topic string, payload any, source string) eventbus.Event {
		t.Helper()
		e, err := eventbus.NewEvent(typ, topic, payload, source)
		require.NoError(t, err)
		e.Seq = seq
		e.Timestamp = ts.Add(time.Duration(seq) * time.Nanosecond)
		return e
	}
	events := []eventbus.Event{
		mk(1, eventbus.WorkerSpawned, "worker.task.spawned", map[string]any{"id": 7, "name": "resize"}, "worker-7"),
		mk(2, eventbus.ChatMessage, "chat.room1", "héllo <wörld> & \u2028 \"quoted\"", "user-ä"),
		mk(3, eventbus.FileChanged, "file.changed", []any{1.5, "two", nil, true, map[string]any{}}, ""),
		mk(4, eventbus.Custom("deploy"), "custom.deploy", nil, "ci"),
		mk(5, eventbus.SystemHeartbeat, "system.heartbeat", json.RawMessage(`{"nested":{"deep":[1,2,{"x":"y"}]},"n":-0.25e-3}`), "system"),
		mk(6, eventbus.UserInput, "user.input", 12345678901234, "user-1").WithCorrelationID("corr-42/ü"),
		mk(7, eventbus.WorkerComplete, "worker.task.complete", struct {
			OK   bool   `json:"ok"`
			Note string `json:"note,omitempty"`
		}{OK: true}, "worker-7").WithCorrelationID("01HZY0000000000000000000AB"),
	}
	// Timestamps at the edges of what a store might round.
	events[0].Timestamp = time.Date(2024, 2, 29, 23, 59, 59, 999999999, time.UTC)
	events[1].Timestamp = time.Date(2024, 3, 1, 0, 0, 0, 1, time.UTC)
	appendAll(t, st, events[:3])
	appendAll(t, st, events[3:])

	got := everything(t, st)
	requireSameEvents(t, events, got)
	for _, g := range got {
		assert.Equal(t, time.UTC, g.Timestamp.Location(), "Timestamp of seq %d is not UTC", g.Seq)
		assert.True(t, json.Valid(g.Payload), "Payload of seq %d is not valid JSON", g.Seq)
	}
	// And one at a time, through an exact-topic query.
	for _, e := range events {
		requireSameEvents(t, []eventbus.Event{e}, query(t, st, eventbus.Query{Pattern: e.Topic}))
	}
}

func testMetadata(t *testing.T, st eventbus.Store) {
	many := make(map[string]string, eventbus.MaxMetadataPairs)
	for i := range eventbus.MaxMetadataPairs {
		many[fmt.Sprintf("key-%02d", i)] = fmt.Sprintf("value %d", i)
	}
	// Near MaxMetadataBytes in all, with every byte a JSON encoder must
	// escape.
	var awkward []byte
	for i := range 200 {
		awkward = append(awkward, byte(i))
	}
	long := strings.Repeat("x", eventbus.MaxMetadataBytes-len(awkward)-len("long")-len("awkward"))
	tests := []struct {
		name string
		md   map[string]string
	}{
		{"nil", nil},
		{"one pair", map[string]string{"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}},
		{"the bus's own keys", map[string]string{"eventbus-attempts": "3", "eventbus-error": "handler: boom", "eventbus-original-topic": "worker.task"}},
		{"key alphabet", map[string]string{"A.b_c-9": "x", "Z": "y", "z": "Y", "0": "zero"}},
		{"empty value", map[string]string{"empty": ""}},
		{"unicode and quotes", map[string]string{"note": "héllo \"wörld\" \\ <tag> & \u2028 😀", "path": `C:\dir\file`}},
		{"control characters", map[string]string{"ctl": "a\x00b\x01\tc\nd\re\x1f\x7f"}},
		{"values that look like JSON", map[string]string{"obj": `{"a":1}`, "num": "42", "null": "null", "arr": "[1,2]"}},
		{"most pairs", many},
		{"most bytes", map[string]string{"awkward": string(awkward), "long": long}},
	}
	ts := base()
	var events []eventbus.Event
	for i, tt := range tests {
		e := event(t, uint64(i+1), fmt.Sprintf("metadata.case%d", i), ts.Add(time.Duration(i)*time.Second))
		e.Metadata = tt.md
		require.NoError(t, eventbus.ValidateMetadata(e.Metadata), tt.name)
		events = append(events, e)
	}
	appendAll(t, st, events[:4])
	appendAll(t, st, events[4:])

	requireSameEvents(t, events, everything(t, st))
	requireSameEvents(t, events, query(t, st, eventbus.Query{Pattern: "metadata.*", Limit: 100}))
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := query(t, st, eventbus.Query{Pattern: events[i].Topic})
			require.Len(t, got, 1)
			if tt.md == nil {
				assert.Nil(t, got[0].Metadata, "nil metadata must stay nil")
			} else {
				assert.Equal(t, tt.md, got[0].Metadata)
			}
		})
	}
}

func testEmptyBatch(t *testing.T, st eventbus.Store) {
	require.NoError(t, st.Append(context.Background(), nil))
	require.NoError(t, st.Append(context.Background(), []eventbus.Event{}))
	assert.Equal(t, uint64(0), lastSeq(t, st))
	assert.Empty(t, everything(t, st))

	appendAll(t, st, batch(t, 1, 3, "empty.batch"))
	require.NoError(t, st.Append(context.Background(), nil))
	assert.Equal(t, uint64(3), lastSeq(t, st))
	assert.Len(t, everything(t, st), 3)
}

func testRejectedBatch(t *testing.T, st eventbus.Store) {
	before := batch(t, 1, 10, "reject.before")
	appendAll(t, st, before)

	b := base()
	at := func(seqs ...uint64) []eventbus.Event {
		out := make([]eventbus.Event, len(seqs))
		for i, s := range seqs {
			out[i] = event(t, s, "reject.batch", b.Add(time.Duration(s)*time.Second))
		}
		return out
	}
	tests := []struct {
		name  string
		batch []eventbus.Event
	}{
		{"seq equal to LastSeq", at(10)},
		{"seq below LastSeq", at(3)},
		{"first seq below LastSeq, rest above", at(9, 11, 12)},
		{"decreasing inside the batch", at(12, 11)},
		{"repeated inside the batch", at(11, 12, 12, 13)},
		{"bad seq at the end of a long batch", append(at(11, 12, 13, 14, 15, 16, 17, 18), at(4)...)},
		{"zero seq", at(0)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Error(t, st.Append(context.Background(), tt.batch))
			assert.Equal(t, uint64(10), lastSeq(t, st), "LastSeq moved")
			requireSameEvents(t, before, everything(t, st))
			assert.Empty(t, query(t, st, eventbus.Query{Pattern: "reject.batch"}), "part of the rejected batch was stored")
		})
	}

	// The store still takes a good batch afterwards.
	good := at(11, 12)
	appendAll(t, st, good)
	assert.Equal(t, uint64(12), lastSeq(t, st))
	requireSameEvents(t, append(slices.Clone(before), good...), everything(t, st))
}

func testFailedAppend(t *testing.T, st eventbus.Store) {
	first := batch(t, 1, 5, "failed.first")
	appendAll(t, st, first)

	// A store may or may not honour a cancelled context; either way the batch
	// is stored whole or not at all.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	second := batch(t, 6, 50, "failed.second")
	if err := st.Append(ctx, second); err != nil {
		assert.Equal(t, uint64(5), lastSeq(t, st))
		requireSameEvents(t, first, everything(t, st))
	} else {
		assert.Equal(t, uint64(55), lastSeq(t, st))
		requireSameEvents(t, append(slices.Clone(first), second...), everything(t, st))
	}
}

func testAppendSlice(t *testing.T, st eventbus.Store) {
	events := batch(t, 1, 5, "slice.kept")
	want := slices.Clone(events)
	appendAll(t, st, events)
	assert.Equal(t, want, events, "Append modified the caller's slice")

	// Reusing the slice must not change what was stored.
	for i := range events {
		events[i].Topic = "slice.changed"
		events[i].Seq += 100
		events[i].Source = "someone else"
	}
	requireSameEvents(t, want, everything(t, st))
}

func testReturnedCopies(t *testing.T, st eventbus.Store) {
	want := batch(t, 1, 3, "copies.topic")
	appendAll(t, st, want)
	got := everything(t, st)
	require.Len(t, got, 3)
	for i := range got {
		got[i].Topic = "copies.changed"
		got[i].Seq = 0
	}
	requireSameEvents(t, want, everything(t, st))
}

func testLastSeq(t *testing.T, st eventbus.Store) {
	assert.Equal(t, uint64(0), lastSeq(t, st))
	b := base()
	steps := []struct {
		seqs []uint64
		want uint64
	}{
		{[]uint64{1}, 1},
		{[]uint64{2, 3, 4}, 4},
		{[]uint64{10, 20}, 20}, // gaps: events published without persistence
		{[]uint64{1 << 40}, 1 << 40},
		{[]uint64{1<<40 + 1, 1<<62 + 3}, 1<<62 + 3},
	}
	var all []eventbus.Event
	for _, s := range steps {
		var events []eventbus.Event
		for _, seq := range s.seqs {
			events = append(events, event(t, seq, "lastseq.topic", b))
		}
		appendAll(t, st, events)
		all = append(all, events...)
		assert.Equal(t, s.want, lastSeq(t, st))
	}
	requireSameEvents(t, all, everything(t, st))
	requireSameEvents(t, all[len(all)-3:], query(t, st, eventbus.Query{AfterSeq: 20}))
}

func testConcurrent(t *testing.T, st eventbus.Store) {
	const (
		batches   = 150
		batchSize = 10
	)
	var all [][]eventbus.Event
	for i := range batches {
		all = append(all, batch(t, uint64(i*batchSize+1), batchSize, fmt.Sprintf("concurrent.b%d", i%3)))
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		defer close(done)
		for _, events := range all {
			if !assert.NoError(t, st.Append(context.Background(), events)) {
				return
			}
		}
	})
	check := func(q eventbus.Query) bool {
		got, err := st.Query(context.Background(), q)
		if !assert.NoError(t, err) {
			return false
		}
		if !assert.Zero(t, len(got)%batchSize, "Query(%+v) saw part of a batch: %d events", q, len(got)) {
			return false
		}
		for i, e := range got {
			if !assert.Equal(t, uint64(i+1), e.Seq, "Query(%+v): events missing or out of order", q) {
				return false
			}
		}
		seq, err := st.LastSeq(context.Background())
		return assert.NoError(t, err) && assert.Zero(t, seq%batchSize, "LastSeq %d inside a batch", seq)
	}
	for _, q := range []eventbus.Query{
		{Pattern: "*", Limit: eventbus.MaxQueryLimit},
		{Pattern: "*", Limit: eventbus.MaxQueryLimit, Newest: true},
		{Pattern: "", Limit: eventbus.MaxQueryLimit},
	} {
		wg.Go(func() {
			for {
				select {
				case <-done:
					check(q) // once more after the last batch
					return
				default:
				}
				if !check(q) {
					return
				}
			}
		})
	}
	wg.Wait()
	assert.Equal(t, uint64(batches*batchSize), lastSeq(t, st))
	assert.Len(t, everything(t, st), batches*batchSize)
}

func testClose(t *testing.T, st eventbus.Store) {
	appendAll(t, st, batch(t, 1, 3, "close.topic"))
	require.NoError(t, st.Close())
	require.NoError(t, st.Close(), "second Close")

	ctx := context.Background()
	assert.Error(t, st.Append(ctx, batch(t, 4, 1, "close.topic")), "Append after Close")
	_, err := st.Query(ctx, eventbus.Query{})
	assert.Error(t, err, "Query after Close")
	_, err = st.LastSeq(ctx)
	assert.Error(t, err, "LastSeq after Close")
	assert.NoError(t, st.Close(), "Close after failed calls")
}
