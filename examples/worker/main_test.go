package main

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestRun(t *testing.T) {
	var out strings.Builder
	require.NoError(t, run(t.Context(), &out, 4, 3))
	want := `4 workers ran 12 tasks
  worker_complete  11
  worker_failed    1
  worker_progress  48
  worker_spawned   12
  worker-2 failed worker-2/task-3
`
	require.Equal(t, want, out.String())
}
