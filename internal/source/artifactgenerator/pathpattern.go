package artifactgenerator

import (
	"fmt"
	"io/fs"
	"path/filepath"
	"regexp"
	"strings"

	swapi "github.com/fluxcd/source-watcher/api/v2/v1beta1"
	"k8s.io/apimachinery/pkg/util/validation"
)

// captureName is what a "{name}" capture of spec.pathPattern may be called.
var captureName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// expandOutputs returns the outputs to generate: spec.artifacts as they
// are, or, with spec.pathPattern, spec.artifacts rendered once for every
// folder of the source that the pattern matches. Names and labels take
// the captured values lowercased; copy paths take them as they are.
func expandOutputs(obj *swapi.ArtifactGenerator, sources map[string]string) ([]output, error) {
	if obj.Spec.PathPattern == "" {
		out := make([]output, 0, len(obj.Spec.OutputArtifacts))
		for _, a := range obj.Spec.OutputArtifacts {
			out = append(out, output{OutputArtifact: a})
		}
		return out, nil
	}
	pp := obj.Spec.PathPattern
	alias, pattern, ok := strings.Cut(strings.TrimPrefix(pp, "@"), "/")
	if !ok || !strings.HasPrefix(pp, "@") {
		return nil, fmt.Errorf("invalid pathPattern format: %s", pp)
	}
	dir, ok := sources[alias]
	if !ok {
		return nil, fmt.Errorf("pathPattern %q: source alias %s not found in local sources", pp, alias)
	}
	matcher, err := patternRegexp(pp, pattern)
	if err != nil {
		return nil, err
	}

	var out []output
	seen := map[string]string{}
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() || p == dir {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		m := matcher.FindStringSubmatch(rel)
		if m == nil {
			return nil
		}
		raw, lower := map[string]string{}, map[string]string{}
		for i, name := range matcher.SubexpNames() {
			if i == 0 || name == "" {
				continue
			}
			raw[name], lower[name] = m[i], strings.ToLower(m[i])
			if errs := validation.IsValidLabelValue(lower[name]); len(errs) > 0 {
				return fmt.Errorf("pathPattern %q: captured value %q for variable %q is not a valid Kubernetes label value: %s", pp, lower[name], name, strings.Join(errs, "; "))
			}
		}
		for _, a := range obj.Spec.OutputArtifacts {
			o, err := renderOutput(a, lower, raw)
			if err != nil {
				return fmt.Errorf("pathPattern %q: failed to render artifact %s for match %s: %w", pp, a.Name, rel, err)
			}
			if errs := validation.IsDNS1123Subdomain(o.Name); len(errs) > 0 {
				return fmt.Errorf("pathPattern %q: rendered artifact name %q is not a valid Kubernetes object name: %s", pp, o.Name, strings.Join(errs, "; "))
			}
			if prev, dup := seen[o.Name]; dup {
				return fmt.Errorf("pathPattern %q: directories %q and %q both resolve to artifact name %q", pp, prev, rel, o.Name)
			}
			seen[o.Name] = rel
			out = append(out, o)
		}
		return nil
	})
	return out, err
}

// patternRegexp turns "apps/{app}/envs/{env}" into a regular expression
// with one named group per capture, each matching one path element.
func patternRegexp(pp, pattern string) (*regexp.Regexp, error) {
	var b strings.Builder
	b.WriteString("^")
	seen := map[string]bool{}
	for rest := pattern; rest != ""; {
		i := strings.IndexAny(rest, "{}")
		if i < 0 {
			b.WriteString(regexp.QuoteMeta(rest))
			break
		}
		if rest[i] == '}' {
			return nil, fmt.Errorf("pathPattern %q: a capture is missing its opening brace", pp)
		}
		b.WriteString(regexp.QuoteMeta(rest[:i]))
		end := strings.IndexByte(rest[i:], '}')
		if end < 0 {
			return nil, fmt.Errorf("pathPattern %q: a capture is missing its closing brace", pp)
		}
		name := rest[i+1 : i+end]
		if !captureName.MatchString(name) {
			return nil, fmt.Errorf("pathPattern %q: capture variable %q must be a valid capture name matching [A-Za-z_][A-Za-z0-9_]*", pp, name)
		}
		if seen[name] {
			return nil, fmt.Errorf("pathPattern %q: duplicate capture variable %q", pp, name)
		}
		seen[name] = true
		if errs := validation.IsQualifiedName(name); len(errs) > 0 {
			return nil, fmt.Errorf("pathPattern %q: capture variable %q is not a valid Kubernetes label key: %s", pp, name, strings.Join(errs, "; "))
		}
		b.WriteString("(?P<" + name + ">[^/]+)")
		rest = rest[i+end+1:]
	}
	b.WriteString("$")
	return regexp.Compile(b.String())
}

// renderOutput fills the captures into an artifact's name (lowercased
// values, which also become its labels) and copy paths (values as found).
func renderOutput(a swapi.OutputArtifact, lower, raw map[string]string) (output, error) {
	name, err := fill(a.Name, lower)
	if err != nil {
		return output{}, err
	}
	o := output{OutputArtifact: a, labels: lower}
	o.Name = name
	o.Copy = make([]swapi.CopyOperation, len(a.Copy))
	for i, c := range a.Copy {
		from, err := fill(c.From, raw)
		if err != nil {
			return output{}, err
		}
		to, err := fill(c.To, raw)
		if err != nil {
			return output{}, err
		}
		o.Copy[i] = swapi.CopyOperation{From: from, To: to, Exclude: c.Exclude, Strategy: c.Strategy}
	}
	return o, nil
}

// fill replaces each "{name}" of tmpl with its value.
func fill(tmpl string, values map[string]string) (string, error) {
	var b strings.Builder
	for rest := tmpl; rest != ""; {
		i := strings.IndexAny(rest, "{}")
		if i < 0 {
			b.WriteString(rest)
			break
		}
		if rest[i] == '}' {
			return "", fmt.Errorf("invalid template %q: a capture is missing its opening brace", tmpl)
		}
		b.WriteString(rest[:i])
		end := strings.IndexByte(rest[i:], '}')
		if end < 0 {
			return "", fmt.Errorf("invalid template %q: a capture is missing its closing brace", tmpl)
		}
		name := rest[i+1 : i+end]
		v, ok := values[name]
		if !ok {
			return "", fmt.Errorf("invalid template %q: capture variable %q is not defined by pathPattern", tmpl, name)
		}
		b.WriteString(v)
		rest = rest[i+end+1:]
	}
	return b.String(), nil
}
