package sqlitestore_test

import (
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(cleanupM{m}) }

// cleanupM removes the benchmark fixtures after the tests and benchmarks
// have run, before goleak checks for leaks and the process exits.
type cleanupM struct{ m *testing.M }

func (c cleanupM) Run() int {
	code := c.m.Run()
	removeFixtures()
	return code
}
