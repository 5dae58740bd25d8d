package sqlitestore

import (
	"encoding/json"
	"testing"
	"unicode/utf8"

	"github.com/oklog/ulid/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestMetadataText(t *testing.T) {
	tests := []struct {
		name string
		md   map[string]string
		want string
	}{
		{"one pair", map[string]string{"k": "v"}, `{"k":"v"}`},
		{"keys sorted", map[string]string{"b": "2", "a": "1", "C": "0"}, `{"C":"0","a":"1","b":"2"}`},
		{"escapes", map[string]string{"k": "\"\\\n\r\t\x00\x1f/<>&\u2028"}, `{"k":"\"\\\n\r\t\u0000\u001f/<>&` + "\u2028" + `"}`},
		{"invalid UTF-8 kept as it is", map[string]string{"k": "a\xffb\xc3"}, "{\"k\":\"a\xffb\xc3\"}"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, _ := appendMetadata(nil, tt.md, nil)
			assert.Equal(t, tt.want, string(got))
			back, err := parseMetadata(got)
			require.NoError(t, err)
			assert.Equal(t, tt.md, back)
		})
	}
}

func TestParseMetadata(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want map[string]string
		ok   bool
	}{
		{"empty column", "", nil, true},
		{"empty object", " { } ", nil, true},
		{"written by hand", "{ \"a\" : \"1\" ,\n\t\"b\":\"x\\/y\\b\\f\\u00e9\\ud83d\\ude00\" }", map[string]string{"a": "1", "b": "x/y\b\fé😀"}, true},
		{"lone surrogate", `{"a":"\ud83dx"}`, map[string]string{"a": "\uFFFDx"}, true},
		{"a later key wins", `{"a":"1","a":"2"}`, map[string]string{"a": "2"}, true},
		{"not an object", `["a"]`, nil, false},
		{"number value", `{"a":1}`, nil, false},
		{"null value", `{"a":null}`, nil, false},
		{"trailing comma", `{"a":"1",}`, nil, false},
		{"unterminated", `{"a":"1`, nil, false},
		{"bad escape", `{"a":"\x"}`, nil, false},
		{"short unicode escape", `{"a":"\u12"}`, nil, false},
		{"raw control character", "{\"a\":\"\n\"}", nil, false},
		{"trailing text", `{"a":"1"} x`, nil, false},
		{"missing colon", `{"a" "1"}`, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseMetadata([]byte(tt.in))
			if !tt.ok {
				require.ErrorIs(t, err, errMetadataJSON)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func FuzzMetadataRoundTrip(f *testing.F) {
	f.Add("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "b", "")
	f.Add("k", "\"\\\x00\xff\u2028", "k2", "\n")
	f.Fuzz(func(t *testing.T, k1, v1, k2, v2 string) {
		md := map[string]string{k1: v1, k2: v2}
		text, _ := appendMetadata(nil, md, nil)
		back, err := parseMetadata(text)
		require.NoError(t, err)
		require.Equal(t, md, back)
		if utf8.ValidString(k1 + v1 + k2 + v2) {
			// Then it is standard JSON, which encoding/json reads the same.
			var std map[string]string
			require.NoError(t, json.Unmarshal(text, &std), "%s", text)
			require.Equal(t, md, std)
		}
	})
}

func TestParseIDMatchesParseStrict(t *testing.T) {
	tests := []struct{ name, text string }{
		{"upper case", "01ARZ3NDEKTSV4RRFFQ69G5FAV"},
		{"lower case", "01arz3ndektsv4rrffq69g5fav"},
		{"zero", "00000000000000000000000000"},
		{"largest", "7ZZZZZZZZZZZZZZZZZZZZZZZZZ"},
		{"overflow", "80000000000000000000000000"},
		{"excluded letter U", "01ARZ3NDEKTSV4RRFFQ69G5FAU"},
		{"excluded letter I", "01ARZ3NDEKTSV4RRFFQ69G5FAI"},
		{"punctuation", "01ARZ3NDEKTSV4RRFFQ69G5FA-"},
		{"short", "01ARZ3NDEKTSV4RRFFQ69G5FA"},
		{"long", "01ARZ3NDEKTSV4RRFFQ69G5FAVV"},
		{"empty", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want, wantErr := ulid.ParseStrict(tt.text)
			var got ulid.ULID
			err := parseID(&got, []byte(tt.text))
			assert.Equal(t, wantErr, err)
			assert.Equal(t, want, got)
		})
	}
}
