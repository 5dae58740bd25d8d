package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/choiros/eventbus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// smallConfig is a one-second run that any machine sustains.
func smallConfig() config {
	cfg := defaultConfig()
	cfg.Rate = 2000
	cfg.Subs = 10
	cfg.Duration = time.Second
	cfg.Overflow = []eventbus.Overflow{eventbus.Block}
	cfg.Progress = 200 * time.Millisecond
	return cfg
}

// requireSane checks what every lossless report must hold.
func requireSane(t *testing.T, rep Report) {
	t.Helper()
	require.NotZero(t, rep.Published)
	assert.Equal(t, rep.Expected, rep.Delivered, "delivered")
	assert.Zero(t, rep.Dropped)
	assert.Positive(t, rep.LatencyP50)
	assert.LessOrEqual(t, rep.LatencyP50, rep.LatencyP95)
	assert.LessOrEqual(t, rep.LatencyP95, rep.LatencyP99)
	assert.LessOrEqual(t, rep.LatencyP99, rep.LatencyMax)
	assert.Positive(t, rep.PublishRate)
	assert.Positive(t, rep.DeliveryRate)
	assert.NotZero(t, rep.HeapInUseEnd)
}

func TestRun(t *testing.T) {
	tests := []struct {
		name   string
		modify func(*config)
		perPub uint64 // deliveries per published event
	}{
		{name: "sync publish", modify: func(*config) {}, perPub: 10},
		{name: "async publish", modify: func(c *config) { c.Async = true }, perPub: 10},
		{name: "memory store", modify: func(c *config) { c.Store = "memory" }, perPub: 10},
		{
			name: "topics and patterns",
			modify: func(c *config) {
				c.Topics = 4 // load.0 … load.3
				c.Patterns = []string{"load.*", "load.1", "nomatch.*"}
			},
			// Per 4 events: 4 subs on load.* get 4 each, 3 on load.1 get 1, 3 get none.
			perPub: 0,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := smallConfig()
			tt.modify(&cfg)
			var progress bytes.Buffer
			rep, err := run(t.Context(), cfg, &progress)
			require.NoError(t, err)
			requireSane(t, rep)
			if tt.perPub > 0 {
				assert.Equal(t, tt.perPub*rep.Published, rep.Expected)
			} else {
				// Round-robin over load.0 … load.3: load.1 got every
				// fourth event, starting with the second.
				onLoad1 := rep.Published / 4
				if rep.Published%4 >= 2 {
					onLoad1++
				}
				assert.Equal(t, 4*rep.Published+3*onLoad1, rep.Expected)
			}
			// 2,000 events/s for 1s, unless the machine held the
			// publisher back past the end (then it stops short: the run
			// reports the achieved rate rather than running over).
			assert.LessOrEqual(t, rep.Published, uint64(2000))
			assert.Positive(t, rep.Published)
			assert.Contains(t, progress.String(), "busload:")
			assert.Contains(t, progress.String(), "p99")
			require.Len(t, rep.Policies, 1)
			assert.Equal(t, "block", rep.Policies[0].Policy)
			assert.Equal(t, 10, rep.Policies[0].Subscriptions)
		})
	}
}

