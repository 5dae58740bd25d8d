package main

import (
	"bytes"
	"encoding/json"
	"io"
	"testing"
	"time"

	"github.com/choiros/eventbus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// modeConfig returns the configuration for mode with the given flags
// marked as set, as parseFlags would.
func modeConfig(mode string, set ...string) config {
	cfg := defaultConfig()
	cfg.Mode = mode
	cfg.Progress = 0
	for _, f := range set {
		cfg.Set[f] = true
	}
	return cfg
}

func requirePercentiles(t *testing.T, p Percentiles, what string) {
	t.Helper()
	assert.Positive(t, p.P50, what)
	assert.LessOrEqual(t, p.P50, p.P99, what)
	assert.LessOrEqual(t, p.P99, p.Max, what)
	assert.Positive(t, p.Mean, what)
	assert.LessOrEqual(t, p.Mean, p.Max, what)
}

func TestScale(t *testing.T) {
	tests := []struct {
		name  string
		churn int
		by    string // -churn-by
		rate  int    // publishes per second while measuring
	}{
		{name: "no churn", churn: 0, by: churnSubscribe, rate: 10000},
		{name: "paced churn", churn: 2000, by: churnSubscribe, rate: 10000},
		{name: "churn max", churn: churnMax, by: churnSubscribe, rate: 10000},
		{name: "back to back", churn: churnMax, by: churnSubscribe, rate: 0},
		{name: "pattern churn max", churn: churnMax, by: churnPattern, rate: 10000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := modeConfig("scale", "subs")
			cfg.Subs = 400
			cfg.Events = 300
			cfg.Churn = tt.churn
			cfg.ChurnBy = tt.by
			cfg.Rate = tt.rate
			rep, err := runScale(t.Context(), cfg, io.Discard)
			require.NoError(t, err)
			assert.Equal(t, 400, rep.Subs)
			assert.Equal(t, 300, rep.Events)
			assert.Equal(t, tt.rate, rep.Rate)
			assert.Positive(t, rep.Create)
			assert.Positive(t, rep.SubscribeAvg)
			assert.Positive(t, rep.SubscribeFirst)
			assert.Positive(t, rep.SubscribeLast)
			assert.LessOrEqual(t, rep.SubscribeAvg, rep.Create)
			assert.Positive(t, rep.UnsubscribeAvg)
			assert.Positive(t, rep.HeapPerSub, "an idle subscription holds some memory")
			requirePercentiles(t, rep.NoSubs.FirstSeen, "no subs, first seen")
			requirePercentiles(t, rep.NoSubs.Repeated, "no subs, repeated")
			requirePercentiles(t, rep.WithSubs.FirstSeen, "subs, first seen")
			requirePercentiles(t, rep.WithSubs.Repeated, "subs, repeated")
			assert.InEpsilon(t, float64(rep.WithSubs.FirstSeen.P99)/float64(rep.NoSubs.FirstSeen.P99), rep.FirstSeenRatio.P99, 1e-9)
			assert.InEpsilon(t, float64(rep.WithSubs.Repeated.Mean)/float64(rep.NoSubs.Repeated.Mean), rep.RepeatedRatio.Mean, 1e-9)
			switch tt.churn {
			case 0:
				assert.Zero(t, rep.ChurnPairs)
				assert.Equal(t, "0", rep.Churn)
			case churnMax:
				assert.Positive(t, rep.ChurnPairs, "churn max makes at least one pair")
				assert.Positive(t, rep.ChurnAvg)
				assert.Equal(t, "max", rep.Churn)
			default:
				assert.LessOrEqual(t, rep.ChurnRate, float64(tt.churn), "pacing never runs ahead")
			}
			assert.Equal(t, tt.by, rep.ChurnBy)
			var text bytes.Buffer
			rep.writeText(&text)
			for _, want := range []string{"busload scale: 400 idle subscriptions", "subscribe     400 in", "unsubscribe", "memory", "publish, none", "publish, subs", "subs/none", "churn"} {
				assert.Contains(t, text.String(), want)
			}
			if tt.by == churnPattern {
				assert.Contains(t, text.String(), "add+remove (one subscription) pairs")
			}
		})
	}
}

