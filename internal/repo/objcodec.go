package repo

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// The index keeps the objects of a file in a compact binary form rather
// than JSON: reading them back is most of what a call that finds every
// file unchanged still does, and this form is read without scanning,
// unquoting or parsing numbers, with every map sized up front and every
// string a slice of one string made per file.
//
// A value is one tag byte and its content:
//
//	'n'                    nil
//	't', 'f'               true, false
//	'i' varint             int64
//	'd' 8 bytes            float64, little endian IEEE 754
//	's' uvarint bytes      string of that many bytes
//	'a' uvarint values     []any of that many values
//	'm' uvarint (uvarint key bytes, value)…   map[string]any
//
// It holds exactly what YAML decoding gives (utilyaml.Unmarshal): nil,
// bool, int64, float64, string, []any and map[string]any. Any other type
// is refused, and the file is then not recorded.

// maxObjectDepth bounds the nesting appendValue and objectReader accept.
const maxObjectDepth = 10000

// errObjectEncoding is what a stored value that cannot be read back
// fails with.
var errObjectEncoding = errors.New("malformed object encoding")

// encodeObjects returns the compact form of a list of objects.
func encodeObjects(objs []map[string]any) ([]byte, error) {
	list := make([]any, len(objs))
	for i, o := range objs {
		list[i] = o
	}
	return appendValue(nil, list, 0)
}

// appendValue appends the compact form of v to b.
func appendValue(b []byte, v any, depth int) ([]byte, error) {
	if depth > maxObjectDepth {
		return nil, errors.New("object nested too deep to index")
	}
	switch v := v.(type) {
	case nil:
		return append(b, 'n'), nil
	case bool:
		if v {
			return append(b, 't'), nil
		}
		return append(b, 'f'), nil
	case int64:
		return binary.AppendVarint(append(b, 'i'), v), nil
	case float64:
		return binary.LittleEndian.AppendUint64(append(b, 'd'), math.Float64bits(v)), nil
	case string:
		return append(binary.AppendUvarint(append(b, 's'), uint64(len(v))), v...), nil
	case []any:
		b = binary.AppendUvarint(append(b, 'a'), uint64(len(v)))
		var err error
		for _, e := range v {
			if b, err = appendValue(b, e, depth+1); err != nil {
				return nil, err
			}
		}
		return b, nil
	case map[string]any:
		b = binary.AppendUvarint(append(b, 'm'), uint64(len(v)))
		var err error
		for k, e := range v {
			b = append(binary.AppendUvarint(b, uint64(len(k))), k...)
			if b, err = appendValue(b, e, depth+1); err != nil {
				return nil, err
			}
		}
		return b, nil
	default:
		return nil, fmt.Errorf("a value of type %T cannot be indexed", v)
	}
}

// decodeObjects reads back a list of objects that encodeObjects wrote.
func decodeObjects(b []byte) ([]map[string]any, error) {
	r := objectReader{s: string(b)}
	v, err := r.value(0)
	if err != nil {
		return nil, err
	}
	if r.pos != len(r.s) {
		return nil, errObjectEncoding
	}
	list, ok := v.([]any)
	if !ok {
		return nil, errObjectEncoding
	}
	out := make([]map[string]any, len(list))
	for i, e := range list {
		if out[i], ok = e.(map[string]any); !ok {
			return nil, errObjectEncoding
		}
	}
	return out, nil
}

// objectReader reads values from one string: the strings it returns
// share its memory.
type objectReader struct {
	s   string
	pos int
}

func (r *objectReader) uvarint() (uint64, error) {
	var x uint64
	for shift := 0; shift < 64; shift += 7 {
		if r.pos >= len(r.s) {
			return 0, errObjectEncoding
		}
		c := r.s[r.pos]
		r.pos++
		x |= uint64(c&0x7f) << shift
		if c < 0x80 {
			return x, nil
		}
	}
	return 0, errObjectEncoding
}

// varint reads a signed integer, zig-zag encoded as binary.AppendVarint
// writes it.
func (r *objectReader) varint() (int64, error) {
	u, err := r.uvarint()
	if err != nil {
		return 0, err
	}
	x := int64(u >> 1)
	if u&1 != 0 {
		x = ^x
	}
	return x, nil
}

// byte reads one byte.
func (r *objectReader) byte() (byte, error) {
	if r.pos >= len(r.s) {
		return 0, errObjectEncoding
	}
	r.pos++
	return r.s[r.pos-1], nil
}

// count reads a length and checks that at least that many bytes remain
// (every element takes one at least), so that a corrupt length cannot
// make the reader allocate more than the input's size.
func (r *objectReader) count() (int, error) {
	n, err := r.uvarint()
	if err != nil || n > uint64(len(r.s)-r.pos) {
		return 0, errObjectEncoding
	}
	return int(n), nil
}

func (r *objectReader) str() (string, error) {
	n, err := r.count()
	if err != nil {
		return "", err
	}
	s := r.s[r.pos : r.pos+n]
	r.pos += n
	return s, nil
}

func (r *objectReader) value(depth int) (any, error) {
	if r.pos >= len(r.s) || depth > maxObjectDepth {
		return nil, errObjectEncoding
	}
	tag := r.s[r.pos]
	r.pos++
	switch tag {
	case 'n':
		return nil, nil
	case 't':
		return true, nil
	case 'f':
		return false, nil
	case 'i':
		return r.varint()
	case 'd':
		if len(r.s)-r.pos < 8 {
			return nil, errObjectEncoding
		}
		var u uint64
		for i := 7; i >= 0; i-- {
			u = u<<8 | uint64(r.s[r.pos+i])
		}
		r.pos += 8
		return math.Float64frombits(u), nil
	case 's':
		return r.str()
	case 'a':
		n, err := r.count()
		if err != nil {
			return nil, err
		}
		list := make([]any, n)
		for i := range list {
			if list[i], err = r.value(depth + 1); err != nil {
				return nil, err
			}
		}
		return list, nil
	case 'm':
		n, err := r.count()
		if err != nil {
			return nil, err
		}
		m := make(map[string]any, n)
		for range n {
			k, err := r.str()
			if err != nil {
				return nil, err
			}
			if m[k], err = r.value(depth + 1); err != nil {
				return nil, err
			}
		}
		return m, nil
	}
	return nil, errObjectEncoding
}
