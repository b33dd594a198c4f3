package main

import (
	"fmt"
	"os"
	"regexp"

	"sigs.k8s.io/yaml"
)

// durationPattern matches the patterns Flux's API modules give their
// duration fields, "^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$" and its variants.
var durationPattern = regexp.MustCompile(`^\^\(\[0-9\]\+\(\\\.\[0-9\]\+\)\?\([a-zµ|]+\)\)\+\$$`)

// durationMaxLength bounds a duration string, so that the API server can
// bound the cost of durationRule.
const durationMaxLength = 64

// durationRule refuses durations that match Flux's pattern but do not fit
// Go's time.Duration (about 292 years): the controllers could not read such
// an object, and a list of its kind would fail for every object. It adds up
// the components in seconds, as floating point, rather than calling CEL's
// duration(), which fails on such a value with an evaluation error instead
// of the message.
const durationRule = `([0.0] + self.findAll('[0-9]+(\\.[0-9]+)?(ns|us|µs|ms|s|m|h)').map(c,
  double(c.find('^[0-9]+(\\.[0-9]+)?')) * (c.endsWith('ns') ? 0.000000001 : c.endsWith('us') || c.endsWith('µs') ? 0.000001 :
  c.endsWith('ms') ? 0.001 : c.endsWith('h') ? 3600.0 : c.endsWith('m') ? 60.0 : 1.0))).sum() < 9223372036.854775807`

// durationMessage is what the API server answers for a duration too long.
const durationMessage = "must be a duration of at most 2562047h (about 292 years)"

// addDurationRules rewrites the CRD at path with durationRule and
// durationMaxLength on every property, in every version, whose pattern is
// durationPattern. It reports how many properties it changed.
func addDurationRules(path string) (int, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("reading the CRD: %w", err)
	}
	var crd map[string]any
	if err := yaml.Unmarshal(raw, &crd); err != nil {
		return 0, fmt.Errorf("decoding %s: %w", path, err)
	}
	n := withDurationRules(crd)
	if n == 0 {
		return 0, nil
	}
	out, err := yaml.Marshal(crd)
	if err != nil {
		return 0, fmt.Errorf("encoding %s: %w", path, err)
	}
	if err := os.WriteFile(path, append([]byte("---\n"), out...), 0o644); err != nil {
		return 0, fmt.Errorf("writing the CRD: %w", err)
	}
	return n, nil
}

// withDurationRules adds the rule under node, a decoded YAML tree, and
// returns the number of properties it changed.
func withDurationRules(node any) int {
	n := 0
	switch v := node.(type) {
	case map[string]any:
		if p, ok := v["pattern"].(string); ok && v["type"] == "string" && durationPattern.MatchString(p) {
			v["maxLength"] = durationMaxLength
			v["x-kubernetes-validations"] = []any{map[string]any{"rule": durationRule, "message": durationMessage}}
			n++
		}
		for _, child := range v {
			n += withDurationRules(child)
		}
	case []any:
		for _, child := range v {
			n += withDurationRules(child)
		}
	}
	return n
}
