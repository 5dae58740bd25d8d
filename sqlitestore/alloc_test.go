package sqlitestore_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/choiros/eventbus"
)

// TestAppendAllocs holds Append to its allocation budget (issue 15: at
// most 10 allocations per persisted event on the bus's batched path, 20
// on the one-event path, bus included). What is left per event is boxing
// the Seq, ID, Payload and Timestamp for the driver; per batch, the
// driver's transaction and statement results.
func TestAppendAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	tests := []struct {
		name     string
		batch    int
		perEvent float64 // at most
	}{
		{"one event", 1, 20},
		{"32 events", 32, 5},
		{"100 events", 100, 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, _ := openTemp(t)
			base := time.Now().UTC()
			batch := make([]eventbus.Event, tt.batch)
			for i := range batch {
				batch[i] = benchEvent(t, i+1, base)
			}
			ctx := context.Background()
			seq := uint64(1000) // above 255, so the Seqs box like most do
			allocs := testing.AllocsPerRun(50, func() {
				for i := range batch {
					seq++
					batch[i].Seq = seq
				}
				if err := st.Append(ctx, batch); err != nil {
					t.Fatal(err)
				}
			})
			assert.LessOrEqual(t, allocs/float64(tt.batch), tt.perEvent, "%.0f allocations per batch of %d", allocs, tt.batch)
			t.Logf("%.0f allocations per batch of %d", allocs, tt.batch)
		})
	}
}
