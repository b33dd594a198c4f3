package helmchart_test

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	helmv2 "github.com/fluxcd/helm-controller/api/v2"
	"github.com/fluxcd/pkg/apis/meta"
	"github.com/fluxcd/pkg/runtime/conditions"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/weirhq/weir/internal/cosign"
	"github.com/weirhq/weir/internal/testenv"
)

// waitReleaseData waits until the release's ConfigMap (the test chart's
// template) holds version.
func waitReleaseData(t *testing.T, ns, name, version string) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		var cm corev1.ConfigMap
		err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, &cm)
		if err == nil && cm.Data["version"] == version {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the release's ConfigMap never held version %q (last: %v, %v)", version, cm.Data, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// checkChartRefused checks source-controller's status for a chart whose
// signature does not verify, and that the stored chart is still served.
func checkChartRefused(t *testing.T, got *sourcev1.HelmChart, chartURL, why, key, kept string) {
	t.Helper()
	ready := conditions.Get(got, meta.ReadyCondition)
	verified := conditions.Get(got, sourcev1.SourceVerifiedCondition)
	if ready.Reason != "ChartVerificationError" || conditions.GetReason(got, sourcev1.BuildFailedCondition) != "ChartVerificationError" ||
		verified == nil || verified.Status != metav1.ConditionFalse || verified.Reason != sourcev1.VerificationError {
		t.Fatalf("want Ready=False and BuildFailed with ChartVerificationError, SourceVerified=False with VerificationError: %s", describe(got))
	}
	for _, want := range []string{"chart verification error: failed to verify " + chartURL + ": no matching signatures were found for '", why, "trusted keys: " + key} {
		if !strings.Contains(ready.Message, want) {
			t.Errorf("Ready message %q does not say %q", ready.Message, want)
		}
	}
	if got.Status.Artifact == nil || got.Status.Artifact.Revision != kept {
		t.Errorf("the chart %s is not served any more: %s", kept, describe(got))
	}
}

func TestOnlyChartsSignedByATrustedKeyAreInstalled(t *testing.T) {
	ns := env.Namespace(t)
	reg := testenv.NewRegistry(t, "", "")
	trusted, other := testenv.NewCosignKey(t), testenv.NewCosignKey(t)
	createSecret(t, ns, "cosign-keys", "", map[string][]byte{"cosign.pub": trusted.PublicPEM})
	k, err := cosign.ParseKey("cosign.pub", trusted.PublicPEM)
	if err != nil {
		t.Fatal(err)
	}
	key := k.String()
	push := func(version string) string {
		return reg.PushChart(t, "charts/app", version, testenv.WriteChart(t, "app", version, map[string]string{"values.yaml": "data:\n  version: v" + version + "\n"}))
	}
	reg.CosignSign(t, "charts/app", push("1.0.0"), trusted)
	newHelmRepository(t, ns, "charts", reg.URL("charts"), func(o *sourcev1.HelmRepository) { o.Spec.Type = sourcev1.HelmRepositoryTypeOCI })

	// A HelmRelease's chart template carries verify to its HelmChart.
	hr := &helmv2.HelmRelease{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "app"},
		Spec: helmv2.HelmReleaseSpec{
			Interval: metav1.Duration{Duration: time.Hour},
			Timeout:  &metav1.Duration{Duration: 30 * time.Second},
			Chart: &helmv2.HelmChartTemplate{Spec: helmv2.HelmChartTemplateSpec{
				Chart: "app", Version: "*",
				SourceRef: helmv2.CrossNamespaceObjectReference{Kind: sourcev1.HelmRepositoryKind, Name: "charts"},
				Verify:    &helmv2.HelmChartTemplateVerification{Provider: "cosign", SecretRef: &meta.LocalObjectReference{Name: "cosign-keys"}},
			}},
		},
	}
	if err := env.Client.Create(context.Background(), hr); err != nil {
		t.Fatal(err)
	}
	chart := &sourcev1.HelmChart{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: ns + "-app"}}
	got := waitRevision(t, chart, "1.0.0")
	if c := conditions.Get(got, sourcev1.SourceVerifiedCondition); c == nil || c.Status != metav1.ConditionTrue ||
		c.Reason != meta.SucceededReason || c.Message != "verified signature of version 1.0.0" {
		t.Errorf("SourceVerified: %+v", c)
	}
	waitReleaseData(t, ns, "app", "v1.0.0")

	// An unsigned version is refused; the release stays as it is.
	push("1.1.0")
	at := requestReconcile(t, chart)
	got = waitChart(t, chart, "the new version refused", func(o *sourcev1.HelmChart) bool {
		return o.Status.LastHandledReconcileAt == at && conditions.IsFalse(o, meta.ReadyCondition)
	})
	checkChartRefused(t, got, reg.URL("charts/app")+":1.1.0", "and no sigstore bundle among its referrers)", key, "1.0.0")
	waitEvent(t, ns, chart.Name, "ChartVerificationError")

	// So is one signed by a key that is not in the Secret.
	reg.CosignSign(t, "charts/app", reg.Digest(t, "charts/app", "1.1.0"), other)
	at = requestReconcile(t, chart)
	got = waitChart(t, chart, "the new version refused", func(o *sourcev1.HelmChart) bool {
		return o.Status.LastHandledReconcileAt == at && conditions.IsFalse(o, meta.ReadyCondition)
	})
	checkChartRefused(t, got, reg.URL("charts/app")+":1.1.0", "holds a signature by another key", key, "1.0.0")
	waitReleaseData(t, ns, "app", "v1.0.0")

	// Signed by the trusted key, it is installed.
	reg.CosignSign(t, "charts/app", reg.Digest(t, "charts/app", "1.1.0"), trusted)
	requestReconcile(t, chart)
	waitRevision(t, chart, "1.1.0")
	waitReleaseData(t, ns, "app", "v1.1.0")
}

