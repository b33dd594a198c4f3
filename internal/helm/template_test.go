package helm_test

import (
	"context"
	"testing"
	"time"

	helmv2 "github.com/fluxcd/helm-controller/api/v2"
	"github.com/fluxcd/pkg/apis/meta"
	"github.com/fluxcd/pkg/runtime/conditions"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/weirhq/weir/internal/testenv"
)

// TestChartTemplateFromAHelmRepository installs from spec.chart with an
// HTTP HelmRepository, as many repositories still do: the HelmChart is made
// as helm-controller names it, a new version in range is picked up, and it
// goes with the HelmRelease.
func TestChartTemplateFromAHelmRepository(t *testing.T) {
	ns := env.Namespace(t)
	ctx := context.Background()
	repo := testenv.NewHelmRepo(t, "", "")
	repo.AddChart(t, writeChart(t, chartFiles("1.0.0")))
	if err := env.Client.Create(ctx, &sourcev1.HelmRepository{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "charts"},
		Spec:       sourcev1.HelmRepositorySpec{URL: repo.URL, Interval: metav1.Duration{Duration: time.Hour}},
	}); err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, ns: ns}
	hr := &helmv2.HelmRelease{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "tpl"},
		Spec: helmv2.HelmReleaseSpec{
			Interval: metav1.Duration{Duration: time.Hour},
			Timeout:  &metav1.Duration{Duration: 30 * time.Second},
			Chart: &helmv2.HelmChartTemplate{Spec: helmv2.HelmChartTemplateSpec{
				Chart: "demo", Version: "1.x",
				SourceRef: helmv2.CrossNamespaceObjectReference{Kind: sourcev1.HelmRepositoryKind, Name: "charts"},
			}},
			Values: &apiextensionsv1.JSON{Raw: []byte(`{"greeting":"from-index"}`)},
		},
	}
	if err := env.Client.Create(ctx, hr); err != nil {
		t.Fatal(err)
	}
	got := f.waitReady(hr, "1.0.0")
	if got.Status.HelmChart != ns+"/"+ns+"-tpl" {
		t.Errorf("status.helmChart = %q, want %s/%s-tpl", got.Status.HelmChart, ns, ns)
	}
	if d := configData(t, ns, "tpl-config"); d["greeting"] != "from-index" {
		t.Errorf("values not applied: %v", d)
	}

	repo.AddChart(t, writeChart(t, chartFiles("1.2.0")))
	hrepo := &sourcev1.HelmRepository{}
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "charts"}, hrepo); err != nil {
		t.Fatal(err)
	}
	annotate(t, hrepo, meta.ReconcileRequestAnnotation)
	f.waitReady(hr, "1.2.0")

	if err := env.Client.Delete(ctx, hr); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: ns + "-tpl"}, &sourcev1.HelmChart{})
		if apierrors.IsNotFound(err) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the HelmChart outlived its HelmRelease: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestAFailedInstallIsUninstalledAndRetried remediates a failed install
// by uninstalling it, then installs again once the values are fixed.
func TestAFailedInstallIsUninstalledAndRetried(t *testing.T) {
	f := newFixture(t, "1.0.0")
	hr := f.release("first", `{"nodeSelector":{"no-such-node":"x"}}`, func(h *helmv2.HelmRelease) {
		h.Spec.Timeout = &metav1.Duration{Duration: 4 * time.Second}
		h.Spec.Install = &helmv2.Install{Remediation: &helmv2.InstallRemediation{Retries: 1}}
	})
	got := f.wait(hr, 90*time.Second, "to run out of install retries", func(h *helmv2.HelmRelease) bool {
		return conditions.IsStalled(h)
	})
	if got.Status.InstallFailures != 2 {
		t.Errorf("installFailures = %d, want 2", got.Status.InstallFailures)
	}
	if r := conditions.GetReason(got, helmv2.RemediatedCondition); r != helmv2.UninstallSucceededReason {
		t.Errorf("Remediated reason %q, want UninstallSucceeded: %s", r, describe(got))
	}
	setSpec(t, hr, func(h *helmv2.HelmRelease) { h.Spec.Values = nil })
	f.waitReady(hr, "1.0.0")
}

// A chart template's verify is copied to the HelmChart: a chart from an
// HTTP HelmRepository cannot be verified (by Flux either), so the HelmChart
// stalls, rather than a release installed from a chart nobody checked.
func TestChartTemplateVerifyIsNotIgnored(t *testing.T) {
	ns := env.Namespace(t)
	ctx := context.Background()
	repo := testenv.NewHelmRepo(t, "", "")
	repo.AddChart(t, writeChart(t, chartFiles("1.0.0")))
	if err := env.Client.Create(ctx, &sourcev1.HelmRepository{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "charts"},
		Spec:       sourcev1.HelmRepositorySpec{URL: repo.URL, Interval: metav1.Duration{Duration: time.Hour}},
	}); err != nil {
		t.Fatal(err)
	}
	hr := &helmv2.HelmRelease{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "signed"},
		Spec: helmv2.HelmReleaseSpec{
			Interval: metav1.Duration{Duration: time.Hour},
			Chart: &helmv2.HelmChartTemplate{Spec: helmv2.HelmChartTemplateSpec{
				Chart: "demo", Version: "1.x",
				SourceRef: helmv2.CrossNamespaceObjectReference{Kind: sourcev1.HelmRepositoryKind, Name: "charts"},
				Verify:    &helmv2.HelmChartTemplateVerification{Provider: "cosign"},
			}},
		},
	}
	if err := env.Client.Create(ctx, hr); err != nil {
		t.Fatal(err)
	}
	chart := &sourcev1.HelmChart{}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: ns + "-signed"}, chart)
		if err == nil && conditions.IsStalled(chart) && conditions.GetReason(chart, meta.ReadyCondition) == "ChartVerificationError" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the HelmChart did not stall with ChartVerificationError: %v %+v", err, chart.Status.Conditions)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if chart.Spec.Verify == nil || chart.Spec.Verify.Provider != "cosign" {
		t.Errorf("HelmChart spec.verify = %+v, want provider cosign", chart.Spec.Verify)
	}
	got := &helmv2.HelmRelease{}
	if err := env.Client.Get(ctx, client.ObjectKeyFromObject(hr), got); err != nil {
		t.Fatal(err)
	}
	if conditions.IsReady(got) || len(got.Status.History) != 0 {
		t.Errorf("the release was installed from a chart that was not verified: %+v", got.Status)
	}
}
