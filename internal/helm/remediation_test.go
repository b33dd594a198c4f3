package helm_test

import (
	"context"
	"testing"
	"time"

	helmv2 "github.com/fluxcd/helm-controller/api/v2"
	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"github.com/fluxcd/pkg/apis/kustomize"
	"github.com/fluxcd/pkg/apis/meta"
	"github.com/fluxcd/pkg/runtime/conditions"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	"helm.sh/helm/v4/pkg/action"
	"helm.sh/helm/v4/pkg/release/common"
	release "helm.sh/helm/v4/pkg/release/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/weirhq/weir/internal/helm"
	"github.com/weirhq/weir/internal/testenv"
)

func TestAFailingUpgradeIsRolledBackThenRecoveredWhenFixed(t *testing.T) {
	f := newFixture(t, "1.0.0")
	hr := f.release("flaky", "greeting: good", func(h *helmv2.HelmRelease) {
		h.Spec.Timeout = &metav1.Duration{Duration: 5 * time.Second}
		h.Spec.Upgrade = &helmv2.Upgrade{Remediation: &helmv2.UpgradeRemediation{Retries: 1}}
	})
	f.waitReady(hr, "1.0.0")

	// kwok's chaos stage fails the new pods (phase Failed, as a container
	// that exits at start-up): the Deployment never turns Available and
	// the upgrade times out.
	setSpec(t, hr, func(h *helmv2.HelmRelease) {
		h.Spec.Values = &apiextensionsv1.JSON{Raw: []byte(`{"greeting":"bad","podLabels":{"pod-init-container-running-failed.stage.kwok.x-k8s.io":"true"}}`)}
	})
	failedPod := false
	for deadline := time.Now().Add(30 * time.Second); !failedPod && time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		var pods corev1.PodList
		if err := env.Client.List(context.Background(), &pods, client.InNamespace(f.ns),
			client.MatchingLabels{"pod-init-container-running-failed.stage.kwok.x-k8s.io": "true"}); err != nil {
			t.Fatal(err)
		}
		for _, p := range pods.Items {
			failedPod = failedPod || p.Status.Phase == corev1.PodFailed
		}
	}
	if !failedPod {
		t.Fatal("no pod of the bad upgrade failed: kwok's chaos stages are not loaded")
	}
	got := f.wait(hr, 90*time.Second, "to run out of retries", func(h *helmv2.HelmRelease) bool {
		return conditions.IsStalled(h) && conditions.GetReason(h, meta.StalledCondition) == "RetriesExceeded"
	})
	if got.Status.UpgradeFailures != 2 {
		t.Errorf("upgradeFailures = %d, want 2 (the first try and one retry)", got.Status.UpgradeFailures)
	}
	if r := conditions.GetReason(got, helmv2.RemediatedCondition); r != helmv2.RollbackSucceededReason {
		t.Errorf("Remediated reason %q, want RollbackSucceeded: %s", r, describe(got))
	}
	if msg := conditions.GetMessage(got, meta.ReadyCondition); !contains(msg, "Failed to upgrade after 2 attempt(s)") {
		t.Errorf("Ready message %q", msg)
	}
	if d := configData(t, f.ns, "flaky-config"); d["greeting"] != "good" {
		t.Errorf("the rollback did not restore the last good values: %v", d)
	}
	if rels := helmReleases(t, f.ns); len(rels) == 0 {
		t.Fatal("the release was uninstalled")
	}

	setSpec(t, hr, func(h *helmv2.HelmRelease) {
		h.Spec.Values = &apiextensionsv1.JSON{Raw: []byte(`{"greeting":"fixed"}`)}
	})
	got = f.wait(hr, 90*time.Second, "to recover", func(h *helmv2.HelmRelease) bool {
		return conditions.IsReady(h) && h.Status.ObservedGeneration == h.Generation && !conditions.IsStalled(h)
	})
	if d := configData(t, f.ns, "flaky-config"); d["greeting"] != "fixed" {
		t.Errorf("the fix was not applied: %v", d)
	}
	if got.Status.UpgradeFailures != 0 {
		t.Errorf("failures not reset by the new spec: %d", got.Status.UpgradeFailures)
	}
}

