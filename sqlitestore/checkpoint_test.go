package sqlitestore_test

import (
	"context"
	"database/sql"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/choiros/eventbus"
	"github.com/choiros/eventbus/sqlitestore"
)

// TestCheckpointerCopiesTheLog: events appended reach the database file
// itself while the store is open, far below the writer's own checkpoint
// threshold: the checkpointer copies the log in the background. The file
// is read with immutable=1, which reads the database file alone, not the
// log.
func TestCheckpointerCopiesTheLog(t *testing.T) {
	st, path := openTemp(t)
	base := time.Now().UTC()
	for i := 1; i <= 20; i++ {
		require.NoError(t, st.Append(t.Context(), []eventbus.Event{benchEvent(t, i, base)}))
	}
	inFile := func() int {
		db, err := sql.Open("sqlite", "file:"+path+"?mode=ro&immutable=1")
		require.NoError(t, err)
		defer db.Close()
		var n int
		if err := db.QueryRow(`SELECT count(*) FROM events`).Scan(&n); err != nil {
			return -1 // the schema itself may not be copied yet
		}
		return n
	}
	require.Eventually(t, func() bool { return inFile() == 20 }, 10*time.Second, 5*time.Millisecond,
		"the database file holds %d of 20 events", inFile())
}

// TestLogRestarts: under a steady stream of commits the log file stops
// growing: the writer's own checkpoint, every walLimit pages, lets the
// log start again from its beginning.
func TestLogRestarts(t *testing.T) {
	if testing.Short() {
		t.Skip("appends some 40 MB of log")
	}
	st, path := openTemp(t)
	base := time.Now().UTC()
	const frame = 4096 + 24      // a page and its frame header
	for i := 1; i <= 4500; i++ { // about twice walLimit pages
		require.NoError(t, st.Append(context.Background(), []eventbus.Event{benchEvent(t, i, base)}))
	}
	fi, err := os.Stat(path + "-wal")
	require.NoError(t, err)
	// Each commit writes a few pages; the log restarts once the writer's
	// checkpoint finds the checkpointer's lock free, a few commits past
	// walLimit pages. Without a restart it would reach about twice that.
	require.LessOrEqual(t, fi.Size(), int64(sqlitestore.WALLimit+1024)*frame, "the log grew to %d pages", fi.Size()/frame)
}
