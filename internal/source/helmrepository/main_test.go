package helmrepository_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"testing"
	"time"

	"github.com/fluxcd/pkg/apis/meta"
	"github.com/fluxcd/pkg/runtime/conditions"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/weirhq/weir/internal/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) { testenv.Main(m, &env) }

const (
	repoUser     = "weir"
	repoPassword = "s3cret-passw0rd"
)

// newHelmRepository creates a HelmRepository with a long interval, so that
// every reconcile a test sees comes from a change or a request.
func newHelmRepository(t *testing.T, ns, name, url string, mutate func(*sourcev1.HelmRepository)) *sourcev1.HelmRepository {
	t.Helper()
	obj := &sourcev1.HelmRepository{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: sourcev1.HelmRepositorySpec{
			URL:      url,
			Interval: metav1.Duration{Duration: time.Hour},
		},
	}
	if mutate != nil {
		mutate(obj)
	}
	if err := env.Client.Create(context.Background(), obj); err != nil {
		t.Fatalf("creating HelmRepository %s: %v", name, err)
	}
	return obj
}

func withSecret(name string) func(*sourcev1.HelmRepository) {
	return func(o *sourcev1.HelmRepository) { o.Spec.SecretRef = &meta.LocalObjectReference{Name: name} }
}

// get reads the object as it is now.
func get(t *testing.T, obj client.Object) *sourcev1.HelmRepository {
	t.Helper()
	got := &sourcev1.HelmRepository{}
	if err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(obj), got); err != nil {
		t.Fatal(err)
	}
	return got
}

// waitFor polls the object until cond holds or the timeout ends.
func waitFor(t *testing.T, timeout time.Duration, what string, obj client.Object, cond func(*sourcev1.HelmRepository) bool) *sourcev1.HelmRepository {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		got := &sourcev1.HelmRepository{}
		err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(obj), got)
		if err == nil && cond(got) {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s; last status: %s", timeout, what, describe(got))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitReady waits until Ready=True for the current generation, with an
// artifact.
func waitReady(t *testing.T, obj client.Object) *sourcev1.HelmRepository {
	t.Helper()
	return waitFor(t, 30*time.Second, "Ready with an artifact", obj, func(o *sourcev1.HelmRepository) bool {
		return conditions.IsReady(o) && o.Status.Artifact != nil && o.Status.ObservedGeneration == o.Generation
	})
}

// waitNotReady waits until Ready=False for the current generation.
func waitNotReady(t *testing.T, obj client.Object) *sourcev1.HelmRepository {
	t.Helper()
	return waitFor(t, 30*time.Second, "Ready=False", obj, func(o *sourcev1.HelmRepository) bool {
		return conditions.IsFalse(o, meta.ReadyCondition) && o.Status.ObservedGeneration == o.Generation
	})
}

func describe(o *sourcev1.HelmRepository) string {
	s := ""
	for _, c := range o.Status.Conditions {
		s += fmt.Sprintf("[%s=%s %s: %s] ", c.Type, c.Status, c.Reason, c.Message)
	}
	if o.Status.Artifact != nil {
		s += "artifact " + o.Status.Artifact.Revision
	}
	return s
}

// reconcileNow sets reconcile.fluxcd.io/requestedAt as `flux reconcile`
// does and waits until the request has been handled.
func reconcileNow(t *testing.T, obj client.Object) *sourcev1.HelmRepository {
	t.Helper()
	got := get(t, obj)
	patch := client.MergeFrom(got.DeepCopy())
	at := time.Now().Format(time.RFC3339Nano)
	ann := got.GetAnnotations()
	if ann == nil {
		ann = map[string]string{}
	}
	ann[meta.ReconcileRequestAnnotation] = at
	got.SetAnnotations(ann)
	if err := env.Client.Patch(context.Background(), got, patch); err != nil {
		t.Fatalf("requesting a reconcile: %v", err)
	}
	return waitFor(t, 30*time.Second, "the reconcile request to be handled", obj, func(o *sourcev1.HelmRepository) bool {
		ready := conditions.Get(o, meta.ReadyCondition)
		return o.Status.LastHandledReconcileAt == at && ready != nil && ready.Status != metav1.ConditionUnknown
	})
}

func createSecret(t *testing.T, ns, name string, data map[string][]byte) {
	t.Helper()
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Data: data}
	if err := env.Client.Create(context.Background(), s); err != nil {
		t.Fatalf("creating secret %s: %v", name, err)
	}
}

// waitEvent waits for an event with reason about the named HelmRepository.
func waitEvent(t *testing.T, ns, name, reason string) corev1.Event {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		var list corev1.EventList
		if err := env.Client.List(context.Background(), &list, client.InNamespace(ns)); err == nil {
			for _, e := range list.Items {
				if e.InvolvedObject.Name == name && e.InvolvedObject.Kind == sourcev1.HelmRepositoryKind && e.Reason == reason {
					return e
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s event for %s/%s", reason, ns, name)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// sha256Revision is the revision source-controller gives an index.
func sha256Revision(b []byte) string { return fmt.Sprintf("sha256:%x", sha256.Sum256(b)) }
