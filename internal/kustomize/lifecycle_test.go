package kustomize_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"github.com/fluxcd/pkg/apis/kustomize"
	"github.com/fluxcd/pkg/apis/meta"
	"github.com/fluxcd/pkg/runtime/conditions"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"
)

const crd = `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.weir.dev
spec:
  group: example.weir.dev
  names: {kind: Widget, plural: widgets, singular: widget, listKind: WidgetList}
  scope: Namespaced
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          x-kubernetes-preserve-unknown-fields: true
`

func TestCRDAndItsCustomResourceInOneKustomization(t *testing.T) {
	f := newFixture(t, map[string]string{
		"app/crd.yaml":    crd,
		"app/widget.yaml": "apiVersion: example.weir.dev/v1\nkind: Widget\nmetadata:\n  name: w1\nspec:\n  size: 3\n",
	})
	ks := f.kustomization("widgets", "./app", func(k *kustomizev1.Kustomization) { k.Spec.Wait = true })
	f.waitApplied(ks, f.revision())
	w := &unstructured.Unstructured{}
	w.SetGroupVersionKind(schema.GroupVersionKind{Group: "example.weir.dev", Version: "v1", Kind: "Widget"})
	if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: f.ns, Name: "w1"}, w); err != nil {
		t.Fatalf("the custom resource was not applied after its CRD: %v", err)
	}
	// Leave the shared control plane without the CRD.
	t.Cleanup(func() {
		u := &unstructured.Unstructured{}
		u.SetGroupVersionKind(schema.GroupVersionKind{Group: "apiextensions.k8s.io", Version: "v1", Kind: "CustomResourceDefinition"})
		u.SetName("widgets.example.weir.dev")
		_ = env.Client.Delete(context.Background(), u)
	})
}

func TestHealthCheckTimesOutNamingTheObject(t *testing.T) {
	stuck := strings.Replace(fmt.Sprintf(deployment, "stuck"), "    spec:\n", "    spec:\n      nodeSelector: {no-such-node: \"true\"}\n", 1)
	f := newFixture(t, map[string]string{"app/deploy.yaml": stuck})
	ks := f.kustomization("stuck", "./app", func(k *kustomizev1.Kustomization) {
		k.Spec.Wait = true
		k.Spec.Timeout = &metav1.Duration{Duration: 5 * time.Second}
	})
	got := f.waitReason(ks, meta.HealthCheckFailedReason)
	msg := conditions.GetMessage(got, meta.ReadyCondition)
	if !strings.Contains(msg, "Deployment/"+f.ns+"/stuck") {
		t.Errorf("health failure %q does not name the Deployment", msg)
	}
	if !conditions.IsFalse(got, meta.HealthyCondition) {
		t.Errorf("Healthy is not False: %s", describe(got))
	}
}

func TestImmutableFieldChangeNeedsForce(t *testing.T) {
	job := func(image string) string {
		return fmt.Sprintf("apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: migrate\nspec:\n  template:\n    spec:\n      restartPolicy: Never\n      containers:\n        - name: m\n          image: %s\n", image)
	}
	f := newFixture(t, map[string]string{"app/job.yaml": job("example.invalid/migrate:1")})
	ks := f.kustomization("job", "./app", nil)
	f.waitApplied(ks, f.revision())

	rev := f.commit(map[string]string{"app/job.yaml": job("example.invalid/migrate:2")}, "new image")
	got := f.waitReason(ks, meta.ReconciliationFailedReason)
	if msg := conditions.GetMessage(got, meta.ReadyCondition); !strings.Contains(msg, "immutable") || !strings.Contains(msg, "Job/"+f.ns+"/migrate") {
		t.Errorf("immutable-field failure %q does not name the object and the cause", msg)
	}

	setSpec(t, ks, func(k *kustomizev1.Kustomization) { k.Spec.Force = true })
	f.waitApplied(ks, rev)
}