func TestFirehose(t *testing.T) {
	cfg := modeConfig("firehose")
	cfg.Events = 20000
	rep, err := runFirehose(t.Context(), cfg, io.Discard)
	require.NoError(t, err)
	assert.Equal(t, "memory (default)", rep.Store)
	assert.Equal(t, "drop-oldest (default)", rep.Overflow)
	assert.Equal(t, eventbus.DefaultBufferSize, rep.Buffer)
	for _, l := range []FirehoseLeg{rep.Bus, rep.Block, rep.Channel} {
		assert.Equal(t, uint64(20000), l.Published, l.Name)
		assert.Equal(t, l.Published, l.Delivered+l.Lost, l.Name)
		assert.Positive(t, l.Throughput, l.Name)
		assert.Positive(t, l.ReaderRate, l.Name)
		assert.LessOrEqual(t, l.PublishTime, l.Elapsed, l.Name)
	}
	assert.Zero(t, rep.Block.Lost, "Block loses nothing")
	assert.Zero(t, rep.Channel.Lost, "the channel loses nothing")
	assert.Equal(t, rep.Bus.Dropped == rep.Bus.Lost, rep.DroppedExact)
	assert.InEpsilon(t, rep.Bus.Throughput/rep.Channel.Throughput, rep.BusOverChannel, 1e-9)
	assert.InEpsilon(t, rep.Bus.ReaderRate/rep.Block.ReaderRate, rep.ReaderOverBlock, 1e-9)

	var text bytes.Buffer
	rep.writeText(&text)
	for _, want := range []string{"busload firehose: 20000 events", "bus drop-oldest (default)", "bus block", "channel (*Event, blocking)", "bus/channel"} {
		assert.Contains(t, text.String(), want)
	}
}

func TestSleeper(t *testing.T) {
	tests := []struct {
		name     string
		overflow []eventbus.Overflow
		want     string
	}{
		{name: "default policy", want: "drop-oldest (default)"},
		{name: "catch-up", overflow: []eventbus.Overflow{eventbus.CatchUp}, want: "catch-up"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := modeConfig("sleeper", "subs")
			if tt.overflow != nil {
				cfg.Set["overflow"] = true
				cfg.Overflow = tt.overflow
			}
			cfg.Subs = 4
			cfg.Events = 600
			cfg.Sleep = 100 * time.Microsecond
			rep, err := runSleeper(t.Context(), cfg, io.Discard)
			require.NoError(t, err)
			assert.Equal(t, tt.want, rep.Overflow)
			for _, l := range []SleeperLeg{rep.With, rep.Without} {
				assert.Equal(t, uint64(600), l.Published)
				assert.Equal(t, 3, l.FastSubs)
				assert.Equal(t, 3*l.Published, l.FastExpected)
				assert.Equal(t, l.FastExpected, l.FastDelivered+l.FastLost)
				assert.Positive(t, l.FastFinish)
			}
			require.NotNil(t, rep.With.Sleeper)
			assert.Nil(t, rep.Without.Sleeper)
			s := rep.With.Sleeper
			assert.Equal(t, rep.With.Published, s.Delivered+s.Missed)
			assert.Equal(t, s.Missed == s.Dropped, s.Exact)
			assert.InEpsilon(t, float64(rep.With.FastFinish)/float64(rep.Without.FastFinish), rep.FastFinishRatio, 1e-9)

			var text bytes.Buffer
			rep.writeText(&text)
			for _, want := range []string{"busload sleeper: 4 subscribers", "with sleeper  3 fast", "without       3 fast", "sleeper       delivered", "Stats().Dropped", "fast finish"} {
				assert.Contains(t, text.String(), want)
			}
		})
	}
	t.Run("needs two subscribers", func(t *testing.T) {
		cfg := modeConfig("sleeper", "subs")
		cfg.Subs = 1
		_, err := runSleeper(t.Context(), cfg, io.Discard)
		require.Error(t, err)
		assert.Contains(t, err.Error(), "-subs")
	})
}

