package helm_test

import (
	"context"
	"strings"
	"testing"
	"time"

	helmv2 "github.com/fluxcd/helm-controller/api/v2"
	"github.com/fluxcd/pkg/apis/meta"
	"github.com/fluxcd/pkg/runtime/conditions"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

func configData(t *testing.T, ns, name string) map[string]string {
	t.Helper()
	cm := &corev1.ConfigMap{}
	if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, cm); err != nil {
		t.Fatalf("reading ConfigMap %s: %v", name, err)
	}
	return cm.Data
}

func TestInstallThenUpgradeOnValuesAndOnANewChartVersion(t *testing.T) {
	f := newFixture(t, "1.0.0")
	hr := f.release("web", "greeting: hi", nil)
	got := f.waitReady(hr, "1.0.0")

	if r := conditions.GetReason(got, helmv2.ReleasedCondition); r != helmv2.InstallSucceededReason {
		t.Errorf("Released reason %q, want InstallSucceeded: %s", r, describe(got))
	}
	if got.Status.LastAttemptedRevision != f.chartVersion("1.0.0") || got.Status.LastAttemptedConfigDigest == "" || got.Status.StorageNamespace != f.ns {
		t.Errorf("status: revision %q, config digest %q, storage %q", got.Status.LastAttemptedRevision, got.Status.LastAttemptedConfigDigest, got.Status.StorageNamespace)
	}
	if d := configData(t, f.ns, "web-config"); d["greeting"] != "hi" || d["version"] != f.chartVersion("1.0.0") {
		t.Errorf("the values were not applied: %v", d)
	}
	dep := &appsv1.Deployment{}
	if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: f.ns, Name: "web"}, dep); err != nil {
		t.Fatal(err)
	}
	if dep.Labels["helm.toolkit.fluxcd.io/name"] != "web" || dep.Labels["helm.toolkit.fluxcd.io/namespace"] != f.ns {
		t.Errorf("origin labels missing: %v", dep.Labels)
	}
	if dep.Status.AvailableReplicas != 1 {
		t.Errorf("Ready before the Deployment was Available")
	}
	// `helm list` reads weir's releases from Helm's own storage.
	rels := helmReleases(t, f.ns)
	if len(rels) != 1 || rels[0].Name != "web" || rels[0].Version != 1 || rels[0].Info.Status.String() != "deployed" {
		t.Fatalf("helm list sees %d releases: %+v", len(rels), rels)
	}

	setSpec(t, hr, func(h *helmv2.HelmRelease) {
		h.Spec.Values = &apiextensionsv1.JSON{Raw: []byte(`{"greeting":"bonjour"}`)}
	})
	got = f.wait(hr, 60*time.Second, "to upgrade on the values change", func(h *helmv2.HelmRelease) bool {
		l := h.Status.History.Latest()
		return conditions.IsReady(h) && l != nil && l.Version == 2
	})
	if r := conditions.GetReason(got, meta.ReadyCondition); r != helmv2.UpgradeSucceededReason {
		t.Errorf("Ready reason %q after the values change", r)
	}
	if d := configData(t, f.ns, "web-config"); d["greeting"] != "bonjour" {
		t.Errorf("values change not applied: %v", d)
	}

	f.push("1.1.0", chartFiles("1.1.0"))
	f.push("2.0.0-rc.1", chartFiles("2.0.0-rc.1"))
	f.refreshSource()
	f.waitReady(hr, "1.1.0")
	if d := configData(t, f.ns, "web-config"); d["version"] != f.chartVersion("1.1.0") || d["greeting"] != "bonjour" {
		t.Errorf("chart bump not applied: %v", d)
	}
}

func TestValuesFromConfigMapsAndSecrets(t *testing.T) {
	f := newFixture(t, "1.0.0")
	ctx := context.Background()
	objs := []client.Object{
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "base"},
			Data: map[string]string{"values.yaml": "greeting: from-configmap\nreplicas: 3\n"}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "token"},
			Data: map[string][]byte{"token": []byte("s3cret")}},
	}
	for _, o := range objs {
		if err := env.Client.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	hr := f.release("vals", "replicas: 1", func(h *helmv2.HelmRelease) {
		h.Spec.ValuesFrom = []helmv2.ValuesReference{
			{Kind: "ConfigMap", Name: "base"},
			{Kind: "Secret", Name: "token", ValuesKey: "token", TargetPath: "extra"},
			{Kind: "ConfigMap", Name: "not-there", Optional: true},
		}
	})
	f.waitReady(hr, "1.0.0")
	d := configData(t, f.ns, "vals-config")
	if d["greeting"] != "from-configmap" || d["extra"] != "s3cret" {
		t.Errorf("valuesFrom not merged: %v", d)
	}
	dep := &appsv1.Deployment{}
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: f.ns, Name: "vals"}, dep); err != nil {
		t.Fatal(err)
	}
	if *dep.Spec.Replicas != 1 {
		t.Errorf("inline values should win over valuesFrom: replicas %d", *dep.Spec.Replicas)
	}

	setSpec(t, hr, func(h *helmv2.HelmRelease) {
		h.Spec.ValuesFrom = append(h.Spec.ValuesFrom, helmv2.ValuesReference{Kind: "Secret", Name: "missing"})
	})
	got := f.waitReason(hr, "InitFailed")
	if msg := conditions.GetMessage(got, meta.ReadyCondition); !contains(msg, "could not find Secret") || !contains(msg, "missing") {
		t.Errorf("message %q does not name the missing Secret", msg)
	}
	for _, c := range got.Status.Conditions {
		if contains(c.Message, "s3cret") {
			t.Errorf("a Secret value reached condition %s", c.Type)
		}
	}
	if d := configData(t, f.ns, "vals-config"); d["greeting"] != "from-configmap" {
		t.Errorf("the failed reconcile changed the release: %v", d)
	}
}

