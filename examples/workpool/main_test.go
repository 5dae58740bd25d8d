package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestRun(t *testing.T) {
	path := filepath.Join(t.TempDir(), "pool.db")
	var out strings.Builder
	require.NoError(t, run(t.Context(), &out, path, 30, 3, 0))
	assert.Contains(t, out.String(), "published 30 jobs\n")
	assert.Equal(t, 30, strings.Count(out.String(), " did job "))
	assert.Contains(t, out.String(), "done: 30 jobs this run, all 30 acknowledged\n")

	// A second run finds every job acknowledged.
	out.Reset()
	require.NoError(t, run(t.Context(), &out, path, 30, 3, 0))
	assert.Equal(t, "resuming after job Seq 30 of 30\ndone: 0 jobs this run, all 30 acknowledged\n", out.String())
}