func TestChartVerificationWeirCannotDoStalls(t *testing.T) {
	ns := env.Namespace(t)
	reg := testenv.NewRegistry(t, "", "")
	reg.PushChart(t, "charts/app", "1.0.0", testenv.WriteChart(t, "app", "1.0.0", nil))
	newHelmRepository(t, ns, "oci", reg.URL("charts"), func(o *sourcev1.HelmRepository) { o.Spec.Type = sourcev1.HelmRepositoryTypeOCI })
	helmRepo := testenv.NewHelmRepo(t, "", "")
	helmRepo.AddChart(t, testenv.WriteChart(t, "app", "1.0.0", nil))
	newHelmRepository(t, ns, "http", helmRepo.URL, nil)
	keys := &meta.LocalObjectReference{Name: "keys"}
	for _, tc := range []struct {
		name, repo string
		verify     sourcev1.HelmChartVerification
		reason     string
		want       string
	}{
		{"notation without a secret", "oci", sourcev1.HelmChartVerification{Provider: "notation"}, sourcev1.VerificationError,
			"failed to verify the signature using provider 'notation': verification secret cannot be empty: 'notation-without-a-secret'"},
		{"an http repository", "http", sourcev1.HelmChartVerification{Provider: "cosign", SecretRef: keys}, "ChartVerificationError",
			"chart verification error: signature verification (spec.verify) is only supported for charts from a HelmRepository of type 'oci'"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			obj := newHelmChart(t, ns, strings.ReplaceAll(tc.name, " ", "-"), helmRepoRef(tc.repo), "app", "*", func(o *sourcev1.HelmChart) { o.Spec.Verify = &tc.verify })
			got := waitChart(t, obj, "Stalled", func(o *sourcev1.HelmChart) bool { return conditions.IsStalled(o) })
			ready := conditions.Get(got, meta.ReadyCondition)
			if ready.Status != metav1.ConditionFalse || ready.Reason != tc.reason || !strings.HasPrefix(ready.Message, tc.want) {
				t.Errorf("got %s, want Ready=False %s %q", describe(got), tc.reason, tc.want)
			}
			if !conditions.IsFalse(got, sourcev1.SourceVerifiedCondition) || got.Status.Artifact != nil {
				t.Errorf("want SourceVerified=False and no artifact: %s", describe(got))
			}
		})
	}
}

