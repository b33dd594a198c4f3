package kustomize_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"github.com/fluxcd/pkg/apis/meta"
	"github.com/fluxcd/pkg/runtime/conditions"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// TestTwoKustomizationsApplyingOneObject has two Kustomizations declare
// the same ConfigMap. Both report it, naming the other; deleting one
// deletes what only it declared and keeps the shared object, which the
// other then labels as its own.
func TestTwoKustomizationsApplyingOneObject(t *testing.T) {
	shared := fmt.Sprintf(configMap, "shared", "same")
	f := newFixture(t, map[string]string{
		"a/shared.yaml": shared,
		"a/own.yaml":    fmt.Sprintf(configMap, "only-a", "1"),
		"b/shared.yaml": shared,
		"b/own.yaml":    fmt.Sprintf(configMap, "only-b", "1"),
	})
	rev := f.revision()
	a := f.kustomization("a", "./a", nil)
	f.waitApplied(a, rev)
	b := f.kustomization("b", "./b", nil)
	f.waitApplied(b, rev)

	object := "ConfigMap/" + f.ns + "/shared"
	for _, side := range []struct {
		ks    *kustomizev1.Kustomization
		other string
	}{{a, f.ns + "/b"}, {b, f.ns + "/a"}} {
		want := object + " is also applied by Kustomization " + side.other
		got := f.wait(side.ks, 60*time.Second, "to report the shared object", func(k *kustomizev1.Kustomization) bool {
			return conditions.IsReady(k) && strings.Contains(conditions.GetMessage(k, meta.ReadyCondition), want)
		})
		t.Logf("%s: %s", side.ks.Name, conditions.GetMessage(got, meta.ReadyCondition))
		waitEvent(t, f.ns, side.ks.Name, corev1.EventTypeWarning, want)
	}

	// The last apply takes the ownership labels: let it be a's, so that
	// only the check of b's inventory can keep the object.
	requestReconcile(t, a)
	waitOwner(t, f.ns, "shared", "a")

	if err := env.Client.Delete(context.Background(), a); err != nil {
		t.Fatal(err)
	}
	waitGone(t, a)
	if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: f.ns, Name: "only-a"}, &corev1.ConfigMap{}); !apierrors.IsNotFound(err) {
		t.Errorf("what only a declared was not deleted with it (%v)", err)
	}
	waitOwner(t, f.ns, "shared", "b")
	f.wait(b, 60*time.Second, "to stop reporting the shared object", func(k *kustomizev1.Kustomization) bool {
		return conditions.IsReady(k) && conditions.GetMessage(k, meta.ReadyCondition) == "Applied revision: "+rev
	})
}

// waitOwner waits until the ConfigMap name carries the ownership labels
// of the Kustomization owner; it fails at once if the ConfigMap goes.
func waitOwner(t *testing.T, ns, name, owner string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		cm := &corev1.ConfigMap{}
		err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, cm)
		if err != nil || !cm.DeletionTimestamp.IsZero() {
			t.Fatalf("ConfigMap %s, still declared, was deleted (%v)", name, err)
		}
		if cm.Labels["kustomize.toolkit.fluxcd.io/name"] == owner {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("ConfigMap %s is not labelled as %s's: %v", name, owner, cm.Labels)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitEvent waits for an event of type on the Kustomization name whose
// message contains text.
func waitEvent(t *testing.T, ns, name, typ, text string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var events corev1.EventList
		if err := env.Client.List(context.Background(), &events, client.InNamespace(ns)); err != nil {
			t.Fatal(err)
		}
		for _, e := range events.Items {
			if e.InvolvedObject.Kind == kustomizev1.KustomizationKind && e.InvolvedObject.Name == name && e.Type == typ && strings.Contains(e.Message, text) {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s event on %s says %q", typ, name, text)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitGone waits until the Kustomization is deleted.
func waitGone(t *testing.T, ks *kustomizev1.Kustomization) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(ks), &kustomizev1.Kustomization{})
		if apierrors.IsNotFound(err) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("Kustomization %s was not deleted: %v", ks.Name, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
