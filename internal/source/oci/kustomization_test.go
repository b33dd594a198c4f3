package oci_test

import (
	"context"
	"testing"
	"time"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"github.com/fluxcd/pkg/runtime/conditions"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/weirhq/weir/internal/testenv"
)

func configMap(name, value string) string {
	return "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: " + name + "\ndata:\n  value: " + value + "\n"
}

func TestAKustomizationAppliesFromAnOCIRepository(t *testing.T) {
	ns := env.Namespace(t)
	reg := testenv.NewRegistry(t, "", "")
	first := reg.PushFiles(t, "manifests", "latest", map[string]string{"apps/app.yaml": configMap("app", "one")}, nil)
	src := newOCIRepository(t, ns, "manifests", reg.URL("manifests"), nil)
	waitReady(t, src, "latest@"+first)

	ks := &kustomizev1.Kustomization{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "apps"},
		Spec: kustomizev1.KustomizationSpec{
			Interval:        metav1.Duration{Duration: time.Hour},
			Path:            "./apps",
			Prune:           true,
			TargetNamespace: ns,
			Timeout:         &metav1.Duration{Duration: 30 * time.Second},
			SourceRef:       kustomizev1.CrossNamespaceSourceReference{Kind: "OCIRepository", Name: "manifests"},
		},
	}
	if err := env.Client.Create(context.Background(), ks); err != nil {
		t.Fatal(err)
	}
	waitApplied(t, ks, "latest@"+first)
	waitConfigMap(t, ns, "app", "one")

	// A new push reaches the cluster once the source has it, without a
	// request to the Kustomization: its source's new artifact queues it.
	second := reg.PushFiles(t, "manifests", "latest", map[string]string{"apps/app.yaml": configMap("app", "two")}, nil)
	requestReconcile(t, src)
	waitApplied(t, ks, "latest@"+second)
	waitConfigMap(t, ns, "app", "two")
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
