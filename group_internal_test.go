package eventbus

import (
	"testing"

	"pgregory.net/rapid"
)

// TestOwedSeqsModel holds owedSeqs to a plain list: has(seq) forgets the
// Seqs below seq and reports whether seq is listed; seq itself stays until
// a higher one is asked.
func TestOwedSeqsModel(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		var o owedSeqs
		var model []uint64
		var last, asked uint64
		t.Repeat(map[string]func(*rapid.T){
			"add": func(t *rapid.T) {
				last += rapid.Uint64Range(1, 5).Draw(t, "step")
				o.add(last)
				model = append(model, last)
			},
			"has": func(t *rapid.T) {
				asked += rapid.Uint64Range(0, 4).Draw(t, "step")
				i := 0
				for i < len(model) && model[i] < asked {
					i++
				}
				model = model[i:]
				want := len(model) > 0 && model[0] == asked
				if got := o.has(asked); got != want {
					t.Fatalf("has(%d) = %v, want %v", asked, got, want)
				}
			},
			"reset": func(t *rapid.T) {
				o.reset()
				model = nil
			},
		})
	})
}

// BenchmarkOwedSeqs asks a list of 100,000 owed Seqs (every other one) about
// every Seq in order, as a catch-up reader does over the store: ns/op is
// per question.
func BenchmarkOwedSeqs(b *testing.B) {
	const n = 100_000
	for b.Loop() {
		b.StopTimer()
		var o owedSeqs
		for i := range n {
			o.add(uint64(2 * i))
		}
		b.StartTimer()
		for seq := range uint64(2 * n) {
			o.has(seq)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*2*n), "ns/question")
}