func TestBadInputFailsClearlyAndUninstallsNothing(t *testing.T) {
	f := newFixture(t, "1.0.0")
	hr := f.release("app", "", nil)
	f.waitReady(hr, "1.0.0")

	// A template that fails to render.
	setSpec(t, hr, func(h *helmv2.HelmRelease) {
		h.Spec.Values = &apiextensionsv1.JSON{Raw: []byte(`{"failRender":true}`)}
	})
	got := f.waitReason(hr, "RetriesExceeded")
	if msg := conditions.GetMessage(got, meta.ReadyCondition); !contains(msg, "failRender is set") {
		t.Errorf("the render error is not in the message: %q", msg)
	}
	if len(helmReleases(t, f.ns)) == 0 {
		t.Fatal("a render failure uninstalled the release")
	}

	// Values that do not parse.
	if err := env.Client.Create(context.Background(), &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "broken"},
		Data:       map[string]string{"values.yaml": "greeting: [unclosed"},
	}); err != nil {
		t.Fatal(err)
	}
	setSpec(t, hr, func(h *helmv2.HelmRelease) {
		h.Spec.Values = nil
		h.Spec.ValuesFrom = []helmv2.ValuesReference{{Kind: "ConfigMap", Name: "broken"}}
	})
	got = f.waitReason(hr, "InitFailed")
	if msg := conditions.GetMessage(got, meta.ReadyCondition); !contains(msg, "not valid YAML") || !contains(msg, "broken") {
		t.Errorf("message %q", msg)
	}

	// A chart source whose tag does not exist.
	bad := &sourcev1.OCIRepository{
		ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "missing-tag"},
		Spec: sourcev1.OCIRepositorySpec{URL: f.registry.URL("charts/demo"), Interval: metav1.Duration{Duration: time.Hour}, Insecure: true,
			Reference:     &sourcev1.OCIRepositoryRef{Tag: "9.9.9"},
			LayerSelector: &sourcev1.OCILayerSelector{MediaType: testenv.HelmChartMediaType, Operation: sourcev1.OCILayerCopy}},
	}
	if err := env.Client.Create(context.Background(), bad); err != nil {
		t.Fatal(err)
	}
	other := f.release("other", "", func(h *helmv2.HelmRelease) { h.Spec.ChartRef.Name = "missing-tag" })
	got = f.wait(other, 60*time.Second, "to say why its source has no chart", func(h *helmv2.HelmRelease) bool {
		return contains(conditions.GetMessage(h, meta.ReadyCondition), "9.9.9")
	})
	if msg := conditions.GetMessage(got, meta.ReadyCondition); !contains(msg, "missing-tag") || conditions.GetReason(got, meta.ReadyCondition) != helmv2.ArtifactFailedReason {
		t.Errorf("message %q does not name the source (reason %s)", msg, conditions.GetReason(got, meta.ReadyCondition))
	}

	// A chart source whose registry is down: the HelmRelease names the
	// registry that could not be reached.
	down := &sourcev1.OCIRepository{
		ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "registry-down"},
		Spec: sourcev1.OCIRepositorySpec{URL: "oci://127.0.0.1:1/charts/demo", Interval: metav1.Duration{Duration: time.Hour}, Insecure: true,
			Reference:     &sourcev1.OCIRepositoryRef{Tag: "1.0.0"},
			LayerSelector: &sourcev1.OCILayerSelector{MediaType: testenv.HelmChartMediaType, Operation: sourcev1.OCILayerCopy}},
	}
	if err := env.Client.Create(context.Background(), down); err != nil {
		t.Fatal(err)
	}
	offline := f.release("offline", "", func(h *helmv2.HelmRelease) { h.Spec.ChartRef.Name = "registry-down" })
	f.wait(offline, 60*time.Second, "to name the unreachable registry", func(h *helmv2.HelmRelease) bool {
		return conditions.IsFalse(h, meta.ReadyCondition) && contains(conditions.GetMessage(h, meta.ReadyCondition), "registry 127.0.0.1:1 is unreachable")
	})
	dep := &appsv1.Deployment{}
	if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: f.ns, Name: "app"}, dep); err != nil {
		t.Errorf("the first release's Deployment is gone: %v", err)
	}
}