func TestParseFlagsModes(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		check   func(*testing.T, config)
		wantErr string
	}{
		{
			name: "defaults",
			check: func(t *testing.T, c config) {
				assert.Equal(t, "load", c.Mode)
				assert.Zero(t, c.Churn)
				assert.Zero(t, c.Events)
				assert.Equal(t, time.Millisecond, c.Sleep)
				assert.Empty(t, c.Set)
			},
		},
		{
			name: "scale",
			args: []string{"-mode", "scale", "-subs", "100000", "-churn", "max", "-events", "500"},
			check: func(t *testing.T, c config) {
				assert.Equal(t, "scale", c.Mode)
				assert.Equal(t, 100000, c.Subs)
				assert.Equal(t, churnMax, c.Churn)
				assert.Equal(t, 500, c.Events)
				assert.Equal(t, map[string]bool{"mode": true, "subs": true, "churn": true, "events": true}, c.Set)
			},
		},
		{
			name: "paced churn",
			args: []string{"-mode", "scale", "-churn", "250"},
			check: func(t *testing.T, c config) {
				assert.Equal(t, 250, c.Churn)
				assert.Equal(t, churnSubscribe, c.ChurnBy)
			},
		},
		{
			name:  "churn by pattern",
			args:  []string{"-mode", "scale", "-churn", "max", "-churn-by", "pattern"},
			check: func(t *testing.T, c config) { assert.Equal(t, churnPattern, c.ChurnBy) },
		},
		{
			name: "sleeper",
			args: []string{"-mode", "sleeper", "-sleep", "2ms", "-overflow", "catch-up"},
			check: func(t *testing.T, c config) {
				assert.Equal(t, 2*time.Millisecond, c.Sleep)
				assert.True(t, c.Set["overflow"])
				assert.False(t, c.Set["store"])
			},
		},
		{name: "unknown mode", args: []string{"-mode", "burst"}, wantErr: "unknown -mode"},
		{name: "bad churn", args: []string{"-churn", "lots"}, wantErr: "-churn"},
		{name: "negative churn", args: []string{"-churn", "-5"}, wantErr: "-churn"},
		{name: "bad churn-by", args: []string{"-churn-by", "topic"}, wantErr: "-churn-by"},
		{name: "negative events", args: []string{"-events", "-1"}, wantErr: "-events"},
		{name: "negative sleep", args: []string{"-sleep", "-1ms"}, wantErr: "-sleep"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _, err := parseFlags(tt.args, io.Discard)
			if tt.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.wantErr)
				return
			}
			require.NoError(t, err)
			tt.check(t, c)
		})
	}
}

func TestMainModesJSON(t *testing.T) {
	tests := []struct {
		mode string
		args []string
		keys []string
	}{
		{mode: "scale", args: []string{"-subs", "50", "-events", "50", "-churn", "max"},
			keys: []string{"create_ns", "subscribe_avg_ns", "subscribe_last_1000_avg_ns", "unsubscribe_avg_ns", "heap_per_sub_bytes", "goroutines_per_sub", "no_subs", "with_subs", "churn_pairs"}},
		{mode: "firehose", args: []string{"-events", "5000"},
			keys: []string{"bus", "block", "channel", "bus_over_channel", "reader_rate_over_block", "dropped_exact"}},
		{mode: "sleeper", args: []string{"-events", "200", "-subs", "3", "-sleep", "50us"},
			keys: []string{"with_sleeper", "without_sleeper", "fast_finish_ratio"}},
		{mode: "load", args: []string{"-rate", "1000", "-subs", "2", "-duration", "100ms"},
			keys: []string{"published", "latency_p99_ns"}},
	}
	for _, tt := range tests {
		t.Run(tt.mode, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := mainErr(append([]string{"-mode", tt.mode, "-json"}, tt.args...), &stdout, &stderr)
			require.Equal(t, 0, code, stderr.String())
			var fields map[string]json.RawMessage
			require.NoError(t, json.Unmarshal(stdout.Bytes(), &fields))
			assert.Equal(t, `"`+tt.mode+`"`, string(fields["mode"]))
			for _, k := range tt.keys {
				assert.Contains(t, fields, k)
			}
		})
	}
}