func TestSuspendedKustomizationIsLeftAlone(t *testing.T) {
	f := newFixture(t, map[string]string{"app/cm.yaml": fmt.Sprintf(configMap, "cm", "1")})
	ks := f.kustomization("app", "./app", nil)
	first := f.revision()
	f.waitApplied(ks, first)
	setSpec(t, ks, func(k *kustomizev1.Kustomization) { k.Spec.Suspend = true })
	time.Sleep(500 * time.Millisecond)
	f.commit(map[string]string{"app/cm.yaml": fmt.Sprintf(configMap, "cm", "2")}, "change")
	time.Sleep(3 * time.Second)
	cm := &corev1.ConfigMap{}
	if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: f.ns, Name: "cm"}, cm); err != nil {
		t.Fatal(err)
	}
	if cm.Data["key"] != "1" {
		t.Errorf("a suspended Kustomization applied a change: key = %q", cm.Data["key"])
	}
	setSpec(t, ks, func(k *kustomizev1.Kustomization) { k.Spec.Suspend = false })
	f.waitApplied(ks, f.revision())
}

func TestDriftIsCorrected(t *testing.T) {
	f := newFixture(t, map[string]string{"app/cm.yaml": fmt.Sprintf(configMap, "cm", "from-git")})
	ks := f.kustomization("app", "./app", nil)
	f.waitApplied(ks, f.revision())
	cm := &corev1.ConfigMap{}
	key := client.ObjectKey{Namespace: f.ns, Name: "cm"}
	if err := env.Client.Get(context.Background(), key, cm); err != nil {
		t.Fatal(err)
	}
	cm.Data["key"] = "edited-by-hand"
	if err := env.Client.Update(context.Background(), cm); err != nil {
		t.Fatal(err)
	}
	requestReconcile(t, ks)
	deadline := time.Now().Add(30 * time.Second)
	for {
		if err := env.Client.Get(context.Background(), key, cm); err == nil && cm.Data["key"] == "from-git" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the hand edit was not reverted: key = %q", cm.Data["key"])
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The correction is reported, naming what was changed back.
	want := "ConfigMap/" + f.ns + "/cm configured"
	deadline = time.Now().Add(10 * time.Second)
	for {
		var events corev1.EventList
		if err := env.Client.List(context.Background(), &events, client.InNamespace(f.ns)); err != nil {
			t.Fatal(err)
		}
		found := false
		for _, e := range events.Items {
			if e.InvolvedObject.Name == "app" && e.Reason == "Progressing" && strings.Contains(e.Message, want) {
				found = true
			}
		}
		if found {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no Progressing event says %q", want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestDeletionPolicies(t *testing.T) {
	cases := []struct {
		policy string
		prune  bool
		kept   bool
	}{
		{kustomizev1.DeletionPolicyMirrorPrune, true, false},
		{kustomizev1.DeletionPolicyMirrorPrune, false, true},
		{kustomizev1.DeletionPolicyDelete, false, false},
		{kustomizev1.DeletionPolicyWaitForTermination, true, false},
		{kustomizev1.DeletionPolicyOrphan, true, true},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("%s-prune-%v", tc.policy, tc.prune), func(t *testing.T) {
			f := newFixture(t, map[string]string{"app/cm.yaml": fmt.Sprintf(configMap, "cm", "1")})
			ks := f.kustomization("app", "./app", func(k *kustomizev1.Kustomization) {
				k.Spec.Prune = tc.prune
				k.Spec.DeletionPolicy = tc.policy
			})
			f.waitApplied(ks, f.revision())
			if err := env.Client.Delete(context.Background(), ks); err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(30 * time.Second)
			for {
				err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(ks), &kustomizev1.Kustomization{})
				if apierrors.IsNotFound(err) {
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("the Kustomization was not deleted")
				}
				time.Sleep(50 * time.Millisecond)
			}
			cm := &corev1.ConfigMap{}
			err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: f.ns, Name: "cm"}, cm)
			gone := apierrors.IsNotFound(err) || (err == nil && !cm.DeletionTimestamp.IsZero())
			if tc.kept == gone {
				t.Errorf("deletionPolicy %s with prune=%v: object kept=%v, want %v", tc.policy, tc.prune, !gone, tc.kept)
			}
		})
	}
}