func TestAReleaseLeftPendingIsRecovered(t *testing.T) {
	f := newFixture(t, "1.0.0")
	hr := f.release("stuck", "greeting: one", nil)
	f.waitReady(hr, "1.0.0")

	// A crash in the middle of an upgrade leaves the release pending.
	cfg := action.NewConfiguration()
	if err := cfg.Init(helm.NewRESTClientGetter(env.Config, f.ns), f.ns, "secret"); err != nil {
		t.Fatal(err)
	}
	last, err := cfg.Releases.Last("stuck")
	if err != nil {
		t.Fatal(err)
	}
	rel := last.(*release.Release)
	rel.SetStatus(common.StatusPendingUpgrade, "interrupted")
	if err := cfg.Releases.Update(rel); err != nil {
		t.Fatal(err)
	}

	setSpec(t, hr, func(h *helmv2.HelmRelease) {
		h.Spec.Values = &apiextensionsv1.JSON{Raw: []byte(`{"greeting":"two"}`)}
	})
	f.wait(hr, 60*time.Second, "to upgrade past the pending release", func(h *helmv2.HelmRelease) bool {
		l := h.Status.History.Latest()
		return conditions.IsReady(h) && h.Status.ObservedGeneration == h.Generation && l != nil && l.Version == 2
	})
	if d := configData(t, f.ns, "stuck-config"); d["greeting"] != "two" {
		t.Errorf("values not applied after recovery: %v", d)
	}
	var events corev1.EventList
	if err := env.Client.List(context.Background(), &events, client.InNamespace(f.ns)); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, e := range events.Items {
		found = found || e.Reason == "PendingReleaseRecovered"
	}
	if !found {
		t.Error("no PendingReleaseRecovered event")
	}
}

func TestPostRenderersPatchTheRelease(t *testing.T) {
	f := newFixture(t, "1.0.0")
	hr := f.release("patched", "", func(h *helmv2.HelmRelease) {
		h.Spec.PostRenderers = []helmv2.PostRenderer{{Kustomize: &helmv2.Kustomize{
			Patches: []kustomize.Patch{{
				Target: &kustomize.Selector{Kind: "Deployment"},
				Patch:  `[{"op": "add", "path": "/metadata/annotations", "value": {"patched-by": "post-renderer"}}]`,
			}},
			Images: []kustomize.Image{{Name: "example.invalid/demo", NewTag: "pinned"}},
		}}}
		h.Spec.CommonMetadata = &helmv2.CommonMetadata{Labels: map[string]string{"team": "web"}}
	})
	f.waitReady(hr, "1.0.0")
	dep := &appsv1.Deployment{}
	if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: f.ns, Name: "patched"}, dep); err != nil {
		t.Fatal(err)
	}
	if dep.Annotations["patched-by"] != "post-renderer" || dep.Labels["team"] != "web" {
		t.Errorf("post-renderer not applied: annotations %v labels %v", dep.Annotations, dep.Labels)
	}
	if img := dep.Spec.Template.Spec.Containers[0].Image; img != "example.invalid/demo:pinned" {
		t.Errorf("image %q, want the post-renderer's tag", img)
	}
}

