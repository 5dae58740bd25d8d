package natsbridge

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestImportSubjects(t *testing.T) {
	tests := []struct {
		name     string
		patterns []string
		subjects []string
		exact    []bool
	}{
		{"one exact", []string{"worker.*"}, []string{"p.worker.>"}, []bool{true}},
		{"globs share a subject", []string{"worker.*.complete", "worker.*.failed"}, []string{"p.worker.>"}, []bool{false}},
		{"an exact pattern on a shared subject", []string{"worker.*.complete", "worker.*"}, []string{"p.worker.>"}, []bool{true}},
		{"covered subjects dropped", []string{"worker.a", "worker.*", "worker.b.*"}, []string{"p.worker.>"}, []bool{true}},
		{"everything covers all", []string{"chat.*", "*.failed", "x"}, []string{"p.>"}, []bool{false}},
		{"disjoint", []string{"chat.*", "worker.1.done"}, []string{"p.chat.>", "p.worker.1.done"}, []bool{true, true}},
		{"prefix of a token is not a cover", []string{"work.*", "worker.x"}, []string{"p.work.>", "p.worker.x"}, []bool{true, true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			subjects, exact := importSubjects("p", tt.patterns)
			assert.Equal(t, tt.subjects, subjects)
			assert.Equal(t, tt.exact, exact)
		})
	}
}
