package helmchart_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/fluxcd/pkg/apis/meta"
	"github.com/fluxcd/pkg/runtime/conditions"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/weirhq/weir/internal/manager"
	"github.com/weirhq/weir/internal/testenv"
)

var env *testenv.Env

// sigstoreRoot is the controllers' --sigstore-trusted-root, which the
// keyless test writes: HelmChart has no field for a trusted root.
var sigstoreRoot = filepath.Join(os.TempDir(), fmt.Sprintf("weir-helmchart-trusted-root-%d.json", os.Getpid()))

func TestMain(m *testing.M) {
	testenv.Main(m, &env, testenv.WithManagerOptions(func(o *manager.Options) { o.SigstoreTrustedRoot = sigstoreRoot }))
}

// newHelmRepository creates a HelmRepository with a long interval and
// waits until it is Ready.
func newHelmRepository(t *testing.T, ns, name, url string, mutate func(*sourcev1.HelmRepository)) *sourcev1.HelmRepository {
	t.Helper()
	obj := &sourcev1.HelmRepository{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       sourcev1.HelmRepositorySpec{URL: url, Interval: metav1.Duration{Duration: time.Hour}},
	}
	if mutate != nil {
		mutate(obj)
	}
	if err := env.Client.Create(context.Background(), obj); err != nil {
		t.Fatalf("creating HelmRepository %s: %v", name, err)
	}
	waitObject(t, obj, "the HelmRepository to be Ready", func(o *sourcev1.HelmRepository) bool {
		return conditions.IsReady(o) && o.Status.ObservedGeneration == o.Generation
	})
	return obj
}

// newHelmChart creates a HelmChart with a long interval, so that every
// reconcile a test sees comes from a change, a request or its source.
func newHelmChart(t *testing.T, ns, name string, ref sourcev1.LocalHelmChartSourceReference, chart, version string, mutate func(*sourcev1.HelmChart)) *sourcev1.HelmChart {
	t.Helper()
	obj := &sourcev1.HelmChart{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: sourcev1.HelmChartSpec{
			Chart:     chart,
			Version:   version,
			SourceRef: ref,
			Interval:  metav1.Duration{Duration: time.Hour},
		},
	}
	if mutate != nil {
		mutate(obj)
	}
	if err := env.Client.Create(context.Background(), obj); err != nil {
		t.Fatalf("creating HelmChart %s: %v", name, err)
	}
	return obj
}

func helmRepoRef(name string) sourcev1.LocalHelmChartSourceReference {
	return sourcev1.LocalHelmChartSourceReference{Kind: sourcev1.HelmRepositoryKind, Name: name}
}

func gitRepoRef(name string) sourcev1.LocalHelmChartSourceReference {
	return sourcev1.LocalHelmChartSourceReference{Kind: sourcev1.GitRepositoryKind, Name: name}
}

// waitObject polls obj (a pointer to a Flux type) until cond holds.
func waitObject[T client.Object](t *testing.T, obj T, what string, cond func(T) bool) T {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		got := obj.DeepCopyObject().(T)
		err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(obj), got)
		if err == nil && cond(got) {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s; last: %+v", what, got)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitChart polls the HelmChart until cond holds.
func waitChart(t *testing.T, obj client.Object, what string, cond func(*sourcev1.HelmChart) bool) *sourcev1.HelmChart {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		got := &sourcev1.HelmChart{}
		err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(obj), got)
		if err == nil && cond(got) {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s; last status: %s", what, describe(got))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitRevision waits until the HelmChart is Ready with the revision.
func waitRevision(t *testing.T, obj client.Object, revision string) *sourcev1.HelmChart {
	t.Helper()
	return waitChart(t, obj, "Ready with revision "+revision, func(o *sourcev1.HelmChart) bool {
		return conditions.IsReady(o) && o.Status.Artifact != nil && o.Status.Artifact.Revision == revision &&
			o.Status.ObservedGeneration == o.Generation
	})
}

// waitNotReady waits until Ready=False for the current generation.
func waitNotReady(t *testing.T, obj client.Object) *sourcev1.HelmChart {
	t.Helper()
	return waitChart(t, obj, "Ready=False", func(o *sourcev1.HelmChart) bool {
		return conditions.IsFalse(o, meta.ReadyCondition) && o.Status.ObservedGeneration == o.Generation
	})
}

func describe(o *sourcev1.HelmChart) string {
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
	at := time.Now().Format(time.RFC3339Nano)
	patch := []byte(fmt.Sprintf(`{"metadata":{"annotations":{%q:%q}}}`, meta.ReconcileRequestAnnotation, at))
	if err := env.Client.Patch(context.Background(), obj, client.RawPatch("application/merge-patch+json", patch)); err != nil {
		t.Fatalf("requesting a reconcile: %v", err)
	}
	return at
}

// patchChart changes the HelmChart's spec.
func patchChart(t *testing.T, obj client.Object, change func(*sourcev1.HelmChart)) {
	t.Helper()
	got := &sourcev1.HelmChart{}
	if err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(obj), got); err != nil {
		t.Fatal(err)
	}
	patch := client.MergeFrom(got.DeepCopy())
	change(got)
	if err := env.Client.Patch(context.Background(), got, patch); err != nil {
		t.Fatal(err)
	}
}

func createSecret(t *testing.T, ns, name string, typ corev1.SecretType, data map[string][]byte) {
	t.Helper()
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Type: typ, Data: data}
	if err := env.Client.Create(context.Background(), s); err != nil {
		t.Fatalf("creating secret %s: %v", name, err)
	}
}

// waitEvent waits for an event with reason about the named HelmChart and
// returns the first.
func waitEvent(t *testing.T, ns, name, reason string) corev1.Event {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		var list corev1.EventList
		if err := env.Client.List(context.Background(), &list, client.InNamespace(ns)); err == nil {
			for _, e := range list.Items {
				if e.InvolvedObject.Name == name && e.InvolvedObject.Kind == sourcev1.HelmChartKind && e.Reason == reason {
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
