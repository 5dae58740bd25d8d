package sqlitestore

import (
	"errors"
	"slices"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// Event.Metadata is stored in events.metadata as a JSON object of strings,
// keys sorted, or NULL when the event has none, so the sqlite3 shell reads
// it with json_extract(metadata, '$.traceparent'). The store writes and
// reads it itself rather than through encoding/json, for two reasons: the
// bytes of every value come back exactly, even a value that is not valid
// UTF-8 (encoding/json would replace such bytes with U+FFFD; here they are
// written as they are, which SQLite's JSON functions pass through), and
// encoding costs no allocation beyond the text itself.

// appendMetadata appends md as a JSON object with sorted keys to buf and
// returns it. keys is scratch space for sorting, returned for reuse.
func appendMetadata(buf []byte, md map[string]string, keys []string) ([]byte, []string) {
	keys = keys[:0]
	for k := range md {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	buf = append(buf, '{')
	for i, k := range keys {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = appendJSONString(buf, k)
		buf = append(buf, ':')
		buf = appendJSONString(buf, md[k])
	}
	return append(buf, '}'), keys
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string. Quotes, backslashes and
// control characters are escaped; every other byte, valid UTF-8 or not, is
// copied as it is.
func appendJSONString(buf []byte, s string) []byte {
	buf = append(buf, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		buf = append(buf, s[start:i]...)
		switch c {
		case '"', '\\':
			buf = append(buf, '\\', c)
		case '\n':
			buf = append(buf, '\\', 'n')
		case '\r':
			buf = append(buf, '\\', 'r')
		case '\t':
			buf = append(buf, '\\', 't')
		default:
			buf = append(buf, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		}
		start = i + 1
	}
	buf = append(buf, s[start:]...)
	return append(buf, '"')
}

// errMetadataJSON reports a metadata column that is not a JSON object of
// strings.
var errMetadataJSON = errors.New("metadata is not a JSON object of strings")

// parseMetadata parses a JSON object of strings, as appendMetadata writes
// it or as written by hand (any JSON whitespace and escapes), into a map.
// An empty object gives nil, as does an empty or NULL column.
func parseMetadata(data []byte) (map[string]string, error) {
	p := metadataParser{data: data}
	p.space()
	if p.i == len(data) {
		return nil, nil
	}
	if !p.byte('{') {
		return nil, errMetadataJSON
	}
	var md map[string]string
	p.space()
	if p.byte('}') {
		p.space()
		if p.i != len(data) {
			return nil, errMetadataJSON
		}
		return nil, nil
	}
	for {
		p.space()
		k, ok := p.string()
		if !ok {
			return nil, errMetadataJSON
		}
		p.space()
		if !p.byte(':') {
			return nil, errMetadataJSON
		}
		p.space()
		v, ok := p.string()
		if !ok {
			return nil, errMetadataJSON
		}
		if md == nil {
			md = make(map[string]string)
		}
		md[k] = v
		p.space()
		if p.byte('}') {
			break
		}
		if !p.byte(',') {
			return nil, errMetadataJSON
		}
	}
	p.space()
	if p.i != len(data) {
		return nil, errMetadataJSON
	}
	return md, nil
}

type metadataParser struct {
	data []byte
	i    int
}

func (p *metadataParser) space() {
	for p.i < len(p.data) {
		switch p.data[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

func (p *metadataParser) byte(c byte) bool {
	if p.i < len(p.data) && p.data[p.i] == c {
		p.i++
		return true
	}
	return false
}

// string parses a JSON string. Bytes other than escapes are taken as they
// are, so what appendJSONString wrote comes back exactly.
func (p *metadataParser) string() (string, bool) {
	if !p.byte('"') {
		return "", false
	}
	start := p.i
	for p.i < len(p.data) { // fast path: no escapes
		c := p.data[p.i]
		if c == '"' {
			s := string(p.data[start:p.i])
			p.i++
			return s, true
		}
		if c == '\\' || c < 0x20 {
			break
		}
		p.i++
	}
	out := append([]byte(nil), p.data[start:p.i]...)
	for p.i < len(p.data) {
		c := p.data[p.i]
		switch {
		case c == '"':
			p.i++
			return string(out), true
		case c < 0x20:
			return "", false
		case c != '\\':
			out = append(out, c)
			p.i++
			continue
		}
		if p.i+1 >= len(p.data) {
			return "", false
		}
		e := p.data[p.i+1]
		p.i += 2
		switch e {
		case '"', '\\', '/':
			out = append(out, e)
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r, ok := p.hex4()
			if !ok {
				return "", false
			}
			if utf16.IsSurrogate(r) {
				// A pair is two escapes; a lone half becomes U+FFFD, as in
				// encoding/json.
				save := p.i
				if p.byte('\\') && p.byte('u') {
					if r2, ok := p.hex4(); ok {
						if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
							out = utf8.AppendRune(out, dec)
							continue
						}
					}
				}
				p.i = save
				r = utf8.RuneError
			}
			out = utf8.AppendRune(out, r)
		default:
			return "", false
		}
	}
	return "", false
}

func (p *metadataParser) hex4() (rune, bool) {
	if p.i+4 > len(p.data) {
		return 0, false
	}
	v, err := strconv.ParseUint(string(p.data[p.i:p.i+4]), 16, 32)
	if err != nil {
		return 0, false
	}
	p.i += 4
	return rune(v), true
}
