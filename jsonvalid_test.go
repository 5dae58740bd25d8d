package eventbus

import (
	"encoding/json"
	"strings"
	"testing"
)

var jsonCases = []string{
	`null`, `true`, `false`, `0`, `-0`, `1.5e10`, `-1.5E-3`, `1e+2`, `""`, `"a\"b\\c\/\b\f\n\r\t"`, `"\u00e9\uD83D"`,
	`[]`, `{}`, ` [ 1 , 2 ] `, `{"a":{"b":[1,{"c":null}]}}`, "\"caf\xc3\xa9\"", "\"\xff\"",
	``, ` `, `nul`, `nulls`, `tru`, `01`, `-`, `1.`, `.5`, `1e`, `1e+`, `+1`, `"`, `"\x"`, `"\u12"`, `"\u12g4"`,
	"\"a\x01\"", `[1,]`, `[,1]`, `{"a"}`, `{"a":}`, `{"a":1,}`, `{a:1}`, `{"a":1 "b":2}`, `[1 2]`, `1 2`, `[`, `{`,
	strings.Repeat("[", 10001) + strings.Repeat("]", 10001), strings.Repeat("[", 100) + strings.Repeat("]", 100),
}

func TestValidJSON(t *testing.T) {
	for _, c := range jsonCases {
		if got, want := validJSON([]byte(c)), json.Valid([]byte(c)); got != want {
			t.Errorf("validJSON(%.40q) = %v, json.Valid says %v", c, got, want)
		}
	}
}

func FuzzValidJSON(f *testing.F) {
	for _, c := range jsonCases {
		f.Add([]byte(c))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if got, want := validJSON(data), json.Valid(data); got != want {
			t.Fatalf("validJSON(%q) = %v, json.Valid says %v", data, got, want)
		}
	})
}

func BenchmarkValidJSON(b *testing.B) {
	payload := []byte(`{"worker":"w-17","task":"index","pct":42,"note":"a payload of about one hundred bytes......"}`)
	b.Run("eventbus", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			validJSON(payload)
		}
	})
	b.Run("encoding/json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			json.Valid(payload)
		}
	})
}