func TestOnlyChartsSignedKeylessByAnExpectedIdentityAreServed(t *testing.T) {
	ns := env.Namespace(t)
	reg := testenv.NewRegistry(t, "", "")
	sigstore := testenv.NewSigstore(t)
	if err := os.WriteFile(sigstoreRoot, sigstore.TrustedRootJSON(t), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(sigstoreRoot) })
	const issuer, workflow = "https://token.actions.githubusercontent.com", "https://github.com/weirhq/charts/.github/workflows/release.yaml@refs/tags/v1"
	push := func(version string) string {
		return reg.PushChart(t, "charts/app", version, testenv.WriteChart(t, "app", version, nil))
	}
	reg.CosignSignKeyless(t, "charts/app", push("1.0.0"), sigstore, testenv.KeylessSignature{Subject: workflow, Issuer: issuer})
	newHelmRepository(t, ns, "charts", reg.URL("charts"), func(o *sourcev1.HelmRepository) { o.Spec.Type = sourcev1.HelmRepositoryTypeOCI })
	chart := newHelmChart(t, ns, "app", helmRepoRef("charts"), "app", "*", func(o *sourcev1.HelmChart) {
		o.Spec.Verify = &sourcev1.HelmChartVerification{Provider: "cosign", MatchOIDCIdentity: []sourcev1.OIDCIdentityMatch{
			{Issuer: "^" + issuer + "$", Subject: "^https://github.com/weirhq/charts/"},
		}}
	})
	got := waitRevision(t, chart, "1.0.0")
	if c := conditions.Get(got, sourcev1.SourceVerifiedCondition); c == nil || c.Status != metav1.ConditionTrue ||
		c.Reason != meta.SucceededReason || c.Message != "verified signature of version 1.0.0" {
		t.Errorf("SourceVerified: %+v", c)
	}

	// A version signed by another workflow is refused, naming the
	// identities expected; 1.0.0 is still served.
	reg.CosignSignKeyless(t, "charts/app", push("1.1.0"), sigstore, testenv.KeylessSignature{Subject: "https://github.com/someone/else/.github/workflows/release.yaml@refs/heads/main", Issuer: issuer})
	at := requestReconcile(t, chart)
	got = waitChart(t, chart, "the new version refused", func(o *sourcev1.HelmChart) bool {
		return o.Status.LastHandledReconcileAt == at && conditions.IsFalse(o, meta.ReadyCondition)
	})
	ready := conditions.Get(got, meta.ReadyCondition)
	if ready.Reason != "ChartVerificationError" || !conditions.IsFalse(got, sourcev1.SourceVerifiedCondition) {
		t.Fatalf("want Ready=False ChartVerificationError and SourceVerified=False: %s", describe(got))
	}
	for _, want := range []string{
		"chart verification error: failed to verify " + reg.URL("charts/app") + ":1.1.0: no matching signatures were found for '",
		"holds a signature by subject 'https://github.com/someone/else/.github/workflows/release.yaml@refs/heads/main' with issuer '" + issuer + "', which matches none of the expected identities",
		"expected identities: issuer '^" + issuer + "$' and subject '^https://github.com/weirhq/charts/'",
	} {
		if !strings.Contains(ready.Message, want) {
			t.Errorf("Ready message %q does not say %q", ready.Message, want)
		}
	}
	if got.Status.Artifact == nil || got.Status.Artifact.Revision != "1.0.0" {
		t.Errorf("the chart 1.0.0 is not served any more: %s", describe(got))
	}

	// Signed by the expected workflow, it is served.
	reg.CosignSignKeyless(t, "charts/app", reg.Digest(t, "charts/app", "1.1.0"), sigstore, testenv.KeylessSignature{Subject: workflow, Issuer: issuer})
	requestReconcile(t, chart)
	waitRevision(t, chart, "1.1.0")
}
