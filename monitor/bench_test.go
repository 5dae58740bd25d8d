package monitor_test

import (
	"fmt"
	"io"
	"net/http/httptest"
	"testing"

	"github.com/choiros/eventbus"
	"github.com/choiros/eventbus/monitor"
)

// BenchmarkSnapshot is one sample of the feed, sampled and JSON-encoded:
// at one update a second, ns/op / 1e9 is the share of one core it costs.
func BenchmarkSnapshot(b *testing.B) {
	for _, n := range []int{10_000} {
		b.Run(fmt.Sprintf("subs=%d", n), func(b *testing.B) {
			bus, err := eventbus.New(eventbus.WithStore(nil))
			if err != nil {
				b.Fatal(err)
			}
			defer bus.Close()
			for i := range n {
				if _, err := bus.Subscribe(b.Context(), fmt.Sprintf("topic.%d", i), eventbus.WithName(fmt.Sprintf("sub-%d", i))); err != nil {
					b.Fatal(err)
				}
			}
			// An interval of 10ms keeps a snapshot fresh for 5ms; a sample
			// of 10,000 subscriptions takes longer than that, so every
			// iteration samples afresh (fewer subscriptions would mostly
			// measure the cache).
			h := monitor.Handler(bus, monitor.WithInterval(10_000_000))
			b.ReportAllocs()
			for b.Loop() {
				rec := httptest.NewRecorder()
				rec.Body = nil
				h.ServeHTTP(discard{rec}, httptest.NewRequest("GET", "/snapshot", nil))
			}
		})
	}
}

// discard is a ResponseWriter that throws the body away.
type discard struct{ *httptest.ResponseRecorder }

func (discard) Write(p []byte) (int, error) { return io.Discard.Write(p) }
