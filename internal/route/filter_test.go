package route

import (
	"fmt"
	"hash/maphash"
	"testing"

	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"
)

// TestKeyFilterModel adds and removes keys in a filter, turned on from
// 0, 2 or 8 keys, and checks after each change that it holds every key
// (never answering "no" for one), that each key is at its pattern's slot,
// and that stale and live keys never overfill it.
func TestKeyFilterModel(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		least := rapid.SampledFrom([]int{0, 2, 8}).Draw(t, "least")
		var f keyFilter[int]
		live := map[*pat[int]]uint64{}
		var pool []*pat[int]
		// Hashes that share words and bits, to make keys collide.
		hash := rapid.Custom(func(t *rapid.T) uint64 {
			return rapid.Uint64().Draw(t, "h") & rapid.SampledFrom([]uint64{^uint64(0), 0xF00000000000000F, 0x8000000000000003}).Draw(t, "keep")
		})
		for range rapid.IntRange(1, 200).Draw(t, "steps") {
			if len(pool) > 0 && rapid.Bool().Draw(t, "remove") {
				i := rapid.IntRange(0, len(pool)-1).Draw(t, "which")
				p := pool[i]
				pool[i] = pool[len(pool)-1]
				pool = pool[:len(pool)-1]
				f.remove(p, least)
				delete(live, p)
			} else {
				p, h := &pat[int]{}, hash.Draw(t, "hash")
				f.add(p, h, least)
				live[p] = h
				pool = append(pool, p)
			}
			require.Len(t, f.keys, len(live))
			for p, h := range live {
				require.Equal(t, filterKey[int]{h, p}, f.keys[p.slot], "key at its slot")
				require.True(t, !f.on() || f.mayHave(h), "a key held is never refused")
			}
			switch {
			case len(live) >= least && len(live) > 0:
				require.True(t, f.on(), "on from %d keys, %d held", least, len(live))
			case len(live) < least/2:
				require.False(t, f.on(), "off below %d keys, %d held", least/2, len(live))
			}
			if f.on() {
				require.LessOrEqual(t, len(f.keys)+f.stale, keysPerWord*len(f.words))
				require.Equal(t, len(f.words), 1<<(64-f.shift), "the top bits pick a word")
			}
		}
	})
}

// TestKeyFilterRefuses checks that the filter does refuse keys it lacks,
// and forgets removed keys once rebuilt: of 1,000 absent keys, hardly any
// (2 % expected; the check allows 20 %) pass.
func TestKeyFilterRefuses(t *testing.T) {
	x := New[int](0)
	for i := range 5 * filterMin {
		x.Add(fmt.Sprintf("a.%d.b", i), i)
		x.Add(fmt.Sprintf("a.%d.*", i), i)
	}
	require.True(t, x.filter.on())
	passed := func(prefix string) int {
		n := 0
		for i := range 1000 {
			if x.filter.mayHave(maphash.String(x.seed, fmt.Sprintf("%s.%d.b", prefix, i))) {
				n++
			}
		}
		return n
	}
	require.Less(t, passed("z"), 200, "absent keys")
	require.Equal(t, 1000, passed("a"), "keys held")
	for i := range 5 * filterMin {
		x.Remove(fmt.Sprintf("a.%d.b", i), i)
		x.Remove(fmt.Sprintf("a.%d.*", i), i)
	}
	require.False(t, x.filter.on(), "off once nearly empty")
	require.Empty(t, x.filter.keys)
}
