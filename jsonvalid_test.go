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
	// Whitespace is ' ', '\t', '\n' and '\r'; other bytes up to ' ' are not.
	"\t{\r\n\"a\" :\t[ 1 ,\n2 ]\r}\n", "\v1", "1\f", "[1,\x00 2]", "{\"a\":\x1f1}",
	`{"worker":"w-0042","task":"index","progress":0.5,"note":"a payload of about one hundred bytes."}`,
}

func TestValidJSON(t *testing.T) {
	for _, c := range jsonCases {
		if got, want := validJSON([]byte(c)), json.Valid([]byte(c)); got != want {
			t.Errorf("validJSON(%.40q) = %v, json.Valid says %v", c, got, want)
		}
	}
}

// TestValidJSONNesting: containers nested across the 64 levels kept in
// one word, with objects and arrays interleaved and one closer wrong.
func TestValidJSONNesting(t *testing.T) {
	for _, n := range []int{10, 63, 64, 65, 66, 127, 128, 129, 200, 9999, 10000, 10001} {
		for wrong := -1; wrong < n; wrong += 1 + n/10 {
			var data []byte
			for k := range n {
				if k%3 == 0 {
					data = append(data, `{"a":`...)
				} else {
					data = append(data, '[')
				}
			}
			data = append(data, '1')
			for k := n - 1; k >= 0; k-- {
				c := byte(']')
				if k%3 == 0 {
					c = '}'
				}
				if k == wrong {
					c = '}' + ']' - c
				}
				data = append(data, c)
			}
			if got, want := validJSON(data), json.Valid(data); got != want {
				t.Fatalf("depth %d, wrong closer at %d: validJSON = %v, json.Valid says %v", n, wrong, got, want)
			}
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
	for _, p := range []struct{ name, payload string }{
		{"compact", `{"worker":"w-17","task":"index","pct":42,"note":"a payload of about one hundred bytes......"}`},
		{"indented", "{\n  \"worker\": \"w-17\",\n  \"task\": \"index\",\n  \"pct\": 42,\n  \"note\": \"a payload of about one hundred bytes\"\n}"},
	} {
		payload := []byte(p.payload)
		if !json.Valid(payload) {
			b.Fatalf("%s: not valid JSON", p.name)
		}
		b.Run(p.name+"/eventbus", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				validJSON(payload)
			}
		})
		b.Run(p.name+"/encoding/json", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				json.Valid(payload)
			}
		})
	}
}
