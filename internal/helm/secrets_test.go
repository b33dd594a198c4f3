package helm_test

import (
	"context"
	"strings"
	"testing"
	"time"

	helmv2 "github.com/fluxcd/helm-controller/api/v2"
	"github.com/fluxcd/pkg/runtime/conditions"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestSecretValuesAreMaskedWhenTheAPIServerRejectsThem feeds a value from
// a Secret (nested in the values.yaml it holds) to a field the API server
// rejects it in, the container port: the install fails, and the value,
// which the API server's message quotes, is in none of the status, the
// events and the controller's log, which show [redacted] instead.
func TestSecretValuesAreMaskedWhenTheAPIServerRejectsThem(t *testing.T) {
	const secret = "hunter2-port-secret"
	f := newFixture(t, "1.0.0")
	ctx := context.Background()
	if err := env.Client.Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "app-values"},
		Data:       map[string][]byte{"values.yaml": []byte("greeting: hi\ncontainerPort: " + secret + "\n")},
	}); err != nil {
		t.Fatal(err)
	}
	hr := f.release("masked", "", func(h *helmv2.HelmRelease) {
		h.Spec.ValuesFrom = []helmv2.ValuesReference{{Kind: "Secret", Name: "app-values"}}
		// Retries keep the failure returned to controller-runtime, which
		// logs it.
		h.Spec.Install = &helmv2.Install{Remediation: &helmv2.InstallRemediation{Retries: 3}}
	})
	got := f.wait(hr, 90*time.Second, "to fail to install", func(h *helmv2.HelmRelease) bool {
		return conditions.GetReason(h, helmv2.ReleasedCondition) == helmv2.InstallFailedReason
	})
	msg := conditions.GetMessage(got, helmv2.ReleasedCondition)
	if !strings.Contains(msg, "containerPort") {
		t.Errorf("the failure does not say what the API server rejected: %q", msg)
	}
	env.CheckMasked(t, f.ns, "masked", secret, got.Status)
}
