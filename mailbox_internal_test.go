package eventbus

import (
	"reflect"
	"testing"

	"pgregory.net/rapid"
)

// TestEnvRingModel runs random pushes, pops, put-backs, resets and
// releases on an envRing against a slice, across buffers that grow and go
// back to ringBufs and come out again: the ring is FIFO, and every buffer
// it takes is zero where it has not written.
func TestEnvRingModel(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		var r envRing
		var model []uint64
		next := uint64(1)
		check := func() {
			if r.len() != len(model) {
				t.Fatalf("len %d, model %d", r.len(), len(model))
			}
			for i, want := range model {
				if got := r.buf[(r.head+i)&(len(r.buf)-1)].e.Seq; got != want {
					t.Fatalf("slot %d holds Seq %d, model %d", i, got, want)
				}
			}
			for i := len(model); i < len(r.buf); i++ {
				if env := r.buf[(r.head+i)&(len(r.buf)-1)]; !reflect.ValueOf(env).IsZero() {
					t.Fatalf("free slot %d not zero: Seq %d", i, env.e.Seq)
				}
			}
		}
		t.Repeat(map[string]func(*rapid.T){
			"push": func(t *rapid.T) {
				for range rapid.IntRange(1, 40).Draw(t, "n") {
					r.push(&Event{Seq: next, Topic: "t"}, int64(next))
					model = append(model, next)
					next++
				}
			},
			"pop": func(t *rapid.T) {
				if len(model) == 0 {
					t.Skip("empty")
				}
				if env := r.pop(); env.e.Seq != model[0] {
					t.Fatalf("pop: Seq %d, model %d", env.e.Seq, model[0])
				}
				model = model[1:]
			},
			"dropFront": func(t *rapid.T) {
				if len(model) == 0 {
					t.Skip("empty")
				}
				r.dropFront()
				model = model[1:]
			},
			"pushFront": func(t *rapid.T) {
				if len(model) == 0 {
					t.Skip("empty")
				}
				env := r.pop()
				r.pushFront(env)
			},
			"reset": func(t *rapid.T) {
				r.reset()
				model = nil
			},
			"release": func(t *rapid.T) {
				r.release() // only an empty ring lets its buffer go
				if len(model) > 0 && r.buf == nil {
					t.Fatal("release dropped the buffer of a ring that holds events")
				}
			},
			"": func(t *rapid.T) { check() },
		})
	})
}