func TestReleaseIsUninstalledWhenTheHelmReleaseIsDeleted(t *testing.T) {
	f := newFixture(t, "1.0.0")
	hr := f.release("gone", "", nil)
	f.waitReady(hr, "1.0.0")
	if err := env.Client.Delete(context.Background(), hr); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(hr), &helmv2.HelmRelease{})
		depErr := env.Client.Get(context.Background(), client.ObjectKey{Namespace: f.ns, Name: "gone"}, &appsv1.Deployment{})
		if apierrors.IsNotFound(err) && apierrors.IsNotFound(depErr) && len(helmReleases(t, f.ns)) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after delete: HelmRelease %v, Deployment %v, %d releases in storage", err, depErr, len(helmReleases(t, f.ns)))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestRenamedReleaseReplacesTheOldOne changes spec.releaseName of an
// installed HelmRelease: the old release is uninstalled (its objects and
// storage go) and the new one installed, as helm-controller does.
func TestRenamedReleaseReplacesTheOldOne(t *testing.T) {
	f := newFixture(t, "1.0.0")
	hr := f.release("renamed", "", nil)
	f.waitReady(hr, "1.0.0")
	setSpec(t, hr, func(h *helmv2.HelmRelease) { h.Spec.ReleaseName = "fresh" })
	got := f.wait(hr, 90*time.Second, "to install the renamed release", func(h *helmv2.HelmRelease) bool {
		l := h.Status.History.Latest()
		return conditions.IsReady(h) && h.Status.ObservedGeneration == h.Generation && l != nil && l.Name == "fresh"
	})
	if n := len(got.Status.History); n != 1 {
		t.Errorf("history has %d entries, want the new release's only: %+v", n, got.Status.History)
	}
	var names []string
	for _, r := range helmReleases(t, f.ns) {
		names = append(names, r.Name)
	}
	if len(names) != 1 || names[0] != "fresh" {
		t.Errorf("releases in storage: %v, want [fresh]", names)
	}
	if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: f.ns, Name: "renamed-config"}, &corev1.ConfigMap{}); !apierrors.IsNotFound(err) {
		t.Errorf("the old release's ConfigMap is still there (%v)", err)
	}
	if d := configData(t, f.ns, "fresh-config"); d["greeting"] == "" {
		t.Errorf("the new release's ConfigMap: %v", d)
	}
}

// TestAnotherChartNameReinstallsUnlessInPlace points two HelmReleases at a
// chart of another name: by default (chartNameChangeStrategy Reinstall)
// the release is uninstalled and installed again, starting at revision 1;
// with InPlaceUpdate it is upgraded to revision 2.
func TestAnotherChartNameReinstallsUnlessInPlace(t *testing.T) {
	f := newFixture(t, "1.0.0")
	ctx := context.Background()
	other := chartFiles("1.0.0")
	other["Chart.yaml"] = strings.Replace(other["Chart.yaml"], "name: demo", "name: other", 1)
	f.registry.PushChart(t, "charts/other", "1.0.0", writeChart(t, other))
	src := f.source.DeepCopy()
	src.ObjectMeta = metav1.ObjectMeta{Namespace: f.ns, Name: "other"}
	src.Spec.URL = f.registry.URL("charts/other")
	if err := env.Client.Create(ctx, src); err != nil {
		t.Fatal(err)
	}
	reinstall := f.release("reinstall", "", nil)
	inPlace := f.release("in-place", "", func(h *helmv2.HelmRelease) {
		h.Spec.Upgrade = &helmv2.Upgrade{ChartNameChangeStrategy: helmv2.ChartNameChangeStrategyInPlaceUpdate}
	})
	f.waitReady(reinstall, "1.0.0")
	f.waitReady(inPlace, "1.0.0")
	for _, hr := range []*helmv2.HelmRelease{reinstall, inPlace} {
		setSpec(t, hr, func(h *helmv2.HelmRelease) { h.Spec.ChartRef.Name = "other" })
	}
	for _, hr := range []*helmv2.HelmRelease{reinstall, inPlace} {
		got := f.wait(hr, 90*time.Second, "to run the other chart", func(h *helmv2.HelmRelease) bool {
			l := h.Status.History.Latest()
			return conditions.IsReady(h) && h.Status.ObservedGeneration == h.Generation && l != nil && l.ChartName == "other"
		})
		l := got.Status.History.Latest()
		switch {
		case hr == reinstall && (l.Version != 1 || len(got.Status.History) != 1):
			t.Errorf("reinstall: revision %d with %d history entries, want a fresh revision 1: %s", l.Version, len(got.Status.History), describe(got))
		case hr == inPlace && l.Version != 2:
			t.Errorf("in-place: revision %d, want one upgrade of revision 1: %s", l.Version, describe(got))
		}
	}
}

