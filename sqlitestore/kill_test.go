package sqlitestore_test

import (
	"bufio"
	"context"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/choiros/eventbus"
	"github.com/choiros/eventbus/sqlitestore"
)

// killChildEnv names the file TestKillChild appends to; set only in the
// child process TestKilledWriterLosesNoAcknowledgedEvent starts.
const killChildEnv = "SQLITESTORE_KILL_CHILD_DB"

const killBatch = 10

// TestKilledWriterLosesNoAcknowledgedEvent runs a writer in a child process,
// kills it with SIGKILL in the middle of its appends, and checks that the
// file reopens with every acknowledged event and no part of a batch.
func TestKilledWriterLosesNoAcknowledgedEvent(t *testing.T) {
	cmd, lines, path := startChild(t, "TestKillChild", killChildEnv)

	// Read acknowledgements until 300 batches are in, then kill the child
	// while it is appending the next one.
	var acked uint64
	var err error
	for acked < 300*killBatch && lines.Scan() {
		if seq, ok := strings.CutPrefix(lines.Text(), "acked "); ok {
			acked, err = strconv.ParseUint(seq, 10, 64)
			require.NoError(t, err)
		}
	}
	require.NoError(t, cmd.Process.Kill())
	_ = cmd.Wait() // "signal: killed"
	require.Equal(t, uint64(300*killBatch), acked, "the child stopped early")

	// Nothing was checkpointed or cleaned up: the WAL holds the tail.
	_, err = os.Stat(path + "-wal")
	require.NoError(t, err, "no WAL file after the kill")

	st, err := sqlitestore.Open(path)
	require.NoError(t, err)
	defer st.Close()
	last, err := st.LastSeq(context.Background())
	require.NoError(t, err)
	assert.GreaterOrEqual(t, last, acked, "acknowledged events lost")
	assert.Zero(t, last%killBatch, "LastSeq %d is inside a batch", last)

	seen := eachStored(t, st, func(e eventbus.Event) {
		require.Equal(t, fmt.Sprintf(`{"seq":%d}`, e.Seq), string(e.Payload))
	})
	assert.Equal(t, last, seen)
	requireIntegrity(t, path)
}

// startChild runs this test binary's test named test in a child process,
// with env set to the path of a new database file, and returns it with a
// scanner of its stdout and the path. Inside a child (env set), it skips
// the calling test.
func startChild(t *testing.T, test, env string) (*exec.Cmd, *bufio.Scanner, string) {
	t.Helper()
	if os.Getenv(env) != "" {
		t.Skip("inside the child")
	}
	path := filepath.Join(t.TempDir(), "killed.db")
	cmd := exec.Command(os.Args[0], "-test.run=^"+test+"$", "-test.count=1")
	cmd.Env = append(os.Environ(), env+"="+path)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	return cmd, bufio.NewScanner(out), path
}

// eachStored calls fn with every event in st, in Seq order, checking that
// the Seqs have no gap, and returns the last Seq.
func eachStored(t *testing.T, st *sqlitestore.Store, fn func(eventbus.Event)) (last uint64) {
	t.Helper()
	for {
		page, err := st.Query(context.Background(), eventbus.Query{AfterSeq: last, Limit: eventbus.MaxQueryLimit})
		require.NoError(t, err)
		if len(page) == 0 {
			return last
		}
		for _, e := range page {
			require.Equal(t, last+1, e.Seq, "a gap in the stored events")
			last = e.Seq
			fn(e)
		}
	}
}

// requireIntegrity opens the file read-only and checks PRAGMA
// integrity_check.
func requireIntegrity(t *testing.T, path string) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	require.NoError(t, err)
	defer db.Close()
	var check string
	require.NoError(t, db.QueryRow("PRAGMA integrity_check").Scan(&check))
	assert.Equal(t, "ok", check)
}

// TestKillChild is the writer TestKilledWriterLosesNoAcknowledgedEvent
// kills. It appends batches forever, printing the last Seq of each after
// Append returns.
func TestKillChild(t *testing.T) {
	path := os.Getenv(killChildEnv)
	if path == "" {
		t.Skip("helper process for TestKilledWriterLosesNoAcknowledgedEvent")
	}
	st, err := sqlitestore.Open(path)
	require.NoError(t, err)
	ts := time.Now().UTC()
	for seq := uint64(1); ; seq += killBatch {
		batch := make([]eventbus.Event, killBatch)
		for i := range batch {
			e, err := eventbus.NewEvent(eventbus.WorkerProgress, "worker.task.progress", map[string]uint64{"seq": seq + uint64(i)}, "child")
			require.NoError(t, err)
			e.Seq, e.Timestamp = seq+uint64(i), ts
			batch[i] = e
		}
		require.NoError(t, st.Append(context.Background(), batch))
		fmt.Printf("acked %d\n", seq+killBatch-1)
	}
}
