package bucket_test

import (
	"context"
	"testing"
	"time"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"github.com/fluxcd/pkg/runtime/conditions"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

func configMap(name, value string) string {
	return "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: " + name + "\ndata:\n  value: \"" + value + "\"\n"
}

func TestAKustomizationAppliesFromABucketAndPrunesRemovedObjects(t *testing.T) {
	ns := env.Namespace(t)
	s3 := newServer(t, ns, "cluster", map[string]string{
		"apps/one.yaml": configMap("one", "1"),
		"apps/two.yaml": configMap("two", "2"),
	})
	src := newBucket(t, ns, "cluster", s3, "cluster", nil)
	first := fluxRevision(s3.ETags(t, "cluster", ""))
	waitReady(t, src, first)

	ks := &kustomizev1.Kustomization{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "apps"},
		Spec: kustomizev1.KustomizationSpec{
			Interval:        metav1.Duration{Duration: time.Hour},
			Path:            "./apps",
			Prune:           true,
			TargetNamespace: ns,
			Timeout:         &metav1.Duration{Duration: 30 * time.Second},
			SourceRef:       kustomizev1.CrossNamespaceSourceReference{Kind: "Bucket", Name: "cluster"},
		},
	}
	if err := env.Client.Create(context.Background(), ks); err != nil {
		t.Fatal(err)
	}
	waitApplied(t, ks, first)
	waitConfigMap(t, ns, "one", "1")
	waitConfigMap(t, ns, "two", "2")

	// An object removed from the bucket, another changed: once the Bucket
	// has the new revision, the Kustomization is queued by it, prunes the
	// removed ConfigMap and updates the other.
	s3.RemoveObjects(t, "cluster", "apps/two.yaml")
	s3.PutObjects(t, "cluster", map[string]string{"apps/one.yaml": configMap("one", "uno")})
	second := fluxRevision(s3.ETags(t, "cluster", ""))
	requestReconcile(t, src)
	waitApplied(t, ks, second)
	waitConfigMap(t, ns, "one", "uno")
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "two"}, &corev1.ConfigMap{})
		if apierrors.IsNotFound(err) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("ConfigMap two was not pruned after its object left the bucket (get: %v)", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func waitApplied(t *testing.T, ks *kustomizev1.Kustomization, revision string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		got := &kustomizev1.Kustomization{}
		if err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(ks), got); err == nil &&
			conditions.IsReady(got) && got.Status.LastAppliedRevision == revision {
			return
		} else if time.Now().After(deadline) {
			t.Fatalf("Kustomization not Ready at %s: %+v", revision, got.Status.Conditions)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func waitConfigMap(t *testing.T, ns, name, value string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var cm corev1.ConfigMap
		err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, &cm)
		if err == nil && cm.Data["value"] == value {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("ConfigMap %s/%s never had value %q (last: %v, %v)", ns, name, value, cm.Data, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
