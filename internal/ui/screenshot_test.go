package ui_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	helmv2 "github.com/fluxcd/helm-controller/api/v2"
	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"github.com/fluxcd/pkg/apis/meta"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/weirhq/weir/internal/ui"
)

// TestScreenshot writes the screenshot of docs/dashboard.md when
// WEIR_UI_SCREENSHOT names the file to write:
//
//	WEIR_UI_SCREENSHOT=$PWD/docs/dashboard.png go test ./internal/ui -run TestScreenshot
//
// It loads the example repository's Kustomizations, HelmReleases and
// OCIRepositories (examples/cluster) and writes their status as weir's
// controllers would in the middle of a rollout: cert-manager upgrading and
// what depends on it waiting, rustfs failed, spegel suspended.
func TestScreenshot(t *testing.T) {
	out := os.Getenv("WEIR_UI_SCREENSHOT")
	if out == "" {
		t.Skip("set WEIR_UI_SCREENSHOT to the PNG file to write, such as $PWD/docs/dashboard.png")
	}
	ctx := context.Background()
	objs := loadExample(t)
	for _, ns := range []string{"flux-system", "cert-manager", "database", "network", "storage"} {
		if err := env.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatalf("creating namespace %s: %v", ns, err)
		}
	}
	for _, o := range objs {
		status := o.DeepCopyObject().(client.Object)
		if err := env.Client.Create(ctx, o); err != nil {
			t.Fatalf("creating %s: %v", o.GetName(), err)
		}
		status.SetResourceVersion(o.GetResourceVersion())
		status.SetUID(o.GetUID())
		status.SetGeneration(o.GetGeneration())
		writeStatus(t, status)
	}
	addEvents(t)

	srv := serve(t, ui.Options{})
	b := browser(t)
	b.do("loading the example's graph",
		chromedp.EmulateViewport(1920, 1080),
		chromedp.Navigate(srv.URL()+"#Kustomization/flux-system/external-dns"),
		until(`document.querySelectorAll('g.node').length === 28`),
		visible(`#detail[data-loaded]`),
		// A pulsing status dot would be caught half faded.
		chromedp.Evaluate[chromedp.Void](`document.getAnimations().forEach(a => a.cancel())`),
		chromedp.Sleep(300*time.Millisecond))
	png := value(b, "taking the screenshot", chromedp.CaptureScreenshot())
	if err := os.WriteFile(out, png, 0o644); err != nil {
		t.Fatalf("writing the screenshot: %v", err)
	}
	t.Logf("wrote %s (%d bytes)", out, len(png))
}

// registry stands for weir up's OCI registry in the example's URLs.
const registry = "127.0.0.1:41235"

// loadExample reads the example's Flux objects, with the namespaces that
// its Kustomizations give them and its variables substituted as weir up
// does, plus the flux-system GitRepository and Kustomization that weir up
// creates.
func loadExample(t *testing.T) []client.Object {
	t.Helper()
	root := filepath.Join("..", "..", "examples", "cluster", "kubernetes")
	read := func(path string, into client.Object) bool {
		b, err := os.ReadFile(path)
		if os.IsNotExist(err) {
			return false
		}
		if err != nil {
			t.Fatal(err)
		}
		s := strings.ReplaceAll(strings.TrimPrefix(string(b), "---\n"), "${LOCAL_REGISTRY:=ghcr.io}", registry)
		if err := yaml.Unmarshal([]byte(s), into); err != nil {
			t.Fatalf("reading %s: %v", path, err)
		}
		return true
	}
	objs := []client.Object{
		&sourcev1.GitRepository{
			ObjectMeta: metav1.ObjectMeta{Namespace: "flux-system", Name: "flux-system"},
			Spec: sourcev1.GitRepositorySpec{
				URL: "http://127.0.0.1:41233/cluster.git", Interval: metav1.Duration{Duration: time.Minute},
				Reference: &sourcev1.GitRepositoryRef{Branch: "main"},
			},
		},
		&kustomizev1.Kustomization{
			ObjectMeta: metav1.ObjectMeta{Namespace: "flux-system", Name: "flux-system"},
			Spec: kustomizev1.KustomizationSpec{
				Interval: metav1.Duration{Duration: 10 * time.Minute}, Path: "./kubernetes/flux/cluster", Prune: true,
				SourceRef: kustomizev1.CrossNamespaceSourceReference{Kind: "GitRepository", Name: "flux-system"},
			},
		},
	}
	var root2 kustomizev1.Kustomization
	read(filepath.Join(root, "flux", "cluster", "ks.yaml"), &root2)
	objs = append(objs, &root2)
	apps, err := filepath.Glob(filepath.Join(root, "apps", "*", "*", "ks.yaml"))
	if err != nil || len(apps) == 0 {
		t.Fatalf("finding the example's apps: %v", err)
	}
	for _, path := range apps {
		ks := &kustomizev1.Kustomization{}
		read(path, ks)
		objs = append(objs, ks)
		dir := filepath.Join(filepath.Dir(path), "app")
		hr, oci := &helmv2.HelmRelease{}, &sourcev1.OCIRepository{}
		if read(filepath.Join(dir, "helmrelease.yaml"), hr) {
			hr.Namespace = ks.Spec.TargetNamespace
			objs = append(objs, hr)
		}
		if read(filepath.Join(dir, "ocirepository.yaml"), oci) {
			oci.Namespace = ks.Spec.TargetNamespace
			objs = append(objs, oci)
		}
	}
	return objs
}

