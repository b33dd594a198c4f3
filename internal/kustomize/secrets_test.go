package kustomize_test

import (
	"context"
	"strings"
	"testing"
	"time"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"github.com/fluxcd/pkg/apis/meta"
	"github.com/fluxcd/pkg/runtime/conditions"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestSubstitutedSecretValuesAreMaskedWhenTheAPIServerRejectsThem
// substitutes a value from a Secret into a label, where the API server
// rejects it (`Invalid value: "..."`): the Kustomization fails, and the
// value is in none of its status, the events and the controller's log,
// which show [redacted] instead.
func TestSubstitutedSecretValuesAreMaskedWhenTheAPIServerRejectsThem(t *testing.T) {
	const secret = "hunter2 label secret"
	f := newFixture(t, map[string]string{
		"app/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: labelled\n  labels:\n    team: ${team}\ndata:\n  a: b\n",
	})
	if err := env.Client.Create(context.Background(), &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "vars"},
		Data:       map[string][]byte{"team": []byte(secret)},
	}); err != nil {
		t.Fatal(err)
	}
	ks := f.kustomization("labels", "./app", func(k *kustomizev1.Kustomization) {
		k.Spec.PostBuild = &kustomizev1.PostBuild{SubstituteFrom: []kustomizev1.SubstituteReference{{Kind: "Secret", Name: "vars"}}}
	})
	got := f.wait(ks, 90*time.Second, "to fail to apply", func(k *kustomizev1.Kustomization) bool {
		return conditions.IsFalse(k, meta.ReadyCondition) && conditions.GetReason(k, meta.ReadyCondition) == meta.ReconciliationFailedReason
	})
	if msg := conditions.GetMessage(got, meta.ReadyCondition); !strings.Contains(msg, "labelled") || !strings.Contains(msg, "Invalid value") {
		t.Errorf("the failure does not say what the API server rejected: %q", msg)
	}
	env.CheckMasked(t, f.ns, "labels", secret, got.Status)
}
