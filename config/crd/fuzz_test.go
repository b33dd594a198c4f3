package crd_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"k8s.io/apiextensions-apiserver/pkg/apis/apiextensions"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	structuralschema "k8s.io/apiextensions-apiserver/pkg/apiserver/schema"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/cel"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
	celconfig "k8s.io/apiserver/pkg/apis/cel"

	"github.com/weirhq/weir/config/crd"
)

// durationField is a field of a CRD that holds a Go duration
// (metav1.Duration), with the validators the API server runs on it: its
// OpenAPI schema (the pattern) and its CEL rules.
type durationField struct {
	path   string // e.g. "Kustomization v1 .spec.interval"
	schema validation.SchemaCreateValidator
	cel    *cel.Validator
	ss     *structuralschema.Structural
}

// accepts tells whether the API server would store s in the field, and
// why not.
func (d durationField) accepts(s string) (bool, string) {
	if res := d.schema.Validate(s); !res.IsValid() {
		return false, fmt.Sprint(res.Errors)
	}
	if d.cel != nil {
		errs, _ := d.cel.Validate(context.Background(), field.NewPath("value"), d.ss, s, nil, celconfig.RuntimeCELCostBudget)
		if len(errs) > 0 {
			return false, errs.ToAggregate().Error()
		}
	}
	return true, ""
}

// validatedDurationFields finds every duration field of the embedded CRDs: the
// string fields whose pattern is the one controller-gen writes for
// metav1.Duration, or whose format is "duration".
func validatedDurationFields(t testing.TB) []durationField {
	t.Helper()
	crds, err := crd.All()
	if err != nil {
		t.Fatal(err)
	}
	var fields []durationField
	for _, c := range crds {
		for _, v := range c.Spec.Versions {
			if !v.Served || v.Schema == nil || v.Schema.OpenAPIV3Schema == nil {
				continue
			}
			walkSchema(c.Spec.Names.Kind+" "+v.Name+" ", v.Schema.OpenAPIV3Schema, func(path string, p *apiextensionsv1.JSONSchemaProps) {
				if p.Type != "string" || !(strings.Contains(p.Pattern, "(ms|s|m|h)") || p.Format == "duration") {
					return
				}
				fields = append(fields, newDurationField(t, path, p))
			})
		}
	}
	if len(fields) == 0 {
		t.Fatal("no duration field found in the CRDs")
	}
	return fields
}

func newDurationField(t testing.TB, path string, p *apiextensionsv1.JSONSchemaProps) durationField {
	t.Helper()
	var internal apiextensions.JSONSchemaProps
	if err := apiextensionsv1.Convert_v1_JSONSchemaProps_To_apiextensions_JSONSchemaProps(p, &internal, nil); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	sv, _, err := validation.NewSchemaValidator(&internal)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	d := durationField{path: path, schema: sv}
	if len(p.XValidations) > 0 {
		ss, err := structuralschema.NewStructural(&internal)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		d.ss, d.cel = ss, cel.NewValidator(ss, false, celconfig.PerCallLimit)
	}
	return d
}

// walkSchema calls fn on every property under p, with its path.
func walkSchema(path string, p *apiextensionsv1.JSONSchemaProps, fn func(string, *apiextensionsv1.JSONSchemaProps)) {
	for name, sub := range p.Properties {
		fn(path+"."+name, &sub)
		walkSchema(path+"."+name, &sub, fn)
	}
	if p.Items != nil && p.Items.Schema != nil {
		fn(path+"[]", p.Items.Schema)
		walkSchema(path+"[]", p.Items.Schema, fn)
	}
	if p.AdditionalProperties != nil && p.AdditionalProperties.Schema != nil {
		walkSchema(path+"{}", p.AdditionalProperties.Schema, fn)
	}
}

// FuzzDuration checks that every duration a CRD accepts can be read by
// weir's controllers: a string that the API server stores in an interval
// or timeout field but that overflows Go's time.Duration (about 292
// years) would make every list of that kind fail to decode, blinding the
// controller to all its objects. Whatever the input, validation must not
// panic, and a string it accepts must decode. The seeds run under plain
// `go test`; `make fuzz` runs it for longer.
func FuzzDuration(f *testing.F) {
	fields := validatedDurationFields(f)
	for _, s := range []string{
		"1m", "10m0s", "1.5h", "500ms", "1h30m", "0s", "",
		"2562047h", // the largest whole hour time.Duration holds
		"2562048h", // one hour over
		"99999999999h",
		"9223372036854775807ms",
		"106751d", "1e3s", "-1m", "1h1h1h1h1h1h1h1h1h1h",
		"3000000000000000000000000000000s",
		"0.99999999999999999999h",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		js, err := json.Marshal(s)
		if err != nil {
			return
		}
		var d metav1.Duration
		decodeErr := json.Unmarshal(js, &d)
		for _, field := range fields {
			if ok, _ := field.accepts(s); ok && decodeErr != nil {
				t.Errorf("%s accepts %q, which weir's controllers cannot decode: %v", field.path, s, decodeErr)
			}
		}
	})
}