func TestRunBaseline(t *testing.T) {
	tests := []struct {
		name   string
		modify func(*config)
		reach  []uint64 // deliveries of an event on topic i, published round-robin
	}{
		{name: "one topic", modify: func(*config) {}, reach: []uint64{10}},
		{
			name: "topics and patterns",
			modify: func(c *config) {
				c.Topics = 4
				c.Patterns = []string{"load.*", "load.1", "nomatch.*"}
			},
			// 4 subscribers on load.*, 3 on load.1, 3 on nomatch.*.
			reach: []uint64{4, 7, 4, 4},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			expectedFor := func(published uint64) uint64 {
				var n uint64
				for i := range published {
					n += tt.reach[i%uint64(len(tt.reach))]
				}
				return n
			}
			cfg := smallConfig()
			cfg.Baseline = true
			tt.modify(&cfg)
			var progress bytes.Buffer
			rep, err := run(t.Context(), cfg, &progress)
			require.NoError(t, err)
			requireSane(t, rep)
			require.NotNil(t, rep.Baseline)
			require.NotNil(t, rep.BusOverBaseline)

			require.NotNil(t, rep.BaselinePtr)
			require.NotNil(t, rep.BusOverBaselinePtr)
			for _, bl := range []struct {
				name string
				b    Figures
				r    Ratios
			}{{"by value", *rep.Baseline, *rep.BusOverBaseline}, {"8-byte", *rep.BaselinePtr, *rep.BusOverBaselinePtr}} {
				b := bl.b
				// A loaded machine (-race, other tests) may keep one run's
				// publisher from the full rate; each run's count stands.
				assert.Equal(t, expectedFor(rep.Published), rep.Expected, "bus: routes")
				assert.Equal(t, expectedFor(b.Published), b.Expected, "%s: same routes", bl.name)
				assert.Equal(t, b.Expected, b.Delivered, "%s: the baseline is lossless", bl.name)
				assert.Positive(t, b.LatencyP50, bl.name)
				assert.LessOrEqual(t, b.LatencyP50, b.LatencyP95, bl.name)
				assert.LessOrEqual(t, b.LatencyP95, b.LatencyP99, bl.name)
				assert.LessOrEqual(t, b.LatencyP99, b.LatencyMax, bl.name)
				assert.Less(t, b.LatencyMax, time.Minute, "%s: latencies come from the message's stamp", bl.name)
				assert.Positive(t, b.PublishRate, bl.name)
				assert.Positive(t, b.DeliveryRate, bl.name)
				assert.InEpsilon(t, float64(rep.LatencyP99)/float64(b.LatencyP99), bl.r.P99, 1e-9, bl.name)
				assert.InEpsilon(t, float64(rep.LatencyP50)/float64(b.LatencyP50), bl.r.P50, 1e-9, bl.name)
				assert.InEpsilon(t, rep.DeliveryRate/b.DeliveryRate, bl.r.Throughput, 1e-9, bl.name)
			}
			assert.Contains(t, progress.String(), "busload: baseline ")
			assert.Contains(t, progress.String(), "busload: baseline-ptr ")

			var text bytes.Buffer
			rep.writeText(&text)
			assert.Contains(t, text.String(), "baseline      same load")
			assert.Contains(t, text.String(), "bus/baseline  p50 ")
			assert.Contains(t, text.String(), "baseline-ptr  the same")
			assert.Contains(t, text.String(), "bus/ptr       p50 ")

			js, err := json.Marshal(rep)
			require.NoError(t, err)
			var fields map[string]json.RawMessage
			require.NoError(t, json.Unmarshal(js, &fields))
			assert.Contains(t, fields, "latency_p99_ns", "the bus's figures stay at the top level")
			var base map[string]any
			require.NoError(t, json.Unmarshal(fields["baseline"], &base))
			for _, k := range []string{"delivered", "delivered_per_sec", "latency_p50_ns", "latency_p95_ns", "latency_p99_ns", "latency_max_ns"} {
				assert.Contains(t, base, k)
			}
			assert.Contains(t, string(fields["bus_over_baseline"]), `"p99":`)
			assert.Contains(t, string(fields["bus_over_baseline_ptr"]), `"throughput":`)
			assert.Contains(t, fields, "baseline_ptr")
		})
	}
}

func TestRunWithoutBaseline(t *testing.T) {
	cfg := smallConfig()
	cfg.Duration = 200 * time.Millisecond
	rep, err := run(t.Context(), cfg, io.Discard)
	require.NoError(t, err)
	assert.Nil(t, rep.Baseline)
	js, err := json.Marshal(rep)
	require.NoError(t, err)
	assert.NotContains(t, string(js), "baseline")
	var text bytes.Buffer
	rep.writeText(&text)
	assert.NotContains(t, text.String(), "baseline")
}

func TestRunSQLite(t *testing.T) {
	cfg := smallConfig()
	cfg.Duration = 500 * time.Millisecond
	cfg.Store = "sqlite:" + filepath.Join(t.TempDir(), "load.db")
	rep, err := run(t.Context(), cfg, io.Discard)
	require.NoError(t, err)
	requireSane(t, rep)
	// SQLite under -race may not keep up with 2,000 synchronous
	// publishes/s; whatever was published was delivered to all 10.
	assert.Equal(t, 10*rep.Published, rep.Expected)
}