const (
	gitRevision  = "main@sha1:3f9c2a7e5b1d4c8f6a0e2b9d7c5a3f1e8d6b4a2c"
	ociRevision  = "1.0.0@sha256:9b1c4e7f2a5d8c3b6e9f1a4d7c0b3e6f9a2d5c8b1e4f7a0d3c6b9e2f5a8d1c4b"
	rolloutStart = 7 * time.Minute
)

// writeStatus writes the status a controller would write for obj in the
// screenshot's story.
func writeStatus(t *testing.T, obj client.Object) {
	t.Helper()
	now := time.Now()
	at := func(ago time.Duration) metav1.Time { return metav1.NewTime(now.Add(-ago).Truncate(time.Second)) }
	ready := func(status metav1.ConditionStatus, reason, msg string, ago time.Duration) []metav1.Condition {
		return []metav1.Condition{{Type: meta.ReadyCondition, Status: status, Reason: reason, Message: msg,
			ObservedGeneration: obj.GetGeneration(), LastTransitionTime: at(ago)}}
	}
	ns, name := obj.GetNamespace(), obj.GetName()
	switch o := obj.(type) {
	case *sourcev1.GitRepository:
		o.Status.ObservedGeneration = o.Generation
		o.Status.Artifact = &meta.Artifact{Revision: gitRevision, Path: "gitrepository/flux-system/flux-system/3f9c2a7e.tar.gz",
			URL: "http://127.0.0.1:41234/gitrepository/flux-system/flux-system/3f9c2a7e.tar.gz", Digest: "sha256:2c1e", LastUpdateTime: at(rolloutStart)}
		o.Status.Conditions = ready(metav1.ConditionTrue, meta.SucceededReason, "stored artifact for revision '"+gitRevision+"'", rolloutStart)
	case *sourcev1.OCIRepository:
		o.Status.ObservedGeneration = o.Generation
		o.Status.Artifact = &meta.Artifact{Revision: ociRevision, Path: "ocirepository/x.tar.gz", URL: "http://127.0.0.1:41234/ocirepository/x.tar.gz",
			Digest: "sha256:9b1c", LastUpdateTime: at(42 * time.Minute)}
		o.Status.Conditions = ready(metav1.ConditionTrue, meta.SucceededReason, "stored artifact for digest '"+ociRevision+"'", 42*time.Minute)
	case *kustomizev1.Kustomization:
		o.Status.ObservedGeneration = o.Generation
		o.Status.LastAppliedRevision, o.Status.LastAttemptedRevision = gitRevision, gitRevision
		o.Status.Inventory = inventoryOf(o)
		applied := "Applied revision: " + gitRevision
		switch name {
		case "cert-manager":
			o.Status.Conditions = ready(metav1.ConditionUnknown, meta.ProgressingReason, "Running health checks for revision "+gitRevision+" with a timeout of 5m0s", 2*time.Minute)
		case "envoy-gateway":
			o.Status.Conditions = ready(metav1.ConditionFalse, meta.DependencyNotReadyReason, "dependency 'flux-system/cert-manager' is not ready", 2*time.Minute)
		case "external-dns", "k8s-gateway", "cloudflare-tunnel", "echo":
			o.Status.Conditions = ready(metav1.ConditionFalse, meta.DependencyNotReadyReason, "dependency 'flux-system/envoy-gateway' is not ready", 2*time.Minute)
		case "rustfs":
			o.Status.Conditions = ready(metav1.ConditionFalse, meta.HealthCheckFailedReason,
				"health check failed after 5m0.021s: failed early due to stalled resources: [HelmRelease/storage/rustfs status: 'Failed']", 3*time.Minute)
		default:
			o.Status.Conditions = ready(metav1.ConditionTrue, meta.ReconciliationSucceededReason, applied, rolloutStart-20*time.Second)
		}
	case *helmv2.HelmRelease:
		o.Status.ObservedGeneration = o.Generation
		o.Status.LastAttemptedRevision = "1.0.0"
		o.Status.History = helmv2.Snapshots{{Name: name, Namespace: ns, Version: 1, Status: "deployed", ChartName: "app",
			ChartVersion: "1.0.0", AppVersion: "1.0.0", Digest: "sha256:1", ConfigDigest: "sha256:2",
			FirstDeployed: at(40 * time.Minute), LastDeployed: at(40 * time.Minute)}}
		switch name {
		case "cert-manager":
			o.Status.Conditions = ready(metav1.ConditionUnknown, meta.ProgressingReason, "Running 'upgrade' action with timeout of 5m0s", 2*time.Minute)
		case "rustfs":
			o.Status.History[0].Status = "failed"
			o.Status.Conditions = ready(metav1.ConditionFalse, "InstallFailed",
				"Helm install failed for release storage/rustfs with chart app@1.0.0: context deadline exceeded", 3*time.Minute)
		default:
			o.Status.Conditions = ready(metav1.ConditionTrue, "InstallSucceeded",
				fmt.Sprintf("Helm install succeeded for release %s/%s.v1 with chart app@1.0.0", ns, name), 40*time.Minute)
		}
	}
	if err := env.Client.Status().Update(context.Background(), obj); err != nil {
		t.Fatalf("writing the status of %s: %v", name, err)
	}
	if ks, ok := obj.(*kustomizev1.Kustomization); ok && name == "spegel" {
		patch := client.MergeFrom(ks.DeepCopy())
		ks.Spec.Suspend = true
		if err := env.Client.Patch(context.Background(), ks, patch); err != nil {
			t.Fatalf("suspending spegel: %v", err)
		}
	}
}

