package kustomize_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"github.com/fluxcd/pkg/apis/meta"
	"github.com/fluxcd/pkg/runtime/conditions"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

func TestAppliesThePathAndRecordsTheInventory(t *testing.T) {
	f := newFixture(t, map[string]string{
		"apps/web/deploy.yaml": fmt.Sprintf(deployment, "web"),
		"apps/web/config.yaml": fmt.Sprintf(configMap, "web-config", "v1"),
		"other/ignored.yaml":   fmt.Sprintf(configMap, "elsewhere", "x"),
	})
	ks := f.kustomization("web", "./apps/web", func(k *kustomizev1.Kustomization) { k.Spec.Wait = true })
	got := f.waitApplied(ks, f.revision())

	if msg := conditions.GetMessage(got, meta.ReadyCondition); msg != "Applied revision: "+got.Status.LastAppliedRevision {
		t.Errorf("Ready message %q", msg)
	}
	if !conditions.IsTrue(got, meta.HealthyCondition) {
		t.Errorf("Healthy is not True with wait: %s", describe(got))
	}
	want := []string{f.ns + "_web-config__ConfigMap", f.ns + "_web_apps_Deployment"}
	if got.Status.Inventory == nil || len(got.Status.Inventory.Entries) != 2 {
		t.Fatalf("inventory = %+v, want %v", got.Status.Inventory, want)
	}
	for i, e := range got.Status.Inventory.Entries {
		if e.ID != want[i] {
			t.Errorf("inventory entry %d = %s, want %s", i, e.ID, want[i])
		}
	}
	dep := &appsv1.Deployment{}
	if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: f.ns, Name: "web"}, dep); err != nil {
		t.Fatal(err)
	}
	if dep.Labels["kustomize.toolkit.fluxcd.io/name"] != "web" || dep.Labels["kustomize.toolkit.fluxcd.io/namespace"] != f.ns {
		t.Errorf("ownership labels missing: %v", dep.Labels)
	}
	if dep.Status.AvailableReplicas != 2 {
		t.Errorf("Ready before the Deployment was Available (%d replicas)", dep.Status.AvailableReplicas)
	}
	err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: f.ns, Name: "elsewhere"}, &corev1.ConfigMap{})
	if !apierrors.IsNotFound(err) {
		t.Errorf("a file outside the path was applied (%v)", err)
	}
}

func TestPrunesWhatLeftTheSourceButNotWhatIsMarked(t *testing.T) {
	f := newFixture(t, map[string]string{
		"app/a.yaml":    fmt.Sprintf(configMap, "a", "1"),
		"app/b.yaml":    fmt.Sprintf(configMap, "b", "1"),
		"app/keep.yaml": strings.Replace(fmt.Sprintf(configMap, "keep", "1"), "metadata:\n", "metadata:\n  annotations:\n    kustomize.toolkit.fluxcd.io/prune: disabled\n", 1),
	})
	ks := f.kustomization("app", "./app", nil)
	f.waitApplied(ks, f.revision())

	rev := f.commit(map[string]string{"app/b.yaml": "", "app/keep.yaml": ""}, "remove b and keep")
	got := f.waitApplied(ks, rev)
	if n := len(got.Status.Inventory.Entries); n != 1 {
		t.Errorf("inventory has %d entries, want 1 (a)", n)
	}
	if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: f.ns, Name: "b"}, &corev1.ConfigMap{}); !apierrors.IsNotFound(err) {
		t.Errorf("b was not pruned (%v)", err)
	}
	if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: f.ns, Name: "keep"}, &corev1.ConfigMap{}); err != nil {
		t.Errorf("an object marked prune: disabled was deleted: %v", err)
	}
}

func TestAFailedRenderPrunesNothing(t *testing.T) {
	f := newFixture(t, map[string]string{
		"app/kustomization.yaml": "resources: [a.yaml, b.yaml]\n",
		"app/a.yaml":             fmt.Sprintf(configMap, "a", "1"),
		"app/b.yaml":             fmt.Sprintf(configMap, "b", "1"),
	})
	ks := f.kustomization("app", "./app", nil)
	f.waitApplied(ks, f.revision())

	// b.yaml disappears but kustomization.yaml still lists it: the build
	// fails, and nothing may be pruned because of it.
	f.commit(map[string]string{"app/b.yaml": ""}, "break the build")
	got := f.waitReason(ks, meta.BuildFailedReason)
	if !strings.Contains(conditions.GetMessage(got, meta.ReadyCondition), "b.yaml") {
		t.Errorf("the build error does not name the missing file: %q", conditions.GetMessage(got, meta.ReadyCondition))
	}
	for _, name := range []string{"a", "b"} {
		if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: f.ns, Name: name}, &corev1.ConfigMap{}); err != nil {
			t.Errorf("%s was removed after a failed build: %v", name, err)
		}
	}
}