func TestRunMaxRate(t *testing.T) {
	cfg := smallConfig()
	cfg.Rate = 0
	cfg.Subs = 1
	cfg.Duration = 300 * time.Millisecond
	cfg.Async = true
	rep, err := run(t.Context(), cfg, io.Discard)
	require.NoError(t, err)
	requireSane(t, rep)
	assert.Equal(t, rep.Published, rep.Expected)
}

func TestRunPolicies(t *testing.T) {
	// A mailbox of 1 and a publisher as fast as it goes: the drop policies
	// lose events, Block loses none, and the counts add up per policy.
	cfg := smallConfig()
	cfg.Rate = 0
	cfg.Subs = 4
	cfg.Buffer = 1
	cfg.Duration = 300 * time.Millisecond
	cfg.Async = true
	cfg.Overflow = []eventbus.Overflow{eventbus.Block, eventbus.DropNewest, eventbus.DropOldest, eventbus.Disconnect}
	rep, err := run(t.Context(), cfg, io.Discard)
	require.NoError(t, err)
	require.Len(t, rep.Policies, 4)
	var dropped uint64
	for _, p := range rep.Policies {
		assert.Equal(t, 1, p.Subscriptions, p.Policy)
		assert.Equal(t, rep.Published, p.Expected, p.Policy)
		assert.LessOrEqual(t, p.Delivered, p.Expected, p.Policy)
		dropped += p.Dropped
		switch p.Policy {
		case "block":
			assert.Equal(t, p.Expected, p.Delivered)
			assert.Zero(t, p.Dropped)
		case "drop-newest", "drop-oldest":
			assert.Equal(t, p.Expected, p.Delivered+p.Dropped, p.Policy)
		}
	}
	assert.Equal(t, rep.Disconnected, rep.Policies[3].Disconnected)
	assert.Equal(t, dropped, rep.Dropped)
}

func TestRunStopsWithContext(t *testing.T) {
	cfg := smallConfig()
	cfg.Duration = time.Hour
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	rep, err := run(ctx, cfg, io.Discard)
	require.NoError(t, err)
	assert.Less(t, time.Since(start), 10*time.Second)
	requireSane(t, rep)
}

func TestRunErrors(t *testing.T) {
	tests := []struct {
		name   string
		modify func(*config)
		want   string
	}{
		{name: "catch-up without store", modify: func(c *config) { c.Overflow = []eventbus.Overflow{eventbus.CatchUp} }, want: "no store"},
		{name: "invalid pattern", modify: func(c *config) { c.Patterns = []string{"a..b"} }, want: "invalid pattern"},
		{name: "no subscribers", modify: func(c *config) { c.Subs = 0 }, want: "-subs"},
		{name: "unknown store", modify: func(c *config) { c.Store = "redis" }, want: "-store"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := smallConfig()
			tt.modify(&cfg)
			_, err := run(t.Context(), cfg, io.Discard)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
			assert.True(t, strings.HasPrefix(err.Error(), "busload: "), err.Error())
		})
	}
}