// inventoryOf is what a Kustomization of the example applies.
func inventoryOf(ks *kustomizev1.Kustomization) *kustomizev1.ResourceInventory {
	entry := func(ns, name, group, kind, version string) kustomizev1.ResourceRef {
		return kustomizev1.ResourceRef{ID: ns + "_" + name + "_" + group + "_" + kind, Version: version}
	}
	inv := &kustomizev1.ResourceInventory{}
	switch ks.Name {
	case "flux-system":
		inv.Entries = append(inv.Entries,
			entry("flux-system", "cluster-settings", "", "ConfigMap", "v1"),
			entry("flux-system", "cluster-apps", "kustomize.toolkit.fluxcd.io", "Kustomization", "v1"))
	case "cluster-apps":
		for _, ns := range []string{"cert-manager", "database", "network", "storage"} {
			inv.Entries = append(inv.Entries, entry("", ns, "", "Namespace", "v1"))
		}
		for _, app := range []string{"cert-manager", "cilium", "cloudflare-tunnel", "cloudnative-pg", "coredns", "echo", "envoy-gateway",
			"external-dns", "flux-instance", "flux-operator", "k8s-gateway", "rustfs", "spegel"} {
			inv.Entries = append(inv.Entries, entry("flux-system", app, "kustomize.toolkit.fluxcd.io", "Kustomization", "v1"))
		}
	default:
		ns := ks.Spec.TargetNamespace
		inv.Entries = append(inv.Entries,
			entry(ns, ks.Name, "helm.toolkit.fluxcd.io", "HelmRelease", "v2"),
			entry(ns, ks.Name, "source.toolkit.fluxcd.io", "OCIRepository", "v1"))
	}
	return inv
}

// addEvents records what the controller said about external-dns, the
// object the screenshot shows in the detail pane.
func addEvents(t *testing.T) {
	t.Helper()
	now := time.Now()
	for i, e := range []struct {
		typ, reason, msg string
		ago              time.Duration
	}{
		{corev1.EventTypeNormal, meta.ReconciliationSucceededReason, "Reconciliation finished in 1.284s, next run in 30m0s", 38 * time.Minute},
		{corev1.EventTypeNormal, "Progressing", "HelmRelease/network/external-dns configured\nOCIRepository/network/external-dns configured", 38 * time.Minute},
		{corev1.EventTypeWarning, meta.DependencyNotReadyReason, "dependency 'flux-system/envoy-gateway' is not ready", 2 * time.Minute},
	} {
		ev := &corev1.Event{
			ObjectMeta: metav1.ObjectMeta{Namespace: "flux-system", Name: fmt.Sprintf("external-dns.%d", i)},
			InvolvedObject: corev1.ObjectReference{Kind: "Kustomization", Namespace: "flux-system", Name: "external-dns",
				APIVersion: kustomizev1.GroupVersion.String()},
			Type: e.typ, Reason: e.reason, Message: e.msg, Count: 1,
			FirstTimestamp: metav1.NewTime(now.Add(-e.ago)), LastTimestamp: metav1.NewTime(now.Add(-e.ago)),
			Source: corev1.EventSource{Component: "kustomize-controller"},
		}
		if err := env.Client.Create(context.Background(), ev); err != nil {
			t.Fatalf("recording an event: %v", err)
		}
	}
}