// TestAReleaseWithoutValuesIsLeftAlone reconciles an installed HelmRelease
// that sets no values again and again: Helm stores its values as null,
// which must not read as a change, so no upgrade runs.
func TestAReleaseWithoutValuesIsLeftAlone(t *testing.T) {
	f := newFixture(t, "1.0.0")
	hr := f.release("plain", "", nil)
	f.waitReady(hr, "1.0.0")
	for i := range 3 {
		annotate(t, hr, meta.ReconcileRequestAnnotation)
		got := f.wait(hr, 30*time.Second, "to handle the request", func(h *helmv2.HelmRelease) bool {
			return h.Status.LastHandledReconcileAt != "" && h.Status.LastHandledReconcileAt == h.GetAnnotations()[meta.ReconcileRequestAnnotation]
		})
		if l := got.Status.History.Latest(); l == nil || l.Version != 1 {
			t.Fatalf("request %d: the release moved to %s, want revision 1 left alone", i+1, describe(got))
		}
	}
	if n := len(helmReleases(t, f.ns)); n != 1 {
		t.Errorf("%d release revisions in storage, want 1", n)
	}
}

// spec.targetNamespace places the chart's objects that name no namespace
// in the target namespace, as helm-controller does, while the release is
// stored in the HelmRelease's own; a target namespace that does not exist
// fails the install, saying so, unless install.createNamespace is set.
func TestTargetNamespacePlacesTheChartsObjects(t *testing.T) {
	f := newFixture(t, "1.0.0")
	target := env.Namespace(t)
	hr := f.release("placed", "greeting: there", func(h *helmv2.HelmRelease) { h.Spec.TargetNamespace = target })
	got := f.waitReady(hr, "1.0.0")
	if d := configData(t, target, target+"-placed-config"); d["greeting"] != "there" {
		t.Errorf("the ConfigMap in the target namespace holds %v", d)
	}
	cm := &corev1.ConfigMap{}
	if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: f.ns, Name: target + "-placed-config"}, cm); !apierrors.IsNotFound(err) {
		t.Errorf("the chart's ConfigMap was also found in the HelmRelease's namespace (%v)", err)
	}
	if got.Status.StorageNamespace != f.ns || len(helmReleases(t, f.ns)) != 1 {
		t.Errorf("the release is not stored in the HelmRelease's namespace: storage %q", got.Status.StorageNamespace)
	}

	missing := "absent-" + f.ns
	hr = f.release("nowhere", "", func(h *helmv2.HelmRelease) {
		h.Spec.TargetNamespace = missing
		h.Spec.Install = &helmv2.Install{Remediation: &helmv2.InstallRemediation{Retries: 0}}
	})
	got = f.wait(hr, 90*time.Second, "Released=False/InstallFailed", func(h *helmv2.HelmRelease) bool {
		return conditions.IsFalse(h, helmv2.ReleasedCondition) && conditions.GetReason(h, helmv2.ReleasedCondition) == helmv2.InstallFailedReason
	})
	if msg := conditions.GetMessage(got, meta.ReadyCondition); conditions.IsReady(got) || !strings.Contains(msg, "namespaces \""+missing+"\" not found") {
		t.Errorf("Ready says %q, want not Ready with the missing namespace named", msg)
	}

	hr = f.release("created", "", func(h *helmv2.HelmRelease) {
		h.Spec.TargetNamespace = "made-" + f.ns
		h.Spec.Install = &helmv2.Install{CreateNamespace: true}
	})
	t.Cleanup(func() {
		_ = env.Client.Delete(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "made-" + f.ns}})
	})
	f.waitReady(hr, "1.0.0")
	configData(t, "made-"+f.ns, "made-"+f.ns+"-created-config")
}