func setSpec(t *testing.T, ks *kustomizev1.Kustomization, mutate func(*kustomizev1.Kustomization)) {
	t.Helper()
	got := &kustomizev1.Kustomization{}
	if err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(ks), got); err != nil {
		t.Fatal(err)
	}
	patch := client.MergeFrom(got.DeepCopy())
	mutate(got)
	if err := env.Client.Patch(context.Background(), got, patch); err != nil {
		t.Fatal(err)
	}
}

func requestReconcile(t *testing.T, ks *kustomizev1.Kustomization) {
	t.Helper()
	setSpec(t, ks, func(k *kustomizev1.Kustomization) {
		if k.Annotations == nil {
			k.Annotations = map[string]string{}
		}
		k.Annotations[meta.ReconcileRequestAnnotation] = time.Now().Format(time.RFC3339Nano)
	})
}

func TestHealthChecksFollowObjectsAppliedElsewhere(t *testing.T) {
	f := newFixture(t, map[string]string{"app/cm.yaml": fmt.Sprintf(configMap, "cm", "1")})
	ks := f.kustomization("checker", "./app", func(k *kustomizev1.Kustomization) {
		k.Spec.HealthChecks = []meta.NamespacedObjectKindReference{{APIVersion: "apps/v1", Kind: "Deployment", Name: "elsewhere", Namespace: f.ns}}
	})
	// Not there yet: the Kustomization waits for it.
	f.wait(ks, 30*time.Second, "to wait on the missing Deployment", func(k *kustomizev1.Kustomization) bool {
		return strings.Contains(conditions.GetMessage(k, meta.HealthyCondition), "Deployment/"+f.ns+"/elsewhere")
	})
	// Created by someone else, without weir's labels: it turns Available
	// and the Kustomization follows.
	u := &unstructured.Unstructured{}
	if err := yamlToUnstructured(fmt.Sprintf(deployment, "elsewhere"), u); err != nil {
		t.Fatal(err)
	}
	u.SetNamespace(f.ns)
	if err := env.Client.Create(context.Background(), u); err != nil {
		t.Fatal(err)
	}
	got := f.waitApplied(ks, f.revision())
	if !conditions.IsTrue(got, meta.HealthyCondition) {
		t.Errorf("Healthy is not True: %s", describe(got))
	}
}

func yamlToUnstructured(text string, u *unstructured.Unstructured) error {
	return yaml.Unmarshal([]byte(text), &u.Object)
}

// spec.ignore leaves the paths it names to another actor: a replica count
// an autoscaler set survives the next apply, while the rest of the same
// object is still corrected.
func TestIgnoredPathsAreLeftToOthers(t *testing.T) {
	f := newFixture(t, map[string]string{"app/deploy.yaml": fmt.Sprintf(deployment, "web")})
	ks := f.kustomization("app", "./app", func(k *kustomizev1.Kustomization) {
		k.Spec.Ignore = []kustomizev1.IgnoreRule{{
			Paths:  []string{"/spec/replicas"},
			Target: &kustomize.Selector{Kind: "Deployment"},
		}}
	})
	f.waitApplied(ks, f.revision())
	ctx := context.Background()
	key := client.ObjectKey{Namespace: f.ns, Name: "web"}
	dep := &appsv1.Deployment{}
	// An autoscaler's write, and a hand edit of a field Git owns.
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if err := env.Client.Get(ctx, key, dep); err != nil {
			return err
		}
		replicas := int32(5)
		dep.Spec.Replicas = &replicas
		dep.Spec.Template.Spec.Containers[0].Image = "example.invalid/app:edited"
		return env.Client.Update(ctx, dep, client.FieldOwner("autoscaler"))
	})
	if err != nil {
		t.Fatal(err)
	}
	requestReconcile(t, ks)
	deadline := time.Now().Add(30 * time.Second)
	for {
		if err := env.Client.Get(ctx, key, dep); err != nil {
			t.Fatal(err)
		}
		if dep.Spec.Template.Spec.Containers[0].Image == "example.invalid/app:1" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the hand edit of the image was not reverted: %s", dep.Spec.Template.Spec.Containers[0].Image)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if dep.Spec.Replicas == nil || *dep.Spec.Replicas != 5 {
		t.Errorf("spec.replicas is ignored, yet the apply set it back to %d", *dep.Spec.Replicas)
	}
}
