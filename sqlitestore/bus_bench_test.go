package sqlitestore_test

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/stretchr/testify/require"

	"github.com/choiros/eventbus"
	"github.com/choiros/eventbus/sqlitestore"
)

// plainBatch is how many rows plain-insert writes per transaction.
const plainBatch = 256

// BenchmarkBusPublishSQLite publishes through a bus persisting to an
// SQLite store, one subscriber (Block policy) reading every event, so an
// op is validation, Seq, the store's transaction and delivery:
//
//   - sync/*/publishers=1: Publish, one at a time, so every event is its
//     own transaction;
//   - sync/*/publishers=8: Publish on 8 goroutines, which share
//     transactions (group commit); fullsync: the same with WithFullSync;
//     mixed-topics cycles through the rows' topics, one-topic publishes
//     them all on one;
//   - async: PublishAsync, which lets the bus batch, with the Flush that
//     waits for the last batch inside the timed region;
//   - plain-insert: the same rows written by a prepared INSERT through the
//     same driver and pragmas (WAL, synchronous=NORMAL) into a table shaped
//     like the store's events table with its two indexes, 256 rows per
//     transaction, the last partial batch committed inside the timed
//     region. It has no bus, no subscriber and no topic_prefixes rows: the
//     floor the bus is measured against.
//
// Rows cycle through the topics and payloads of benchEvent. async and
// plain-insert use b.N loops rather than b.Loop so that the final Flush
// and Commit are timed.
func BenchmarkBusPublishSQLite(b *testing.B) {
	base := time.Now().UTC()
	rows := make([]eventbus.Event, 1000)
	for i := range rows {
		rows[i] = benchEvent(b, i+1, base)
	}
	// The bus fills in the ID and Timestamp of what it publishes, as it does
	// for most callers.
	unstamped := make([]eventbus.Event, len(rows))
	oneTopic := make([]eventbus.Event, len(rows)) // the same, all on one topic
	for i, e := range rows {
		e.ID, e.Timestamp = ulid.ULID{}, time.Time{}
		unstamped[i] = e
		e.Topic = "load.0"
		oneTopic[i] = e
	}
	ctx := context.Background()

	// Acknowledged publishers on 8 goroutines share commits: while the
	// loop is in one transaction, the publishes that arrive wait in the
	// intake and go into the next batch together (group commit). A commit
	// costs in proportion to the B-tree pages it changes: events on one
	// topic share index pages, events on many topics each bring their own.
	for _, events := range []struct {
		name   string
		events []eventbus.Event
	}{{"mixed-topics", unstamped}, {"one-topic", oneTopic}} {
		for _, fullSync := range []bool{false, true} {
			for _, publishers := range []int{1, 8} {
				name := fmt.Sprintf("sync/%s/publishers=%d", events.name, publishers)
				var opts []sqlitestore.Option
				if fullSync {
					name += "/fullsync"
					opts = append(opts, sqlitestore.WithFullSync())
				}
				unstamped := events.events
				b.Run(name, func(b *testing.B) {
					bus, stop, commits := benchBusCounted(b, opts...)
					b.Cleanup(stop)
					var next atomic.Int64
					b.ReportAllocs()
					defer func() { b.ReportMetric(float64(b.N)/float64(commits.Load()), "events/commit") }()
					if publishers == 1 {
						for i := 0; i < b.N; i++ {
							if err := bus.Publish(ctx, unstamped[i%len(unstamped)]); err != nil {
								b.Fatal(err)
							}
						}
					} else {
						b.SetParallelism(publishers / runtime.GOMAXPROCS(0))
						b.RunParallel(func(pb *testing.PB) {
							for pb.Next() {
								n := next.Add(1)
								if err := bus.Publish(ctx, unstamped[n%int64(len(unstamped))]); err != nil {
									b.Error(err)
									return
								}
							}
						})
					}
					b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
				})
			}
		}
	}

	b.Run("async", func(b *testing.B) {
		bus, stop := benchBus(b)
		b.ReportAllocs()
		b.ResetTimer()
		for i := range b.N {
			if err := bus.PublishAsync(ctx, unstamped[i%len(unstamped)]); err != nil {
				b.Fatal(err)
			}
		}
		if err := bus.Flush(ctx); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
		stop()
	})

	b.Run("plain-insert", func(b *testing.B) {
		db, ins := plainTable(b, true)
		b.ReportAllocs()
		b.ResetTimer()
		for first := 0; first < b.N; first += plainBatch {
			tx, err := db.Begin()
			if err != nil {
				b.Fatal(err)
			}
			stmt := tx.Stmt(ins)
			for i := first; i < min(first+plainBatch, b.N); i++ {
				e := &rows[i%len(rows)]
				var corr any
				if e.CorrelationID != "" {
					corr = e.CorrelationID
				}
				seq := int64(i) + 1
				if _, err := stmt.Exec(seq, e.ID.String(), string(e.Type), e.Topic, string(e.Payload),
					base.Add(time.Duration(seq)*time.Millisecond).UnixNano(), e.Source, corr); err != nil {
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

// benchBus starts a bus on a new SQLite store with one subscription to
// every topic, under the Block policy, read by a goroutine. stop closes
// the bus, waits for the reader and closes the store.
func benchBus(b *testing.B, opts ...sqlitestore.Option) (*eventbus.Bus, func()) {
	bus, stop, _ := benchBusCounted(b, opts...)
	return bus, stop
}

// countingStore counts the store's transactions (Append calls).
type countingStore struct {
	*sqlitestore.Store
	commits *atomic.Int64
}

func (s countingStore) Append(ctx context.Context, events []eventbus.Event) error {
	s.commits.Add(1)
	return s.Store.Append(ctx, events)
}

// benchBusCounted is benchBus that also returns the count of the store's
// transactions.
func benchBusCounted(b *testing.B, opts ...sqlitestore.Option) (*eventbus.Bus, func(), *atomic.Int64) {
	st, err := sqlitestore.Open(filepath.Join(b.TempDir(), "events.db"), opts...)
	require.NoError(b, err)
	commits := new(atomic.Int64)
	bus, err := eventbus.New(eventbus.WithStore(countingStore{st, commits}), eventbus.WithLogger(slog.New(slog.DiscardHandler)))
	require.NoError(b, err)
	sub, err := bus.Subscribe(context.Background(), "*", eventbus.WithOverflow(eventbus.Block))
	require.NoError(b, err)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range sub.C() {
		}
	}()
	return bus, func() {
		require.NoError(b, bus.Close())
		<-done
		require.NoError(b, st.Close())
		stats := bus.Stats()
		require.Equal(b, stats.Published, stats.Persisted)
		require.Equal(b, stats.Published, stats.Delivered)
	}, commits
}
