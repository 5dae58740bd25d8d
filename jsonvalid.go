package eventbus

import (
	"encoding/binary"
	"math/bits"
)

// validJSON reports whether data is one valid JSON value (RFC 8259, as
// encoding/json.Valid accepts it), without allocating unless nesting is
// deeper than 64. It is the hot-path check of every published payload,
// several times faster than json.Valid; FuzzValidJSON holds the two to the
// same answers. It is one function with no calls: the position is a local,
// the open containers are bits (1 = object), and the parser's states are
// labels (value, key, str, after).
func validJSON(data []byte) bool {
	var (
		i, n  = 0, len(data)
		depth int      // open containers
		open  uint64   // the innermost 64 of them, 1 = object
		outer []uint64 // further out, 64 per word
		isKey bool     // the string being scanned is an object key
		c     byte
		m     uint64
	)
value:
	i = skipSpace(data, i)
	if i >= n {
		return false
	}
	switch c = data[i]; c {
	case '"':
		isKey = false
		goto str
	case '{', '[':
		if depth == maxJSONDepth {
			return false
		}
		i++
		i = skipSpace(data, i)
		if i < n && data[i] == c+2 { // '{'+2 == '}', '['+2 == ']'
			i++
			goto after
		}
		if depth >= 64 && depth%64 == 0 {
			outer = append(outer, open)
		}
		depth++
		open <<= 1
		if c == '[' {
			goto value
		}
		open |= 1
		goto key
	case 't':
		if n-i < 4 || string(data[i:i+4]) != "true" {
			return false
		}
		i += 4
		goto after
	case 'f':
		if n-i < 5 || string(data[i:i+5]) != "false" {
			return false
		}
		i += 5
		goto after
	case 'n':
		if n-i < 4 || string(data[i:i+4]) != "null" {
			return false
		}
		i += 4
		goto after
	}
	// A number.
	if c == '-' {
		if i++; i >= n {
			return false
		}
		c = data[i]
	}
	switch {
	case c == '0':
		i++
	case c >= '1' && c <= '9':
		for i++; i < n && data[i] >= '0' && data[i] <= '9'; i++ {
		}
	default:
		return false
	}
	if i < n && data[i] == '.' {
		if i++; i >= n || data[i] < '0' || data[i] > '9' {
			return false
		}
		for i++; i < n && data[i] >= '0' && data[i] <= '9'; i++ {
		}
	}
	if i < n && (data[i] == 'e' || data[i] == 'E') {
		if i++; i < n && (data[i] == '+' || data[i] == '-') {
			i++
		}
		if i >= n || data[i] < '0' || data[i] > '9' {
			return false
		}
		for i++; i < n && data[i] >= '0' && data[i] <= '9'; i++ {
		}
	}
	goto after

key:
	i = skipSpace(data, i)
	if i >= n || data[i] != '"' {
		return false
	}
	isKey = true

str: // at the opening quote
	i++
	for {
		// Eight bytes at a time to the first quote, backslash or control
		// character, then one at a time near the end.
		for n-i >= 8 {
			x := binary.LittleEndian.Uint64(data[i:])
			if m = specialStringBytes(x); m != 0 {
				i += bits.TrailingZeros64(m) >> 3
				goto special // data[i] is the first special byte
			}
			i += 8
		}
		for i < n && plainStringByte[data[i]] {
			i++
		}
		if i >= n {
			return false
		}
	special:
		if c = data[i]; c == '"' {
			i++
			break
		}
		if c < 0x20 {
			return false
		}
		// A backslash.
		if i++; i >= n {
			return false
		}
		switch data[i] {
		case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			i++
		case 'u':
			if n-i < 5 || !isHex(data[i+1]) || !isHex(data[i+2]) || !isHex(data[i+3]) || !isHex(data[i+4]) {
				return false
			}
			i += 5
		default:
			return false
		}
	}
	if isKey {
		i = skipSpace(data, i)
		if i >= n || data[i] != ':' {
			return false
		}
		i++
		goto value
	}

after: // a value ended before i
	i = skipSpace(data, i)
	if depth == 0 {
		return i == n
	}
	if i >= n {
		return false
	}
	switch c = data[i]; {
	case c == ',':
		i++
		if open&1 == 1 {
			goto key
		}
		goto value
	case c == '}' && open&1 == 1, c == ']' && open&1 == 0:
		i++
		depth--
		open >>= 1
		if depth >= 64 && depth%64 == 0 {
			open = outer[len(outer)-1]
			outer = outer[:len(outer)-1]
		}
		goto after
	}
	return false
}

// skipSpace returns the index of the first byte from i on that is not JSON
// whitespace. It is small enough to be inlined.
func skipSpace(data []byte, i int) int {
	// Every whitespace byte is at most ' ': most bytes are ruled out by
	// the first comparison.
	for i < len(data) && data[i] <= ' ' && (data[i] == ' ' || data[i] == '\n' || data[i] == '\t' || data[i] == '\r') {
		i++
	}
	return i
}

// maxJSONDepth bounds nesting, as encoding/json does (10000).
const maxJSONDepth = 10000

const (
	lsb = 0x0101010101010101
	msb = 0x8080808080808080
)

// specialStringBytes returns a mask with the high bit set in the byte
// positions of x (read little-endian) that hold '"', '\\' or a control
// character. Above the lowest flagged byte others may be flagged falsely
// (borrows carry), so only the lowest one is to be used.
func specialStringBytes(x uint64) uint64 {
	q := x ^ (lsb * '"')
	s := x ^ (lsb * '\\')
	return ((q-lsb)&^q | (s-lsb)&^s | (x-lsb*0x20)&^x) & msb
}

// plainStringByte marks the bytes that stand for themselves inside a JSON
// string: all but '"', '\\' and control characters.
var plainStringByte = func() (t [256]bool) {
	for c := 0x20; c < 256; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

func isHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}
