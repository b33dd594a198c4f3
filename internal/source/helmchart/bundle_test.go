package helmchart_test

import (
	"os"
	"strings"
	"testing"

	"github.com/fluxcd/pkg/apis/meta"
	"github.com/fluxcd/pkg/runtime/conditions"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/weirhq/weir/internal/testenv"
)

func TestChartsSignedWithCosignV3BundlesAreServed(t *testing.T) {
	const issuer, workflow = "https://token.actions.githubusercontent.com", "https://github.com/weirhq/charts/.github/workflows/release.yaml@refs/tags/v1"
	const otherRepo = "https://github.com/someone/else/.github/workflows/release.yaml@refs/heads/main"
	for _, tc := range []struct {
		name   string
		reg    func(t *testing.T) *testenv.Registry
		verify func(t *testing.T, ns string) (sourcev1.HelmChartVerification, func(digest string, good bool) []byte)
		// why is the refusal of a bundle that is not good.
		why string
	}{
		{
			name: "with a key, from a registry with the referrers API",
			reg:  func(t *testing.T) *testenv.Registry { return testenv.NewReferrersRegistry(t) },
			verify: func(t *testing.T, ns string) (sourcev1.HelmChartVerification, func(string, bool) []byte) {
				trusted, other := testenv.NewCosignKey(t), testenv.NewCosignKey(t)
				createSecret(t, ns, "cosign-keys", "", map[string][]byte{"cosign.pub": trusted.PublicPEM})
				return sourcev1.HelmChartVerification{Provider: "cosign", SecretRef: &meta.LocalObjectReference{Name: "cosign-keys"}},
					func(d string, good bool) []byte {
						if good {
							return trusted.CosignBundle(t, d)
						}
						return other.CosignBundle(t, d)
					}
			},
			why: "': its referrers hold a bundle by another key; trusted keys: cosign.pub (",
		},
		{
			name: "keyless, from a registry without the referrers API",
			reg:  func(t *testing.T) *testenv.Registry { return testenv.NewRegistry(t, "", "") },
			verify: func(t *testing.T, _ string) (sourcev1.HelmChartVerification, func(string, bool) []byte) {
				sigstore := testenv.NewSigstore(t)
				if err := os.WriteFile(sigstoreRoot, sigstore.TrustedRootJSON(t), 0o600); err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { os.Remove(sigstoreRoot) })
				return sourcev1.HelmChartVerification{Provider: "cosign", MatchOIDCIdentity: []sourcev1.OIDCIdentityMatch{{Issuer: "^" + issuer + "$", Subject: "^https://github.com/weirhq/charts/"}}},
					func(d string, good bool) []byte {
						if good {
							return sigstore.CosignBundle(t, d, testenv.KeylessSignature{Subject: workflow, Issuer: issuer})
						}
						return sigstore.CosignBundle(t, d, testenv.KeylessSignature{Subject: otherRepo, Issuer: issuer})
					}
			},
			why: "': its referrers hold a bundle by subject '" + otherRepo + "' with issuer '" + issuer + "', which matches none of the expected identities; expected identities: issuer '^" + issuer + "$'",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ns := env.Namespace(t)
			reg := tc.reg(t)
			verify, bundle := tc.verify(t, ns)
			push := func(version string) string {
				return reg.PushChart(t, "charts/app", version, testenv.WriteChart(t, "app", version, nil))
			}
			first := push("1.0.0")
			reg.AttachBundle(t, "charts/app", first, bundle(first, true))
			newHelmRepository(t, ns, "charts", reg.URL("charts"), func(o *sourcev1.HelmRepository) { o.Spec.Type = sourcev1.HelmRepositoryTypeOCI })
			chart := newHelmChart(t, ns, "app", helmRepoRef("charts"), "app", "*", func(o *sourcev1.HelmChart) { o.Spec.Verify = &verify })
			got := waitRevision(t, chart, "1.0.0")
			if c := conditions.Get(got, sourcev1.SourceVerifiedCondition); c == nil || c.Status != metav1.ConditionTrue ||
				c.Reason != meta.SucceededReason || c.Message != "verified signature of version 1.0.0" {
				t.Errorf("SourceVerified: %+v", c)
			}

			// A version with a bundle of another signer is refused, saying
			// what the bundle is; 1.0.0 is still served.
			next := push("1.1.0")
			reg.AttachBundle(t, "charts/app", next, bundle(next, false))
			at := requestReconcile(t, chart)
			got = waitChart(t, chart, "the new version refused", func(o *sourcev1.HelmChart) bool {
				return o.Status.LastHandledReconcileAt == at && conditions.IsFalse(o, meta.ReadyCondition)
			})
			ready := conditions.Get(got, meta.ReadyCondition)
			if ready.Reason != "ChartVerificationError" || !conditions.IsFalse(got, sourcev1.SourceVerifiedCondition) {
				t.Fatalf("want Ready=False ChartVerificationError and SourceVerified=False: %s", describe(got))
			}
			for _, want := range []string{
				"chart verification error: failed to verify " + reg.URL("charts/app") + ":1.1.0: no matching signatures were found for '" + strings.TrimPrefix(reg.URL("charts/app"), "oci://") + "@" + next,
				tc.why,
			} {
				if !strings.Contains(ready.Message, want) {
					t.Errorf("Ready message %q does not say %q", ready.Message, want)
				}
			}
			if got.Status.Artifact == nil || got.Status.Artifact.Revision != "1.0.0" {
				t.Errorf("the chart 1.0.0 is not served any more: %s", describe(got))
			}

			// With a good bundle as well, it is served.
			reg.AttachBundle(t, "charts/app", next, bundle(next, true))
			requestReconcile(t, chart)
			waitRevision(t, chart, "1.1.0")
		})
	}
}
