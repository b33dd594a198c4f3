package render

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"github.com/fluxcd/pkg/envsubst"
	"sigs.k8s.io/kustomize/api/resource"
	"sigs.k8s.io/yaml"
)

// substituteKey is the label or annotation that, set to "disabled", keeps
// an object out of substitution.
const substituteKey = "kustomize.toolkit.fluxcd.io/substitute"

// varName is what a variable name must look like, as in Flux.
var varName = regexp.MustCompile(`^[_[:alpha:]][_[:alpha:][:digit:]]*$`)

// variables are the postBuild variables of a render.
type variables struct {
	values map[string]string
	// keepUnset leaves references to variables that values does not set
	// as written: a source that could set them was unavailable offline.
	keepUnset bool
}

// loadVariables gathers spec.postBuild's variables as Flux does: the
// substituteFrom sources in order, each overriding the ones before, then
// the inline substitute map over them all; newlines are dropped from the
// values. It returns nil when nothing is to be substituted: no postBuild,
// or no variable at all with the default WithVariables strategy (so that
// "${var:=default}" is then left as written, as in Flux).
//
// A value that is SOPS ciphertext is never taken: it fails the render,
// or, with Options.KeepUnavailable, leaves its variable as written.
func loadVariables(ctx context.Context, opts Options) (*variables, error) {
	pb := opts.Spec.PostBuild
	if pb == nil {
		return nil, nil
	}
	vars := &variables{values: map[string]string{}}
	for _, ref := range pb.SubstituteFrom {
		values, err := readSubstituteFrom(ctx, opts, ref)
		var unavailable *UnavailableError
		if errors.As(err, &unavailable) {
			if err := opts.unavailable(ctx, unavailable); err != nil {
				return nil, err
			}
			vars.keepUnset = true
			continue
		}
		if err != nil {
			return nil, err
		}
		keys := make([]string, 0, len(values))
		for k := range values {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			v := values[k]
			if IsCiphertext(v) {
				err := &UnavailableError{Kind: ref.Kind, Namespace: opts.Namespace, Name: ref.Name,
					Reason: fmt.Sprintf("its key '%s' holds SOPS ciphertext (ENC[...]), which is never substituted", k)}
				if err := opts.unavailable(ctx, err); err != nil {
					return nil, err
				}
				vars.keepUnset = true
				delete(vars.values, k)
				continue
			}
			vars.values[k] = strings.ReplaceAll(v, "\n", "")
		}
	}
	for k, v := range pb.Substitute {
		vars.values[k] = strings.ReplaceAll(v, "\n", "")
	}
	if len(vars.values) == 0 && !vars.keepUnset && pb.SubstituteStrategy != kustomizev1.SubstituteStrategyAlways {
		return nil, nil
	}
	names := make([]string, 0, len(vars.values))
	for k := range vars.values {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, k := range names {
		if !varName.MatchString(k) {
			return nil, fmt.Errorf("postBuild variable name '%s' is invalid: it must match '%s'", k, varName)
		}
	}
	return vars, nil
}

// readSubstituteFrom reads one substituteFrom source; a missing optional
// source gives no variables. Offline (KeepUnavailable), a missing source
// that is not optional exists only in the cluster: it is unavailable.
func readSubstituteFrom(ctx context.Context, opts Options, ref kustomizev1.SubstituteReference) (map[string]string, error) {
	if ref.Kind != "ConfigMap" && ref.Kind != "Secret" {
		return nil, fmt.Errorf("postBuild.substituteFrom: kind '%s' of '%s' is not ConfigMap or Secret", ref.Kind, ref.Name)
	}
	if opts.Values == nil {
		return nil, fmt.Errorf("postBuild.substituteFrom needs %s '%s': %w", ref.Kind, ref.Name, errNoValues)
	}
	var values map[string]string
	var err error
	if ref.Kind == "ConfigMap" {
		values, err = opts.Values.ConfigMap(ctx, opts.Namespace, ref.Name)
	} else {
		var data map[string][]byte
		if data, err = opts.Values.Secret(ctx, opts.Namespace, ref.Name); err == nil {
			values = make(map[string]string, len(data))
			for k, v := range data {
				values[k] = string(v)
				// As written, and as substituted (newlines dropped).
				opts.Secrets.Add(string(v), strings.ReplaceAll(string(v), "\n", ""))
			}
		}
	}
	switch {
	case err == nil:
		return values, nil
	case IsUnavailable(err):
		return nil, err
	case IsNotFound(err) && ref.Optional:
		return nil, nil
	case IsNotFound(err) && opts.KeepUnavailable:
		return nil, &UnavailableError{Kind: ref.Kind, Namespace: opts.Namespace, Name: ref.Name,
			Reason: "not in the repository (it may be made in the cluster, by bootstrap or another controller)"}
	case IsNotFound(err):
		return nil, fmt.Errorf("postBuild.substituteFrom: %s '%s' not found in namespace '%s' (set optional: true to allow this)", ref.Kind, ref.Name, opts.Namespace)
	default:
		return nil, fmt.Errorf("postBuild.substituteFrom: reading %s '%s': %w", ref.Kind, ref.Name, err)
	}
}

// substitute replaces ${var} (with the ${var:=default} forms, and $${var}
// escaping) in the object's YAML, unless the object opts out with the
// label or annotation kustomize.toolkit.fluxcd.io/substitute: disabled.
// Variables not set expand to their default, else to "" (Flux's default,
// non-strict mode).
//
// With vars.keepUnset, references to variables not set are left as
// written instead, and their names are added to report.Unresolved.
func substitute(res *resource.Resource, vars *variables, report *Report) error {
	if res.GetLabels()[substituteKey] == kustomizev1.DisabledValue ||
		res.GetAnnotations()[substituteKey] == kustomizev1.DisabledValue {
		return nil
	}
	data, err := res.AsYAML()
	if err != nil {
		return err
	}
	text := string(data)
	if vars.keepUnset {
		var unset []string
		text, unset = keepUnset(text, vars.values)
		if report != nil {
			for _, name := range unset {
				if i, found := slices.BinarySearch(report.Unresolved, name); !found {
					report.Unresolved = slices.Insert(report.Unresolved, i, name)
				}
			}
		}
	}
	out, err := envsubst.Eval(text, func(name string) (string, bool) {
		return vars.values[name], true
	})
	if err != nil {
		return err
	}
	js, err := yaml.YAMLToJSON([]byte(out))
	if err != nil {
		return fmt.Errorf("the result is not valid YAML: %w", err)
	}
	return res.UnmarshalJSON(js)
}