func TestDependsOnAcrossKustomizationsAndHelmReleases(t *testing.T) {
	f := newFixture(t, "1.0.0")
	ctx := context.Background()
	// A Kustomization that waits for the release, which waits for a
	// Kustomization that does not exist yet.
	after := &kustomizev1.Kustomization{
		ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "after"},
		Spec: kustomizev1.KustomizationSpec{
			Interval: metav1.Duration{Duration: time.Hour}, Path: "./", Prune: true,
			SourceRef: kustomizev1.CrossNamespaceSourceReference{Kind: sourcev1.GitRepositoryKind, Name: "none"},
			DependsOn: []kustomizev1.DependencyReference{{Name: "db"}},
		},
	}
	if err := env.Client.Create(ctx, after); err != nil {
		t.Fatal(err)
	}
	hr := f.release("db", "", func(h *helmv2.HelmRelease) {
		h.Spec.DependsOn = []helmv2.DependencyReference{{Name: "base"}}
	})
	got := f.waitReason(hr, helmv2.DependencyNotReadyReason)
	if msg := conditions.GetMessage(got, meta.ReadyCondition); !contains(msg, "base") {
		t.Errorf("message %q does not name the dependency", msg)
	}

	git := testenv.NewGitServer(t, "", "")
	repo := git.Repo(t, "base")
	repo.Commit("main", map[string]string{"cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: base}\ndata: {k: v}\n"}, "base")
	if err := env.Client.Create(ctx, &sourcev1.GitRepository{
		ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "base"},
		Spec: sourcev1.GitRepositorySpec{URL: git.HTTPURL("base"), Interval: metav1.Duration{Duration: time.Hour},
			Reference: &sourcev1.GitRepositoryRef{Branch: "main"}},
	}); err != nil {
		t.Fatal(err)
	}
	if err := env.Client.Create(ctx, &kustomizev1.Kustomization{
		ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "base"},
		Spec: kustomizev1.KustomizationSpec{Interval: metav1.Duration{Duration: time.Hour}, Path: "./", Prune: true, TargetNamespace: f.ns,
			SourceRef: kustomizev1.CrossNamespaceSourceReference{Kind: sourcev1.GitRepositoryKind, Name: "base"}},
	}); err != nil {
		t.Fatal(err)
	}
	f.waitReady(hr, "1.0.0")

	// The Kustomization that depends on the release now waits on its own
	// source only: the dependency is satisfied.
	deadline := time.Now().Add(60 * time.Second)
	for {
		k := &kustomizev1.Kustomization{}
		if err := env.Client.Get(ctx, client.ObjectKeyFromObject(after), k); err == nil &&
			conditions.GetReason(k, meta.ReadyCondition) == meta.ArtifactFailedReason {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the Kustomization still waits on the HelmRelease")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestDependencyCycleAcrossKindsIsReported(t *testing.T) {
	f := newFixture(t, "1.0.0")
	if err := env.Client.Create(context.Background(), &kustomizev1.Kustomization{
		ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "ks"},
		Spec: kustomizev1.KustomizationSpec{Interval: metav1.Duration{Duration: time.Hour}, Path: "./",
			SourceRef: kustomizev1.CrossNamespaceSourceReference{Kind: sourcev1.GitRepositoryKind, Name: "none"},
			DependsOn: []kustomizev1.DependencyReference{{Name: "hr"}}},
	}); err != nil {
		t.Fatal(err)
	}
	hr := f.release("hr", "", func(h *helmv2.HelmRelease) {
		h.Spec.DependsOn = []helmv2.DependencyReference{{Name: "ks"}}
	})
	got := f.wait(hr, 60*time.Second, "to report the cycle", func(h *helmv2.HelmRelease) bool {
		return conditions.IsStalled(h) && contains(conditions.GetMessage(h, meta.ReadyCondition), "cycle")
	})
	msg := conditions.GetMessage(got, meta.ReadyCondition)
	if !contains(msg, "HelmRelease/hr") || !contains(msg, "Kustomization/ks") {
		t.Errorf("the cycle is not written out with its kinds: %q", msg)
	}
}

func TestDriftDetectionCorrectsAHandEditedDeployment(t *testing.T) {
	f := newFixture(t, "1.0.0")
	hr := f.release("drifty", "replicas: 1", func(h *helmv2.HelmRelease) {
		h.Spec.DriftDetection = &helmv2.DriftDetection{Mode: helmv2.DriftDetectionEnabled}
	})
	f.waitReady(hr, "1.0.0")
	ctx := context.Background()
	dep := &appsv1.Deployment{}
	key := client.ObjectKey{Namespace: f.ns, Name: "drifty"}
	if err := env.Client.Get(ctx, key, dep); err != nil {
		t.Fatal(err)
	}
	three := int32(3)
	dep.Spec.Replicas = &three
	if err := env.Client.Update(ctx, dep, client.FieldOwner("kubectl-edit")); err != nil {
		t.Fatal(err)
	}
	// An object opted out of drift detection keeps its hand edit.
	cm := &corev1.ConfigMap{}
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: f.ns, Name: "drifty-config"}, cm); err != nil {
		t.Fatal(err)
	}
	cm.Annotations = map[string]string{helmv2.DriftDetectionMetadataKey: helmv2.DriftDetectionDisabledValue}
	cm.Data["greeting"] = "edited by hand"
	if err := env.Client.Update(ctx, cm, client.FieldOwner("kubectl-edit")); err != nil {
		t.Fatal(err)
	}
	annotate(t, hr, meta.ReconcileRequestAnnotation)
	deadline := time.Now().Add(60 * time.Second)
	for {
		if err := env.Client.Get(ctx, key, dep); err == nil && *dep.Spec.Replicas == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the hand edit was not corrected: replicas %d", *dep.Spec.Replicas)
		}
		time.Sleep(100 * time.Millisecond)
	}
	var events corev1.EventList
	if err := env.Client.List(ctx, &events, client.InNamespace(f.ns)); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, e := range events.Items {
		found = found || (e.Reason == helmv2.DriftDetectedReason && contains(e.Message, "Deployment/"+f.ns+"/drifty"))
	}
	if !found {
		t.Error("no DriftDetected event names the Deployment")
	}
	if n := len(helmReleases(t, f.ns)); n != 1 {
		t.Errorf("drift correction made %d releases, want the one", n)
	}
	if d := configData(t, f.ns, "drifty-config"); d["greeting"] != "edited by hand" {
		t.Errorf("the ConfigMap annotated %s: disabled was corrected: %v", helmv2.DriftDetectionMetadataKey, d)
	}
	for _, e := range events.Items {
		if e.Reason == helmv2.DriftDetectedReason && (contains(e.Message, "ConfigMap/") || contains(e.Message, "Service/")) {
			// The ConfigMap opted out; the Service was never touched.
			t.Errorf("drift reported on an object that did not drift: %s", e.Message)
		}
	}
}

