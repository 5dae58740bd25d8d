// Package eventbustest provides helpers for testing code that publishes to
// or subscribes on an [eventbus.Bus].
//
// [New] starts a bus that is shut down when the test ends and that fails
// the test if the test left a subscription open. [Record] subscribes a
// [Recorder] that keeps every event matching a pattern, and [Expect] and
// [ExpectExactly] wait for the events a test expects, described by
// matchers ([Type], [Topic], [Payload], [All], [Func]), printing what did
// arrive when they do not:
//
//	func TestWorker(t *testing.T) {
//		bus := eventbustest.New(t)
//		rec := eventbustest.Record(t, bus, "worker.*")
//		runWorker(t.Context(), bus)
//		eventbustest.Expect(t, rec,
//			eventbustest.Type(eventbus.WorkerSpawned),
//			eventbustest.Type(eventbus.WorkerComplete),
//		)
//	}
//
// # Waiting
//
// Expect and ExpectExactly wait up to the recorder's timeout
// ([DefaultTimeout] unless [Recorder.SetTimeout] changed it) for the
// events, so a test need not know when an asynchronous publisher gets to
// them, and never sleeps for longer than the events take. Each call starts
// where the previous one on the same recorder stopped: the events it
// matched, and those before them, are consumed.
//
// # Failures
//
// The helpers report through a [TB], which *testing.T, *testing.B and
// *testing.F satisfy: a failed expectation calls Fatalf, and a problem found
// at cleanup (a subscription left open, a shutdown that does not finish)
// calls Errorf. They do not rely on Fatalf stopping the goroutine.
//
// A Recorder reads its subscription on a goroutine of its own into a list
// without bound, under the Block policy, so it loses nothing and never
// holds up the bus for long; it is closed when the test that made it ends.
package eventbustest
