package repo

import (
	"math"
	"strconv"
	"unicode/utf8"

	yamlv2 "go.yaml.in/yaml/v2"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
)

// decodeObject decodes one YAML document into the map an Unstructured
// holds, exactly as utilyaml.Unmarshal does (the decoder kustomize,
// kubectl and Flux use), but without its round trip through JSON: that
// decoder parses the YAML with go.yaml.in/yaml/v2, writes the result as
// JSON and parses that, which is most of the time a walk of a new
// checkout spends. Here the YAML parser's result is converted in place,
// as the round trip would convert it:
//
//   - map keys become strings as sigs.k8s.io/yaml writes them (ints in
//     base 10, floats as go-yaml formats them, booleans as true/false);
//   - integers become int64, and so do floats that JSON writes without
//     a fraction or exponent (1.0, 1e3); other floats stay float64, as do
//     integers beyond int64;
//   - strings, booleans and nulls are kept.
//
// Whatever the round trip could treat otherwise (a string that is not
// valid UTF-8, which JSON would mend; NaN or an infinity, which JSON
// refuses; a key of another type, or two keys that become the same
// string; nesting deeper than fastDepth) is handed to utilyaml.Unmarshal
// itself. ok is false when the document is not an object (empty, a list,
// a scalar) or does not parse, as utilyaml.Unmarshal would leave it.
func decodeObject(doc []byte) (obj map[string]any, ok bool) {
	var v any
	if err := yamlv2.Unmarshal(doc, &v); err != nil {
		return nil, false
	}
	if m, isMap := v.(map[any]any); isMap {
		if out, converted := jsonable(m, 0); converted {
			return out.(map[string]any), true
		}
	} else if v == nil {
		return nil, false
	}
	// Not an object, or not converted here: what the round trip makes of
	// it.
	if err := utilyaml.Unmarshal(doc, &obj); err != nil || obj == nil {
		return nil, false
	}
	return obj, true
}

// fastDepth bounds the nesting jsonable converts; deeper documents take
// the round trip, which has limits of its own.
const fastDepth = 100

// jsonable converts a value go-yaml decoded into what the JSON round trip
// of utilyaml.Unmarshal gives; false when it cannot be sure to (see
// decodeObject).
func jsonable(v any, depth int) (any, bool) {
	if depth > fastDepth {
		return nil, false
	}
	switch v := v.(type) {
	case map[any]any:
		m := make(map[string]any, len(v))
		for k, e := range v {
			key, ok := jsonKey(k)
			if !ok {
				return nil, false
			}
			if m[key], ok = jsonable(e, depth+1); !ok {
				return nil, false
			}
		}
		if len(m) != len(v) {
			return nil, false // two keys became one: the round trip keeps either
		}
		return m, true
	case []any:
		list := make([]any, len(v))
		for i, e := range v {
			var ok bool
			if list[i], ok = jsonable(e, depth+1); !ok {
				return nil, false
			}
		}
		return list, true
	case string:
		return v, utf8.ValidString(v)
	case nil, bool:
		return v, true
	case int:
		return int64(v), true
	case int64:
		return v, true
	case uint64:
		if v <= math.MaxInt64 {
			return int64(v), true
		}
		return float64(v), true
	case float64:
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, false
		}
		if v != math.Trunc(v) {
			return v, true
		}
		// encoding/json writes an integral float without a fraction or
		// exponent (below 1e21), and it then reads back as an int64. Up to
		// 2^53 the digits written are the integer itself; beyond, the
		// shortest form may round it, which the round trip decides.
		if math.Abs(v) <= 1<<53 {
			return int64(v), true
		}
		return nil, false
	}
	return nil, false
}

// jsonKey is the string sigs.k8s.io/yaml makes of a map key.
func jsonKey(k any) (string, bool) {
	switch k := k.(type) {
	case string:
		return k, utf8.ValidString(k)
	case int:
		return strconv.Itoa(k), true
	case int64:
		return strconv.FormatInt(k, 10), true
	case bool:
		return strconv.FormatBool(k), true
	}
	return "", false // floats and others: the round trip's own rules
}