func TestParseFlags(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		check   func(*testing.T, config, options)
		wantErr string
	}{
		{
			name: "defaults",
			check: func(t *testing.T, c config, o options) {
				assert.Equal(t, 10000, c.Rate)
				assert.Equal(t, 100, c.Subs)
				assert.Equal(t, []string{"load.*"}, c.Patterns)
				assert.Equal(t, 1, c.Topics)
				assert.Equal(t, 10*time.Second, c.Duration)
				assert.Equal(t, 100, c.Payload)
				assert.Equal(t, "none", c.Store)
				assert.Equal(t, []eventbus.Overflow{eventbus.DropOldest}, c.Overflow)
				assert.False(t, c.Async)
				assert.False(t, c.Baseline)
				assert.False(t, o.json)
			},
		},
		{
			name: "everything",
			args: []string{"-rate", "0", "-subs", "3", "-patterns", "t.*, t.1", "-topics", "5", "-duration", "2s",
				"-payload", "10", "-store", "sqlite:/tmp/x.db", "-overflow", "block,catch-up", "-async", "-baseline", "-json"},
			check: func(t *testing.T, c config, o options) {
				assert.Equal(t, 0, c.Rate)
				assert.Equal(t, []string{"t.*", "t.1"}, c.Patterns)
				assert.Equal(t, 5, c.Topics)
				assert.Equal(t, 2*time.Second, c.Duration)
				assert.Equal(t, "sqlite:/tmp/x.db", c.Store)
				assert.Equal(t, []eventbus.Overflow{eventbus.Block, eventbus.CatchUp}, c.Overflow)
				assert.True(t, c.Async)
				assert.True(t, c.Baseline)
				assert.True(t, o.json)
			},
		},
		{name: "unknown overflow", args: []string{"-overflow", "spill"}, wantErr: "unknown -overflow"},
		{name: "negative rate", args: []string{"-rate", "-1"}, wantErr: "-rate"},
		{name: "bad store", args: []string{"-store", "disk"}, wantErr: "unknown -store"},
		{name: "stray argument", args: []string{"extra"}, wantErr: "unexpected arguments"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, o, err := parseFlags(tt.args, io.Discard)
			if tt.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.wantErr)
				return
			}
			require.NoError(t, err)
			tt.check(t, c, o)
		})
	}
}

func TestMainJSON(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := mainErr([]string{"-rate", "1000", "-subs", "2", "-duration", "300ms", "-overflow", "block", "-json"}, &stdout, &stderr)
	require.Equal(t, 0, code, stderr.String())
	var rep Report
	require.NoError(t, json.Unmarshal(stdout.Bytes(), &rep))
	assert.Equal(t, rep.Expected, rep.Delivered)
	assert.Equal(t, 2*rep.Published, rep.Expected)

	stdout.Reset()
	code = mainErr([]string{"-rate", "1000", "-subs", "2", "-duration", "300ms", "-overflow", "block"}, &stdout, &stderr)
	require.Equal(t, 0, code, stderr.String())
	for _, want := range []string{"published", "delivered", "latency", "dropped", "heap in use", "allocations"} {
		assert.Contains(t, stdout.String(), want)
	}

	assert.Equal(t, 2, mainErr([]string{"-subs", "x"}, &stdout, io.Discard))
}

func TestHistogram(t *testing.T) {
	t.Run("buckets are tight", func(t *testing.T) {
		for _, v := range []int64{0, 1, 63, 64, 65, 127, 128, 1000, 12345, 1e6, 987654321, 1 << 40, histMax} {
			i := histIndex(v)
			require.GreaterOrEqual(t, histUpper(i), v, "value %d", v)
			if i > 0 {
				require.Less(t, histUpper(i-1), v, "value %d", v)
			}
			require.LessOrEqual(t, float64(histUpper(i)-v), float64(v)/64+1, "value %d", v)
		}
		assert.Equal(t, histBuckets-1, histIndex(histMax+1000))
		assert.Equal(t, 0, histIndex(-5))
	})
	t.Run("quantiles", func(t *testing.T) {
		var h histogram
		for v := int64(1); v <= 1000; v++ {
			h.record(v * 1000) // 1µs … 1ms
		}
		var m merged
		m.add(&h)
		assert.Equal(t, uint64(1000), m.total)
		assert.InEpsilon(t, 500e3, float64(m.quantile(0.5)), 0.02)
		assert.InEpsilon(t, 990e3, float64(m.quantile(0.99)), 0.02)
		assert.Equal(t, time.Millisecond, m.quantile(1))
		var empty merged
		assert.Zero(t, empty.quantile(0.99))
	})
}

func TestStamp(t *testing.T) {
	clk := newClock()
	at := clk.now()
	id := clk.stamp(at, 7)
	assert.Equal(t, at, sentAt(id))
	assert.InDelta(t, clk.epoch.UnixMilli(), int64(id.Time()), 1000)
	assert.NotEqual(t, id, clk.stamp(at, 8), "the counter keeps IDs apart")
}
