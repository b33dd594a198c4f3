package oci_test

import (
	"context"
	"fmt"
	"sort"
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
	registryUser     = "weir"
	registryPassword = "s3cret-passw0rd"
)

// newOCIRepository creates an OCIRepository with a long interval, so that
// every reconcile a test sees comes from a change or a request.
func newOCIRepository(t *testing.T, ns, name, url string, mutate func(*sourcev1.OCIRepository)) *sourcev1.OCIRepository {
	t.Helper()
	obj := &sourcev1.OCIRepository{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: sourcev1.OCIRepositorySpec{
			URL:      url,
			Interval: metav1.Duration{Duration: time.Hour},
		},
	}
	if mutate != nil {
		mutate(obj)
	}
	if err := env.Client.Create(context.Background(), obj); err != nil {
		t.Fatalf("creating OCIRepository %s: %v", name, err)
	}
	return obj
}

func withTag(tag string) func(*sourcev1.OCIRepository) {
	return func(o *sourcev1.OCIRepository) { o.Spec.Reference = &sourcev1.OCIRepositoryRef{Tag: tag} }
}

func withSecret(name string) func(*sourcev1.OCIRepository) {
	return func(o *sourcev1.OCIRepository) { o.Spec.SecretRef = &meta.LocalObjectReference{Name: name} }
}

// all applies several mutations in order.
func all(fs ...func(*sourcev1.OCIRepository)) func(*sourcev1.OCIRepository) {
	return func(o *sourcev1.OCIRepository) {
		for _, f := range fs {
			f(o)
		}
	}
}

// waitFor polls the object until cond holds or the timeout ends.
func waitFor(t *testing.T, timeout time.Duration, what string, obj client.Object, cond func(*sourcev1.OCIRepository) bool) *sourcev1.OCIRepository {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		got := &sourcev1.OCIRepository{}
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

// waitReady waits until Ready=True with the given artifact revision.
func waitReady(t *testing.T, obj client.Object, revision string) *sourcev1.OCIRepository {
	t.Helper()
	return waitFor(t, 30*time.Second, "Ready with revision "+revision, obj, func(o *sourcev1.OCIRepository) bool {
		return conditions.IsReady(o) && o.Status.Artifact != nil && o.Status.Artifact.Revision == revision &&
			o.Status.ObservedGeneration == o.Generation
	})
}

// waitNotReady waits until Ready=False and returns the object.
func waitNotReady(t *testing.T, obj client.Object) *sourcev1.OCIRepository {
	t.Helper()
	return waitFor(t, 30*time.Second, "Ready=False", obj, func(o *sourcev1.OCIRepository) bool {
		return conditions.IsFalse(o, meta.ReadyCondition) && o.Status.ObservedGeneration == o.Generation
	})
}

func describe(o *sourcev1.OCIRepository) string {
	s := ""
	for _, c := range o.Status.Conditions {
		s += fmt.Sprintf("[%s=%s %s: %s] ", c.Type, c.Status, c.Reason, c.Message)
	}
	if o.Status.Artifact != nil {
		s += "artifact " + o.Status.Artifact.Revision
	}
	return s
}

// requestReconcile sets reconcile.fluxcd.io/requestedAt as `flux reconcile`
// does and returns its value.
func requestReconcile(t *testing.T, obj client.Object) string {
	t.Helper()
	got := &sourcev1.OCIRepository{}
	if err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(obj), got); err != nil {
		t.Fatal(err)
	}
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
	return at
}

// reconcileNow requests a reconcile and waits until it has been handled.
func reconcileNow(t *testing.T, obj client.Object) *sourcev1.OCIRepository {
	t.Helper()
	at := requestReconcile(t, obj)
	return waitFor(t, 30*time.Second, "the reconcile request to be handled", obj, func(o *sourcev1.OCIRepository) bool {
		ready := conditions.Get(o, meta.ReadyCondition)
		return o.Status.LastHandledReconcileAt == at && ready != nil && ready.Status != metav1.ConditionUnknown
	})
}

// artifactFiles downloads the artifact and returns the files it holds.
func artifactFiles(t *testing.T, a *meta.Artifact) map[string]string {
	t.Helper()
	return testenv.TarFiles(t, testenv.Download(t, a))
}

func names(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func createSecret(t *testing.T, ns, name string, typ corev1.SecretType, data map[string][]byte) {
	t.Helper()
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Type: typ, Data: data}
	if err := env.Client.Create(context.Background(), s); err != nil {
		t.Fatalf("creating secret %s: %v", name, err)
	}
}

// createPullSecret creates a kubernetes.io/dockerconfigjson Secret that logs
// in to reg, as `kubectl create secret docker-registry` does.
func createPullSecret(t *testing.T, ns, name string, reg *testenv.Registry, user, password string) {
	t.Helper()
	createSecret(t, ns, name, corev1.SecretTypeDockerConfigJson, map[string][]byte{
		corev1.DockerConfigJsonKey: reg.DockerConfigJSON(user, password),
	})
}

// waitEvent waits for an event with reason about the named OCIRepository.
func waitEvent(t *testing.T, ns, name, reason string) corev1.Event {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		var list corev1.EventList
		if err := env.Client.List(context.Background(), &list, client.InNamespace(ns)); err == nil {
			for _, e := range list.Items {
				if e.InvolvedObject.Name == name && e.InvolvedObject.Kind == sourcev1.OCIRepositoryKind && e.Reason == reason {
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
