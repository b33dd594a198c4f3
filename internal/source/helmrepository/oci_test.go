package helmrepository_test

import (
	"context"
	"os"
	"testing"

	"github.com/fluxcd/pkg/apis/meta"
	"github.com/fluxcd/pkg/runtime/conditions"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	"github.com/weirhq/weir/internal/testenv"
)

func TestAnOCIHelmRepositoryIsReadyWithoutArtifact(t *testing.T) {
	ns := env.Namespace(t)
	obj := newHelmRepository(t, ns, "oci", "oci://ghcr.io/stefanprodan/charts", func(o *sourcev1.HelmRepository) {
		o.Spec.Type = sourcev1.HelmRepositoryTypeOCI
	})
	got := waitFor(t, 30e9, "Ready", obj, func(o *sourcev1.HelmRepository) bool {
		return conditions.IsReady(o) && o.Status.ObservedGeneration == o.Generation
	})
	ready := conditions.Get(got, meta.ReadyCondition)
	if ready.Reason != meta.SucceededReason || ready.Message != "Helm repository is Ready" {
		t.Errorf("Ready %s %q", ready.Reason, ready.Message)
	}
	if got.Status.Artifact != nil || got.Status.URL != "" || controllerutil.ContainsFinalizer(got, sourcev1.SourceFinalizer) {
		t.Errorf("an OCI HelmRepository has an artifact %+v, URL %q or finalizers %v", got.Status.Artifact, got.Status.URL, got.Finalizers)
	}
	// A reconcile request is handled, so that `flux reconcile` returns.
	reconcileNow(t, obj)
}

func TestSwitchingToOCIRemovesTheIndex(t *testing.T) {
	ns := env.Namespace(t)
	hr := testenv.NewHelmRepo(t, "", "")
	hr.AddChart(t, testenv.WriteChart(t, "app", "1.0.0", nil))
	obj := newHelmRepository(t, ns, "charts", hr.URL, nil)
	path := env.Manager.Store.Path(waitReady(t, obj).Status.Artifact)

	got := get(t, obj)
	got.Spec.Type = sourcev1.HelmRepositoryTypeOCI
	got.Spec.URL = "oci://ghcr.io/stefanprodan/charts"
	if err := env.Client.Update(context.Background(), got); err != nil {
		t.Fatal(err)
	}
	got = waitFor(t, 30e9, "Ready as type oci", obj, func(o *sourcev1.HelmRepository) bool {
		return conditions.IsReady(o) && o.Status.ObservedGeneration == o.Generation && o.Status.Artifact == nil
	})
	if controllerutil.ContainsFinalizer(got, sourcev1.SourceFinalizer) {
		t.Error("the finalizer was kept")
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("the index %s is still stored (stat: %v)", path, err)
	}
}

func TestAnOCIHelmRepositoryWithAnHTTPURLIsStalled(t *testing.T) {
	ns := env.Namespace(t)
	obj := newHelmRepository(t, ns, "wrong", "https://charts.example.com", func(o *sourcev1.HelmRepository) {
		o.Spec.Type = sourcev1.HelmRepositoryTypeOCI
	})
	got := waitNotReady(t, obj)
	if r := conditions.GetReason(got, meta.ReadyCondition); r != sourcev1.URLInvalidReason || !conditions.IsStalled(got) {
		t.Errorf("Ready reason %s, stalled %v: %s", r, conditions.IsStalled(got), describe(got))
	}
}
