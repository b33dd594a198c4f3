package crd_test

import (
	"context"
	"regexp"
	"testing"

	"k8s.io/apiextensions-apiserver/pkg/apis/apiextensions"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/cel"
	"k8s.io/apimachinery/pkg/util/validation/field"
	celconfig "k8s.io/apiserver/pkg/apis/cel"

	"github.com/weirhq/weir/config/crd"
)

// fluxDuration matches the patterns of Flux's duration fields.
var fluxDuration = regexp.MustCompile(`^\^\(\[0-9\]\+\(\\\.\[0-9\]\+\)\?\([a-zµ|]+\)\)\+\$$`)

// durationFields returns every string property under s whose pattern is a
// Flux duration, by path.
func durationFields(path string, s *schema.Structural, out map[string]*schema.Structural) {
	if s == nil {
		return
	}
	if s.Type == "string" && s.ValueValidation != nil && fluxDuration.MatchString(s.ValueValidation.Pattern) {
		out[path] = s
	}
	for name, p := range s.Properties {
		durationFields(path+"."+name, &p, out)
	}
	if s.Items != nil {
		durationFields(path+"[]", s.Items, out)
	}
	if s.AdditionalProperties != nil {
		durationFields(path+"{}", s.AdditionalProperties.Structural, out)
	}
}

// Every duration field of every CRD and version refuses, with its message,
// the durations Go's time.Duration cannot hold, and accepts the others. The
// rules run in the API server's own CEL environment.
func TestEveryDurationFieldRefusesDurationsGoCannotHold(t *testing.T) {
	crds, err := crd.All()
	if err != nil {
		t.Fatal(err)
	}
	const message = "must be a duration of at most 2562047h (about 292 years)"
	accepted := []string{"1m", "1h30m", "1.5h", "90s", "500ms", "2562047h", "2562047h47m16s", "2562047h47m16.854s"}
	refused := []string{"2562048h", "999999999h", "2562047h60m", "9999999999999999999s", "99999999999m", "153722868m"}
	total := 0
	for _, c := range crds {
		for _, v := range c.Spec.Versions {
			var internal apiextensions.JSONSchemaProps
			if err := apiextensionsv1.Convert_v1_JSONSchemaProps_To_apiextensions_JSONSchemaProps(v.Schema.OpenAPIV3Schema, &internal, nil); err != nil {
				t.Fatal(err)
			}
			root, err := schema.NewStructural(&internal)
			if err != nil {
				t.Fatal(err)
			}
			fields := map[string]*schema.Structural{}
			durationFields(c.Spec.Names.Kind+"/"+v.Name, root, fields)
			for path, s := range fields {
				total++
				if len(s.XValidations) != 1 || s.XValidations[0].Message != message {
					t.Errorf("%s: validations %+v, want the duration rule", path, s.XValidations)
					continue
				}
				validator := cel.NewValidator(s, false, celconfig.PerCallLimit)
				// The rule alone; the pattern (which may not allow "h") is
				// checked by the API server's OpenAPI validation.
				for _, d := range accepted {
					errs, _ := validator.Validate(context.Background(), field.NewPath(path), s, d, nil, celconfig.RuntimeCELCostBudget)
					if len(errs) != 0 {
						t.Errorf("%s: %s refused: %v", path, d, errs)
					}
				}
				for _, d := range refused {
					errs, _ := validator.Validate(context.Background(), field.NewPath(path), s, d, nil, celconfig.RuntimeCELCostBudget)
					if len(errs) != 1 || errs[0].Detail != message {
						t.Errorf("%s: %s gave %v, want %q", path, d, errs, message)
					}
				}
			}
		}
	}
	// Kustomization 3, HelmRelease 10, GitRepository 2, OCIRepository and
	// HelmRepository 2 per version, HelmChart 1 per version, ...
	if total < 30 {
		t.Errorf("found %d duration fields, want every one of Flux's (at least 30)", total)
	}
	t.Logf("%d duration fields checked", total)
}
