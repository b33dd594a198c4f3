package render

import (
	"context"
	"slices"
	"strings"
	"testing"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// offlineValues serves one ConfigMap, and says the Secret "sealed" is
// unavailable; everything else is not found.
type offlineValues struct{ data map[string]string }

func (v offlineValues) ConfigMap(_ context.Context, namespace, name string) (map[string]string, error) {
	if name == "settings" {
		return v.data, nil
	}
	return nil, apierrors.NewNotFound(schema.GroupResource{Resource: "configmaps"}, name)
}

func (v offlineValues) Secret(_ context.Context, namespace, name string) (map[string][]byte, error) {
	if name == "sealed" {
		return nil, &UnavailableError{Kind: "Secret", Namespace: namespace, Name: name, Reason: "it is SOPS-encrypted"}
	}
	return nil, apierrors.NewNotFound(schema.GroupResource{Resource: "secrets"}, name)
}

const offlineDoc = `apiVersion: v1
kind: ConfigMap
metadata:
  name: offline
  namespace: apps
data:
  known: ${KNOWN}
  host: draw.${SECRET_DOMAIN}
  withDefault: ${LEVEL:=info}
  escaped: $${ESCAPED}
  inline: ${INLINE}
`

func TestOfflineRenderLeavesUnavailableVariablesAsWritten(t *testing.T) {
	root := writeTree(t, map[string]string{"app/cm.yaml": offlineDoc})
	spec := kustomizev1.KustomizationSpec{Path: "./app", PostBuild: &kustomizev1.PostBuild{
		Substitute: map[string]string{"INLINE": "inline"},
		SubstituteFrom: []kustomizev1.SubstituteReference{
			{Kind: "ConfigMap", Name: "settings"},
			{Kind: "Secret", Name: "sealed"},
			{Kind: "Secret", Name: "external"},
			{Kind: "Secret", Name: "maybe", Optional: true},
		},
	}}
	values := offlineValues{data: map[string]string{"KNOWN": "known", "SECRET_DOMAIN": "ENC[AES256_GCM,data:abc=,iv:x,tag:y,type:str]"}}
	report := &Report{}
	out, err := Build(context.Background(), Options{Root: root, Namespace: "flux-system", Spec: spec, Values: values, KeepUnavailable: true, Report: report})
	if err != nil {
		t.Fatal(err)
	}
	cm := find(t, out, "ConfigMap", "offline")
	for field, want := range map[string]string{
		"known": "known", "host": "draw.${SECRET_DOMAIN}", "withDefault": "${LEVEL:=info}", "escaped": "${ESCAPED}", "inline": "inline",
	} {
		if got := str(cm, "data", field); got != want {
			t.Errorf("data.%s = %q, want %q", field, got, want)
		}
	}
	if !slices.Equal(report.Unresolved, []string{"LEVEL", "SECRET_DOMAIN"}) {
		t.Errorf("unresolved: got %v, want LEVEL, SECRET_DOMAIN", report.Unresolved)
	}
	var names []string
	for _, u := range report.Unavailable {
		names = append(names, u.Kind+"/"+u.Name)
	}
	if !slices.Equal(names, []string{"ConfigMap/settings", "Secret/sealed", "Secret/external"}) {
		t.Errorf("unavailable: got %v", names)
	}
	if !strings.Contains(report.Unavailable[0].Reason, "key 'SECRET_DOMAIN' holds SOPS ciphertext") {
		t.Errorf("the ciphertext is not reported: %q", report.Unavailable[0].Reason)
	}
}

// In the cluster (no KeepUnavailable), a ciphertext value fails the render
// instead of being substituted.
func TestCiphertextIsNeverSubstituted(t *testing.T) {
	root := writeTree(t, map[string]string{"app/cm.yaml": offlineDoc})
	spec := kustomizev1.KustomizationSpec{Path: "./app", PostBuild: &kustomizev1.PostBuild{
		SubstituteFrom: []kustomizev1.SubstituteReference{{Kind: "ConfigMap", Name: "settings"}},
	}}
	values := offlineValues{data: map[string]string{"SECRET_DOMAIN": "ENC[AES256_GCM,data:abc=,iv:x,tag:y,type:str]"}}
	_, err := Build(context.Background(), Options{Root: root, Namespace: "flux-system", Spec: spec, Values: values})
	wantError(t, err, StepSubstitute, "ConfigMap 'settings'", "SOPS ciphertext")
	if strings.Contains(err.Error(), "abc=") {
		t.Errorf("the error quotes the ciphertext: %v", err)
	}
}
