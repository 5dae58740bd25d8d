package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// childEnv names the file TestChild works on; set only in the process
// TestKilledRunResumes starts.
const childEnv = "WORKER_EXAMPLE_CHILD_DB"

// The child's pool: jobs and workers.
const childJobs, childWorkers = 400, 4

// jobsDone parses the "worker-N did job J" lines of out: how many times
// each job was done.
func jobsDone(t *testing.T, out string) map[int]int {
	t.Helper()
	done := map[int]int{}
	for line := range strings.Lines(out) {
		if _, after, ok := strings.Cut(strings.TrimSpace(line), " did job "); ok {
			n, err := strconv.Atoi(after)
			require.NoError(t, err)
			done[n]++
		}
	}
	return done
}

func TestRun(t *testing.T) {
	path := filepath.Join(t.TempDir(), "pool.db")
	var out strings.Builder
	require.NoError(t, run(t.Context(), &out, path, 30, 3, 0))
	assert.Contains(t, out.String(), "published 30 jobs\n")
	done := jobsDone(t, out.String())
	require.Len(t, done, 30)
	for n := 1; n <= 30; n++ {
		assert.Equal(t, 1, done[n], "job %d", n)
	}
	// Jobs 10, 20 and 30 fail their first attempt at step 2, after one
	// progress step, and succeed on the retry.
	assert.Contains(t, out.String(), `done: 30 jobs this run, all 30 acknowledged
  worker_complete  30
  worker_failed    3
  worker_progress  93
`)

	// A second run finds every job acknowledged.
	out.Reset()
	require.NoError(t, run(t.Context(), &out, path, 30, 3, 0))
	assert.Equal(t, "resuming: 0 of 30 jobs left\ndone: 0 jobs this run, all 30 acknowledged\n", out.String())
}

// TestKilledRunResumes runs the pool in a child process, kills it with
// SIGKILL once it has done some jobs, and runs it again on the same file:
// every job is done, the second run does each of its jobs once, and what
// both runs did is at most the last unwritten cursor batch plus what the
// workers held.
func TestKilledRunResumes(t *testing.T) {
	if os.Getenv(childEnv) != "" {
		t.Skip("inside the child")
	}
	const jobs, workers, killAt = childJobs, childWorkers, 50
	path := filepath.Join(t.TempDir(), "pool.db")
	// A child that hangs is killed, so the test fails rather than waits.
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), childEnv+"="+path)
	cmd.Stderr = os.Stderr
	pipe, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	// Killed once every job is in the file and some are done.
	var first strings.Builder
	lines := bufio.NewScanner(pipe)
	published := false
	for n := 0; (n < killAt || !published) && lines.Scan(); {
		first.WriteString(lines.Text() + "\n")
		published = published || lines.Text() == fmt.Sprintf("published %d jobs", jobs)
		if strings.Contains(lines.Text(), " did job ") {
			n++
		}
	}
	require.NoError(t, cmd.Process.Kill())
	_, _ = io.Copy(io.Discard, pipe)
	_ = cmd.Wait()
	before := jobsDone(t, first.String())
	require.True(t, published && len(before) >= killAt, "the child stopped early:\n%s", first.String())

	var second strings.Builder
	require.NoError(t, run(ctx, &second, path, jobs, workers, time.Millisecond))
	require.Contains(t, second.String(), "resuming: ")
	after := jobsDone(t, second.String())
	again := 0
	for n := 1; n <= jobs; n++ {
		require.True(t, before[n] > 0 || after[n] > 0, "job %d was never done", n)
		require.LessOrEqual(t, after[n], 1, "job %d done twice after the restart", n)
		if before[n] > 0 && after[n] > 0 {
			again++
		}
	}
	t.Logf("killed after %d jobs; the second run did %d, %d of them again", len(before), len(after), again)
	assert.LessOrEqual(t, again, 64+workers*(8+1), "more came again than one cursor batch and the workers' mailboxes and jobs in hand")
	assert.Contains(t, second.String(), fmt.Sprintf("all %d acknowledged", jobs))
}

// TestChild is the run TestKilledRunResumes kills.
func TestChild(t *testing.T) {
	path := os.Getenv(childEnv)
	if path == "" {
		t.Skip("helper process for TestKilledRunResumes")
	}
	_ = run(context.Background(), os.Stdout, path, childJobs, childWorkers, 20*time.Millisecond) // killed before it returns
}
