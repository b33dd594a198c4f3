package render

import (
	"context"
	"errors"
	"testing"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// substituted is a ConfigMap whose data shows what substitution did.
const substituted = `apiVersion: v1
kind: ConfigMap
metadata:
  name: vars
  namespace: ${NAMESPACE:=default}
data:
  plain: ${A}
  braces: "${B}"
  default: ${MISSING:=fallback}
  defaultSet: ${A:=fallback}
  unset: "x${MISSING}x"
  escaped: $${A}
  level: "${LEVEL:-low}"
`

func TestSubstitution(t *testing.T) {
	values := fakeValues{
		configMaps: map[string]map[string]string{
			"flux-system/first":  {"A": "from-first", "B": "from-first"},
			"flux-system/second": {"B": "from\nsecond"},
		},
		secrets: map[string]map[string][]byte{
			"flux-system/creds": {"A": []byte("from-secret")},
		},
	}
	cases := []struct {
		name      string
		postBuild *kustomizev1.PostBuild
		values    Values
		want      map[string]string // data fields; "namespace" is metadata.namespace
	}{{
		name:      "inline variables, defaults and escapes",
		postBuild: &kustomizev1.PostBuild{Substitute: map[string]string{"A": "a", "B": "b", "NAMESPACE": "apps"}},
		want: map[string]string{
			"namespace": "apps", "plain": "a", "braces": "b", "default": "fallback",
			"defaultSet": "a", "unset": "xx", "escaped": "${A}", "level": "low",
		},
	}, {
		name: "later sources override earlier ones, inline overrides all",
		postBuild: &kustomizev1.PostBuild{
			SubstituteFrom: []kustomizev1.SubstituteReference{
				{Kind: "ConfigMap", Name: "first"},
				{Kind: "ConfigMap", Name: "second"},
				{Kind: "Secret", Name: "creds"},
			},
			Substitute: map[string]string{"NAMESPACE": "inline"},
		},
		values: values,
		want:   map[string]string{"namespace": "inline", "plain": "from-secret", "braces": "fromsecond"},
	}, {
		name: "inline overrides substituteFrom",
		postBuild: &kustomizev1.PostBuild{
			SubstituteFrom: []kustomizev1.SubstituteReference{{Kind: "ConfigMap", Name: "first"}},
			Substitute:     map[string]string{"A": "inline"},
		},
		values: values,
		want:   map[string]string{"plain": "inline", "braces": "from-first"},
	}, {
		name: "a missing optional source is skipped",
		postBuild: &kustomizev1.PostBuild{
			SubstituteFrom: []kustomizev1.SubstituteReference{
				{Kind: "ConfigMap", Name: "absent", Optional: true},
				{Kind: "Secret", Name: "absent", Optional: true},
				{Kind: "ConfigMap", Name: "first"},
			},
		},
		values: values,
		want:   map[string]string{"plain": "from-first", "namespace": "default"},
	}, {
		name:      "no variables: nothing is substituted, defaults included",
		postBuild: &kustomizev1.PostBuild{SubstituteFrom: []kustomizev1.SubstituteReference{{Kind: "ConfigMap", Name: "absent", Optional: true}}},
		values:    values,
		want:      map[string]string{"namespace": "${NAMESPACE:=default}", "default": "${MISSING:=fallback}", "escaped": "$${A}"},
	}, {
		name:      "strategy Always substitutes defaults without variables",
		postBuild: &kustomizev1.PostBuild{SubstituteStrategy: kustomizev1.SubstituteStrategyAlways},
		want:      map[string]string{"namespace": "default", "default": "fallback", "plain": "", "escaped": "${A}"},
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			root := writeTree(t, map[string]string{"cm.yaml": substituted})
			objects, err := Build(context.Background(), Options{
				Root: root, Namespace: "flux-system", Values: tc.values,
				Spec: kustomizev1.KustomizationSpec{PostBuild: tc.postBuild},
			})
			if err != nil {
				t.Fatal(err)
			}
			cm := find(t, objects, "ConfigMap", "vars")
			for field, want := range tc.want {
				got := str(cm, "data", field)
				if field == "namespace" {
					got = cm.GetNamespace()
				}
				if got != want {
					t.Errorf("%s = %q, want %q", field, got, want)
				}
			}
		})
	}
}

