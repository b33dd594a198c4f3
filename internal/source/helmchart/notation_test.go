package helmchart_test

import (
	"strings"
	"testing"

	"github.com/fluxcd/pkg/apis/meta"
	"github.com/fluxcd/pkg/runtime/conditions"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/weirhq/weir/internal/testenv"
)

func TestOnlyChartsSignedUnderTheTrustPolicyAreServed(t *testing.T) {
	ns := env.Namespace(t)
	reg := testenv.NewRegistry(t, "", "")
	trusted, other := testenv.NewNotationSigner(t, "trusted"), testenv.NewNotationSigner(t, "other")
	createSecret(t, ns, "notation", "", map[string][]byte{
		"trustpolicy.json": testenv.NotationTrustPolicy(t, "strict", []string{reg.Host + "/charts/app"}, trusted.Subject),
		"ca.crt":           trusted.CACertPEM,
	})
	createSecret(t, ns, "no-policy", "", map[string][]byte{"ca.crt": trusted.CACertPEM})
	push := func(version string) string {
		return reg.PushChart(t, "charts/app", version, testenv.WriteChart(t, "app", version, nil))
	}
	reg.NotationSign(t, "charts/app", push("1.0.0"), trusted)
	newHelmRepository(t, ns, "charts", reg.URL("charts"), func(o *sourcev1.HelmRepository) { o.Spec.Type = sourcev1.HelmRepositoryTypeOCI })
	notation := func(secret string) func(*sourcev1.HelmChart) {
		return func(o *sourcev1.HelmChart) {
			o.Spec.Verify = &sourcev1.HelmChartVerification{Provider: "notation", SecretRef: &meta.LocalObjectReference{Name: secret}}
		}
	}

	chart := newHelmChart(t, ns, "app", helmRepoRef("charts"), "app", "*", notation("notation"))
	got := waitRevision(t, chart, "1.0.0")
	if c := conditions.Get(got, sourcev1.SourceVerifiedCondition); c == nil || c.Status != metav1.ConditionTrue ||
		c.Reason != meta.SucceededReason || c.Message != "verified signature of version 1.0.0" {
		t.Errorf("SourceVerified: %+v", c)
	}

	// A version signed under another authority is refused; 1.0.0 is
	// still served.
	reg.NotationSign(t, "charts/app", push("1.1.0"), other)
	at := requestReconcile(t, chart)
	got = waitChart(t, chart, "the new version refused", func(o *sourcev1.HelmChart) bool {
		return o.Status.LastHandledReconcileAt == at && conditions.IsFalse(o, meta.ReadyCondition)
	})
	ready := conditions.Get(got, meta.ReadyCondition)
	verified := conditions.Get(got, sourcev1.SourceVerifiedCondition)
	if ready.Reason != "ChartVerificationError" || verified == nil || verified.Status != metav1.ConditionFalse || verified.Reason != sourcev1.VerificationError {
		t.Fatalf("want Ready=False with ChartVerificationError, SourceVerified=False with VerificationError: %s", describe(got))
	}
	t.Log(ready.Message)
	for _, want := range []string{
		"chart verification error: failed to verify " + reg.URL("charts/app") + ":1.1.0: ",
		"the signature's certificate chain does not contain any trusted certificate",
		"trust policy statement 'weir' trusts [x509.subject: " + trusted.Subject + "]",
	} {
		if !strings.Contains(ready.Message, want) {
			t.Errorf("Ready message %q does not say %q", ready.Message, want)
		}
	}
	if got.Status.Artifact == nil || got.Status.Artifact.Revision != "1.0.0" {
		t.Errorf("the chart 1.0.0 is not served any more: %s", describe(got))
	}

	// Signed by the trusted signer as well, it is served.
	reg.NotationSign(t, "charts/app", reg.Digest(t, "charts/app", "1.1.0"), trusted)
	requestReconcile(t, chart)
	waitRevision(t, chart, "1.1.0")

	// A Secret without a trust policy says so.
	bad := newHelmChart(t, ns, "no-policy", helmRepoRef("charts"), "app", "*", notation("no-policy"))
	got = waitChart(t, bad, "Ready=False", func(o *sourcev1.HelmChart) bool { return conditions.IsFalse(o, meta.ReadyCondition) })
	want := "failed to verify the signature using provider 'notation': 'trustpolicy.json' not found in secret '" + ns + "/no-policy'"
	if c := conditions.Get(got, meta.ReadyCondition); c.Reason != sourcev1.VerificationError || c.Message != want || got.Status.Artifact != nil {
		t.Errorf("got %s, want Ready=False VerificationError %q and no artifact", describe(got), want)
	}
}
