package sqlitestore_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/choiros/eventbus"
	"github.com/choiros/eventbus/sqlitestore"
)

// killPublishersEnv names the file TestKillPublishersChild publishes to;
// set only in the child process TestKilledPublishersLoseNoAcknowledgedEvent
// starts.
const killPublishersEnv = "SQLITESTORE_KILL_PUBLISHERS_DB"

const killPublishers = 8

// TestKilledPublishersLoseNoAcknowledgedEvent runs a bus on an SQLite store
// in a child process, with killPublishers goroutines each publishing with
// Publish (so their events share commits), kills it with SIGKILL while they
// are publishing, and checks that the file reopens with every acknowledged
// event, with the Seqs contiguous, with each publisher's events a prefix of
// what it published (no event stored without the ones acknowledged before
// it), and with integrity_check ok.
func TestKilledPublishersLoseNoAcknowledgedEvent(t *testing.T) {
	cmd, lines, path := startChild(t, "TestKillPublishersChild", killPublishersEnv)

	// acked[p] is the highest n publisher p has had acknowledged, plus one.
	var acked [killPublishers]int
	total := 0
	read := func() bool {
		if !lines.Scan() {
			return false
		}
		if p, n, ok := parseAcked(lines.Text()); ok {
			require.Equal(t, acked[p], n, "publisher %d acknowledged out of order", p)
			acked[p] = n + 1
			total++
		}
		return true
	}
	for total < 2000 && read() {
	}
	require.Equal(t, 2000, total, "the child stopped early")
	require.NoError(t, cmd.Process.Kill())
	for read() { // what the child printed before it died
	}
	_ = cmd.Wait() // "signal: killed"

	st, err := sqlitestore.Open(path)
	require.NoError(t, err)
	defer st.Close()
	var stored [killPublishers]int // events of each publisher in the file
	eachStored(t, st, func(e eventbus.Event) {
		var v struct{ P, N int }
		require.NoError(t, json.Unmarshal(e.Payload, &v))
		require.Less(t, v.P, killPublishers)
		require.Equal(t, stored[v.P], v.N, "publisher %d: event %d stored after %d", v.P, v.N, stored[v.P])
		stored[v.P]++
	})
	for p := range acked {
		assert.GreaterOrEqual(t, stored[p], acked[p], "publisher %d: acknowledged events lost", p)
		// One publish in flight at most per publisher, stored or not.
		assert.LessOrEqual(t, stored[p], acked[p]+1, "publisher %d: more stored than it published", p)
	}
	requireIntegrity(t, path)
}

// parseAcked parses the child's "acked P N" lines.
func parseAcked(line string) (p, n int, ok bool) {
	rest, ok := strings.CutPrefix(line, "acked ")
	if !ok {
		return 0, 0, false
	}
	ps, ns, ok := strings.Cut(rest, " ")
	if !ok {
		return 0, 0, false
	}
	p, err1 := strconv.Atoi(ps)
	n, err2 := strconv.Atoi(ns)
	return p, n, err1 == nil && err2 == nil && p >= 0 && p < killPublishers
}

// TestKillPublishersChild is the process
// TestKilledPublishersLoseNoAcknowledgedEvent kills: killPublishers
// goroutines publish forever with Publish, each printing "acked P N" once
// its event N is acknowledged.
func TestKillPublishersChild(t *testing.T) {
	path := os.Getenv(killPublishersEnv)
	if path == "" {
		t.Skip("helper process for TestKilledPublishersLoseNoAcknowledgedEvent")
	}
	st, err := sqlitestore.Open(path)
	require.NoError(t, err)
	bus, err := eventbus.New(eventbus.WithStore(st), quiet())
	require.NoError(t, err)
	var mu sync.Mutex // one line per write
	var wg sync.WaitGroup
	for p := range killPublishers {
		wg.Go(func() {
			for n := 0; ; n++ {
				payload := fmt.Appendf(nil, `{"p":%d,"n":%d}`, p, n)
				err := bus.Publish(context.Background(), eventbus.Event{Type: eventbus.WorkerProgress, Topic: "worker.task.progress", Payload: payload, Source: "child"})
				if err != nil {
					panic(err)
				}
				mu.Lock()
				fmt.Printf("acked %d %d\n", p, n)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
}
