package helm_test

import (
	"context"
	"strings"
	"testing"
	"time"

	helmv2 "github.com/fluxcd/helm-controller/api/v2"
	"github.com/fluxcd/pkg/apis/kustomize"
	"github.com/fluxcd/pkg/apis/meta"
	"github.com/fluxcd/pkg/runtime/conditions"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// gadgetChart ships a CRD whose objects keep any status, and one gadget.
func gadgetChart(group string) map[string]string {
	return map[string]string{
		"Chart.yaml": "apiVersion: v2\nname: gadgets\nversion: 1.0.0\n",
		"crds/gadgets.yaml": strings.ReplaceAll(`apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: gadgets.GROUP
spec:
  group: GROUP
  scope: Namespaced
  names: {kind: Gadget, plural: gadgets, singular: gadget, listKind: GadgetList}
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          properties:
            spec: {type: object, x-kubernetes-preserve-unknown-fields: true}
            status: {type: object, x-kubernetes-preserve-unknown-fields: true}
`, "GROUP", group),
		"templates/gadget.yaml": "apiVersion: " + group + "/v1\nkind: Gadget\nmetadata:\n  name: {{ .Release.Name }}\nspec:\n  size: 1\n",
	}
}

// TestHealthCheckExprsHoldTheInstallUntilCurrent installs a chart whose
// custom resource kstatus would call ready at once: with healthCheckExprs
// the install waits until the expression says Current, as in Flux. An
// expression that does not compile stalls the HelmRelease.
func TestHealthCheckExprsHoldTheInstallUntilCurrent(t *testing.T) {
	f := newFixture(t)
	group := strings.TrimPrefix(f.ns, "test-") + ".gadgets.example.io"
	f.push("1.0.0", gadgetChart(group))
	t.Cleanup(func() {
		crd := &apiextensionsv1.CustomResourceDefinition{}
		crd.Name = "gadgets." + group
		_ = env.Client.Delete(context.Background(), crd)
	})
	hr := f.release("gadget", "", func(h *helmv2.HelmRelease) {
		h.Spec.Timeout = nil
		h.Spec.HealthCheckExprs = []kustomize.CustomHealthCheck{{
			APIVersion: group + "/v1", Kind: "Gadget",
			HealthCheckExpressions: kustomize.HealthCheckExpressions{
				Current: "has(status.phase) && status.phase == 'Ready'",
				Failed:  "has(status.phase) && status.phase == 'Broken'",
			},
		}}
	})
	ctx := context.Background()
	gadget := &unstructured.Unstructured{}
	gadget.SetAPIVersion(group + "/v1")
	gadget.SetKind("Gadget")
	deadline := time.Now().Add(60 * time.Second)
	for env.Client.Get(ctx, client.ObjectKey{Namespace: f.ns, Name: "gadget"}, gadget) != nil {
		if time.Now().After(deadline) {
			t.Fatal("the chart's Gadget was never created")
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(3 * time.Second)
	got := &helmv2.HelmRelease{}
	if err := env.Client.Get(ctx, client.ObjectKeyFromObject(hr), got); err != nil {
		t.Fatal(err)
	}
	if conditions.IsReady(got) {
		t.Fatalf("the HelmRelease is Ready while its Gadget has no phase: %s", describe(got))
	}
	patch := []byte(`{"status":{"phase":"Ready"}}`)
	if err := env.Client.Patch(ctx, gadget, client.RawPatch(types.MergePatchType, patch)); err != nil {
		t.Fatal(err)
	}
	f.waitReady(hr, "1.0.0")

	bad := f.release("bad-expr", "", func(h *helmv2.HelmRelease) {
		h.Spec.HealthCheckExprs = []kustomize.CustomHealthCheck{{
			APIVersion: group + "/v1", Kind: "Gadget",
			HealthCheckExpressions: kustomize.HealthCheckExpressions{Current: "status.("},
		}}
	})
	got = f.waitReason(bad, meta.InvalidCELExpressionReason)
	if !conditions.IsStalled(got) || !strings.Contains(conditions.GetMessage(got, meta.ReadyCondition), "healthCheckExprs") {
		t.Errorf("an expression that does not compile should stall naming healthCheckExprs: %s", describe(got))
	}
}