// TestRollbackSkipsRevisionsThatFailed makes two upgrades fail in a row,
// the first without remediation: the rollback after the second goes back
// to the last revision that was deployed, not to the failed one before it.
func TestRollbackSkipsRevisionsThatFailed(t *testing.T) {
	f := newFixture(t, "1.0.0")
	crash := `"podLabels":{"pod-init-container-running-failed.stage.kwok.x-k8s.io":"true"}`
	hr := f.release("twice", "greeting: good", func(h *helmv2.HelmRelease) {
		h.Spec.Timeout = &metav1.Duration{Duration: 5 * time.Second}
	})
	f.waitReady(hr, "1.0.0")

	// No retries: the failed revision 2 stays.
	setSpec(t, hr, func(h *helmv2.HelmRelease) {
		h.Spec.Values = &apiextensionsv1.JSON{Raw: []byte(`{"greeting":"bad-1",` + crash + `}`)}
	})
	f.wait(hr, 90*time.Second, "to fail its first upgrade", func(h *helmv2.HelmRelease) bool {
		l := h.Status.History.Latest()
		return l != nil && l.Version == 2 && l.Status == "failed" && h.Status.ObservedGeneration == h.Generation
	})

	// One retry and rollback: revision 3 fails, the rollback must target 1.
	setSpec(t, hr, func(h *helmv2.HelmRelease) {
		h.Spec.Values = &apiextensionsv1.JSON{Raw: []byte(`{"greeting":"bad-2",` + crash + `}`)}
		h.Spec.Upgrade = &helmv2.Upgrade{Remediation: &helmv2.UpgradeRemediation{Retries: 1}}
	})
	got := f.wait(hr, 120*time.Second, "to roll back", func(h *helmv2.HelmRelease) bool {
		return conditions.GetReason(h, helmv2.RemediatedCondition) == helmv2.RollbackSucceededReason
	})
	if msg := conditions.GetMessage(got, helmv2.RemediatedCondition); !contains(msg, "/twice.v1 with chart demo@1.0.0") {
		t.Errorf("the rollback did not name revision 1 as its target: %q", msg)
	}
	if d := configData(t, f.ns, "twice-config"); d["greeting"] != "good" {
		t.Errorf("the rollback restored %v, want the values of revision 1", d)
	}
}

// TestReadyExprReplacesTheDependencyCheck makes a HelmRelease depend on
// one that never turns Ready: a readyExpr that holds lets it install all
// the same, as in Flux; one that does not compile stalls it.
func TestReadyExprReplacesTheDependencyCheck(t *testing.T) {
	f := newFixture(t, "1.0.0")
	f.release("db", "", func(h *helmv2.HelmRelease) { h.Spec.ChartRef.Name = "no-such-source" })
	app := f.release("app", "", func(h *helmv2.HelmRelease) {
		h.Spec.DependsOn = []meta.DependencyReference{{Name: "db", ReadyExpr: "dep.metadata.name == 'db' && self.metadata.name == 'app'"}}
	})
	f.waitReady(app, "1.0.0")
	bad := f.release("bad", "", func(h *helmv2.HelmRelease) {
		h.Spec.DependsOn = []meta.DependencyReference{{Name: "db", ReadyExpr: "dep.("}}
	})
	got := f.waitReason(bad, meta.InvalidCELExpressionReason)
	if !conditions.IsStalled(got) || !contains(conditions.GetMessage(got, meta.ReadyCondition), "readyExpr") {
		t.Errorf("want a stall naming the readyExpr: %s", describe(got))
	}
}