func TestSubstitutionErrors(t *testing.T) {
	cases := []struct {
		name      string
		postBuild *kustomizev1.PostBuild
		values    Values
		want      []string
	}{{
		name:      "a missing source that is not optional",
		postBuild: &kustomizev1.PostBuild{SubstituteFrom: []kustomizev1.SubstituteReference{{Kind: "ConfigMap", Name: "cluster-settings"}}},
		values:    fakeValues{},
		want:      []string{"ConfigMap 'cluster-settings' not found in namespace 'flux-system'"},
	}, {
		name:      "a missing Secret",
		postBuild: &kustomizev1.PostBuild{SubstituteFrom: []kustomizev1.SubstituteReference{{Kind: "Secret", Name: "cluster-secrets"}}},
		values:    fakeValues{},
		want:      []string{"Secret 'cluster-secrets' not found"},
	}, {
		name:      "a failing read",
		postBuild: &kustomizev1.PostBuild{SubstituteFrom: []kustomizev1.SubstituteReference{{Kind: "ConfigMap", Name: "s", Optional: true}}},
		values:    fakeValues{err: errors.New("connection refused")},
		want:      []string{"reading ConfigMap 's'", "connection refused"},
	}, {
		name:      "no values to read from",
		postBuild: &kustomizev1.PostBuild{SubstituteFrom: []kustomizev1.SubstituteReference{{Kind: "ConfigMap", Name: "s"}}},
		want:      []string{"needs ConfigMap 's'", "no cluster values"},
	}, {
		name:      "an invalid variable name",
		postBuild: &kustomizev1.PostBuild{Substitute: map[string]string{"my-var": "x"}},
		want:      []string{"'my-var' is invalid"},
	}, {
		name:      "a malformed expression",
		postBuild: &kustomizev1.PostBuild{Substitute: map[string]string{"A": "x"}},
		want:      []string{"ConfigMap broken", "missing closing brace"},
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			root := writeTree(t, map[string]string{
				"kustomization.yaml": "resources: [cm.yaml]\n",
				"cm.yaml":            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: broken\ndata:\n  a: ${A\n",
			})
			_, err := Build(context.Background(), Options{
				Root: root, Namespace: "flux-system", Values: tc.values,
				Spec: kustomizev1.KustomizationSpec{PostBuild: tc.postBuild},
			})
			wantError(t, err, StepSubstitute, tc.want...)
		})
	}
}

func TestSubstitutionOptOut(t *testing.T) {
	root := writeTree(t, map[string]string{
		"annotated.yaml": `apiVersion: v1
kind: ConfigMap
metadata:
  name: annotated
  annotations:
    kustomize.toolkit.fluxcd.io/substitute: disabled
data:
  a: ${A}
`,
		"labelled.yaml": `apiVersion: v1
kind: ConfigMap
metadata:
  name: labelled
  labels:
    kustomize.toolkit.fluxcd.io/substitute: disabled
data:
  a: ${A}
`,
		"other.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: other\ndata:\n  a: ${A}\n",
	})
	objects, err := Build(context.Background(), Options{Root: root, Spec: kustomizev1.KustomizationSpec{
		PostBuild: &kustomizev1.PostBuild{Substitute: map[string]string{"A": "set"}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{"annotated": "${A}", "labelled": "${A}", "other": "set"} {
		if got := str(find(t, objects, "ConfigMap", name), "data", "a"); got != want {
			t.Errorf("%s: a = %q, want %q", name, got, want)
		}
	}
}

func TestSubstitutionKeepsTypes(t *testing.T) {
	root := writeTree(t, map[string]string{"deploy.yaml": `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: ${REPLICAS}
  template:
    spec:
      containers:
      - name: web
        image: nginx
`})
	objects, err := Build(context.Background(), Options{Root: root, Spec: kustomizev1.KustomizationSpec{
		PostBuild: &kustomizev1.PostBuild{Substitute: map[string]string{"REPLICAS": "3"}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	replicas, ok, err := unstructured.NestedInt64(objects[0].Object, "spec", "replicas")
	if err != nil || !ok || replicas != 3 {
		t.Errorf("replicas %d (%v, %v), want the number 3", replicas, ok, err)
	}
}

func TestSubstitutionFromObjects(t *testing.T) {
	// weir build resolves substituteFrom from the repository's manifests.
	settings := Objects{}
	for _, doc := range []string{
		`{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cluster-settings", "namespace": "flux-system"}, "data": {"A": "from-configmap"}, "binaryData": {"B": "YmluYXJ5"}}`,
		`{"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "cluster-secrets"}, "data": {"NAMESPACE": "c2VjcmV0cw=="}, "stringData": {"MISSING": "string-data"}}`,
		`{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "elsewhere", "namespace": "other"}, "data": {"A": "wrong"}}`,
	} {
		u := &unstructured.Unstructured{}
		if err := u.UnmarshalJSON([]byte(doc)); err != nil {
			t.Fatal(err)
		}
		settings = append(settings, u)
	}
	objects, err := Build(context.Background(), Options{
		Root: writeTree(t, map[string]string{"cm.yaml": substituted}), Namespace: "flux-system", Values: settings,
		Spec: kustomizev1.KustomizationSpec{PostBuild: &kustomizev1.PostBuild{SubstituteFrom: []kustomizev1.SubstituteReference{
			{Kind: "ConfigMap", Name: "cluster-settings"},
			{Kind: "Secret", Name: "cluster-secrets"},
			{Kind: "ConfigMap", Name: "elsewhere", Optional: true},
		}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	cm := find(t, objects, "ConfigMap", "vars")
	for field, want := range map[string]string{"plain": "from-configmap", "braces": "binary", "default": "string-data"} {
		if got := str(cm, "data", field); got != want {
			t.Errorf("%s = %q, want %q", field, got, want)
		}
	}
	if cm.GetNamespace() != "secrets" {
		t.Errorf("namespace %q", cm.GetNamespace())
	}
}
