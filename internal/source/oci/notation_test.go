package oci_test

import (
	"strings"
	"testing"

	"github.com/fluxcd/pkg/apis/meta"
	"github.com/fluxcd/pkg/runtime/conditions"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/weirhq/weir/internal/testenv"
)

func withNotation(secret string) func(*sourcev1.OCIRepository) {
	return func(o *sourcev1.OCIRepository) {
		o.Spec.Verify = &sourcev1.OCIRepositoryVerification{
			Provider:  "notation",
			SecretRef: &meta.LocalObjectReference{Name: secret},
			// Ignored for notation, as in source-controller.
			MatchOIDCIdentity: []sourcev1.OIDCIdentityMatch{{Issuer: "^https://nowhere$", Subject: "^nobody$"}},
		}
	}
}

// checkNotationRefused checks that the OCIRepository refuses an artifact
// with source-controller's reason and message, a message that says what
// was found and what the trust policy expects, and that it still serves
// the artifact of revision kept ("" for none).
func checkNotationRefused(t *testing.T, got *sourcev1.OCIRepository, wants []string, kept string) {
	t.Helper()
	ready := conditions.Get(got, meta.ReadyCondition)
	verified := conditions.Get(got, sourcev1.SourceVerifiedCondition)
	if ready.Reason != sourcev1.VerificationError || verified == nil || verified.Status != metav1.ConditionFalse || verified.Reason != sourcev1.VerificationError {
		t.Fatalf("want Ready=False and SourceVerified=False with reason VerificationError: %s", describe(got))
	}
	t.Log(ready.Message)
	for _, want := range append([]string{"failed to verify the signature using provider 'notation': "}, wants...) {
		if !strings.Contains(ready.Message, want) {
			t.Errorf("Ready message %q does not say %q", ready.Message, want)
		}
	}
	if verified.Message != ready.Message {
		t.Errorf("SourceVerified says %q, Ready %q", verified.Message, ready.Message)
	}
	switch {
	case kept == "" && got.Status.Artifact != nil:
		t.Errorf("an artifact was stored: %s", got.Status.Artifact.Revision)
	case kept != "" && (got.Status.Artifact == nil || got.Status.Artifact.Revision != kept):
		t.Errorf("the artifact of %s is not served any more: %s", kept, describe(got))
	}
	if conditions.IsStalled(got) {
		t.Errorf("a failed verification is retried, as in Flux, not stalled")
	}
}

// The registry asks for a login and speaks TLS with its own authority:
// the signatures are read with spec.secretRef and spec.certSecretRef, as
// the artifact is.
func TestOnlyArtifactsSignedUnderTheTrustPolicyAreApplied(t *testing.T) {
	ns := env.Namespace(t)
	reg := testenv.NewTLSRegistry(t, "user", "pass")
	createPullSecret(t, ns, "login", reg, "user", "pass")
	createSecret(t, ns, "registry-ca", corev1.SecretTypeOpaque, map[string][]byte{"ca.crt": reg.CACertPEM()})
	trusted, other := testenv.NewNotationSigner(t, "trusted"), testenv.NewNotationSigner(t, "other")
	createSecret(t, ns, "notation", corev1.SecretTypeOpaque, map[string][]byte{
		"trustpolicy.json": testenv.NotationTrustPolicy(t, "strict", []string{reg.Host + "/manifests"}, trusted.Subject),
		"ca.crt":           trusted.CACertPEM,
	})
	url := reg.URL("manifests")

	first := reg.PushFiles(t, "manifests", "latest", map[string]string{"apps/app.yaml": configMap("app", "one")}, nil)
	reg.NotationSign(t, "manifests", first, trusted)
	src := newOCIRepository(t, ns, "manifests", url, all(withSecret("login"), withNotation("notation"), func(o *sourcev1.OCIRepository) {
		o.Spec.CertSecretRef = &meta.LocalObjectReference{Name: "registry-ca"}
	}))
	got := waitReady(t, src, "latest@"+first)
	if c := conditions.Get(got, sourcev1.SourceVerifiedCondition); c == nil || c.Status != metav1.ConditionTrue ||
		c.Reason != meta.SucceededReason || c.Message != "verified signature of revision latest@"+first {
		t.Errorf("SourceVerified: %+v", c)
	}
	ks := newKustomization(t, ns, "manifests")
	waitApplied(t, ks, "latest@"+first)
	waitConfigMap(t, ns, "app", "one")

	// A verified digest is not verified again at the next reconcile: one
	// HEAD of the tag, no manifest or referrers fetched.
	before := reg.Counts()
	reconcileNow(t, src)
	if after := reg.Counts(); after.ManifestGets != before.ManifestGets {
		t.Errorf("an unchanged, verified digest was fetched again: %+v -> %+v", before, after)
	}

	// An unsigned push is refused, and nothing is pulled from it; the
	// cluster keeps what it has.
	unsigned := reg.PushFiles(t, "manifests", "latest", map[string]string{"apps/app.yaml": configMap("app", "unsigned")}, nil)
	before = reg.Counts()
	reconcileNow(t, src)
	got = waitNotReady(t, src)
	checkNotationRefused(t, got, []string{
		`no signature is associated with "` + reg.Host + "/manifests@" + unsigned + `"`,
		"trust policy statement 'weir' trusts [x509.subject: " + trusted.Subject + "]",
	}, "latest@"+first)
	if after := reg.Counts(); after.BlobGets != before.BlobGets {
		t.Errorf("blobs of an unsigned artifact were fetched: %+v -> %+v", before, after)
	}

	// So is one signed under another authority.
	byOther := reg.PushFiles(t, "manifests", "latest", map[string]string{"apps/app.yaml": configMap("app", "other")}, nil)
	reg.NotationSign(t, "manifests", byOther, other)
	got = reconcileNow(t, src)
	checkNotationRefused(t, got, []string{
		"the signature's certificate chain does not contain any trusted certificate",
		"trust policy statement 'weir' trusts [x509.subject: " + trusted.Subject + "] signing under the certificates ca.crt (CN=trusted root CA,",
	}, "latest@"+first)
	waitEvent(t, ns, "manifests", sourcev1.VerificationError)
	waitApplied(t, ks, "latest@"+first)
	waitConfigMap(t, ns, "app", "one")

	// Signed by the trusted signer as well, it goes through.
	reg.NotationSign(t, "manifests", byOther, trusted)
	reconcileNow(t, src)
	waitReady(t, src, "latest@"+byOther)
	waitApplied(t, ks, "latest@"+byOther)
	waitConfigMap(t, ns, "app", "other")
}

func TestNotationPolicyThatDoesNotApplyIsAClearError(t *testing.T) {
	ns := env.Namespace(t)
	reg := testenv.NewRegistry(t, "", "")
	signer, impostor := testenv.NewNotationSigner(t, "trusted"), testenv.NewNotationSigner(t, "impostor")
	digest := reg.PushFiles(t, "manifests", "latest", map[string]string{"a.yaml": configMap("a", "a")}, nil)
	reg.NotationSign(t, "manifests", digest, signer)
	ca := map[string][]byte{"ca.crt": signer.CACertPEM}
	with := func(data map[string][]byte) map[string][]byte {
		for k, v := range ca {
			data[k] = v
		}
		return data
	}
	for _, tc := range []struct {
		name string
		data map[string][]byte
		want []string
	}{
		{"another repository's scope", with(map[string][]byte{"trustpolicy.json": testenv.NotationTrustPolicy(t, "strict", []string{reg.Host + "/elsewhere"}, signer.Subject)}),
			[]string{`artifact "` + reg.Host + "/manifests@" + digest + `" has no applicable trust policy statement`,
				"the registryScopes of trustpolicy.json in secret '" + ns + "/another-repository-s-scope' are [" + reg.Host + "/elsewhere]"}},
		{"another identity", with(map[string][]byte{"trustpolicy.json": testenv.NotationTrustPolicy(t, "strict", []string{"*"}, impostor.Subject)}),
			[]string{"signing certificate from the digital signature does not match the X.509 trusted identities",
				"trust policy statement 'weir' trusts [x509.subject: " + impostor.Subject + "]"}},
		{"no trust policy", with(map[string][]byte{"policy.json": testenv.NotationTrustPolicy(t, "strict", []string{"*"}, "*")}),
			[]string{"'trustpolicy.json' not found in secret '" + ns + "/no-trust-policy'"}},
		{"no certificate", map[string][]byte{"trustpolicy.json": testenv.NotationTrustPolicy(t, "strict", []string{"*"}, "*")},
			[]string{"no certificates found in secret '" + ns + "/no-certificate'"}},
		{"an invalid trust policy", with(map[string][]byte{"trustpolicy.json": []byte(`{"version":"1.0","trustPolicies":[]}`)}),
			[]string{"trustpolicy.json in secret '" + ns + "/an-invalid-trust-policy' is not a valid trust policy: "}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			name := strings.NewReplacer(" ", "-", "'", "-").Replace(tc.name)
			createSecret(t, ns, name, corev1.SecretTypeOpaque, tc.data)
			before := reg.Counts()
			src := newOCIRepository(t, ns, name, reg.URL("manifests"), withNotation(name))
			checkNotationRefused(t, waitNotReady(t, src), tc.want, "")
			if after := reg.Counts(); after.BlobGets != before.BlobGets {
				t.Errorf("blobs were fetched: %+v -> %+v", before, after)
			}
		})
	}
	t.Run("no secret", func(t *testing.T) {
		src := newOCIRepository(t, ns, "no-secret", reg.URL("manifests"), withNotation("missing"))
		checkNotationRefused(t, waitNotReady(t, src), []string{"failed to get secret '" + ns + "/missing'"}, "")
	})
}

// A trust policy at level skip verifies nothing and refuses nothing, as in
// Flux: the artifact is stored, without SourceVerified.
func TestNotationPolicyAtLevelSkipStoresWithoutVerifying(t *testing.T) {
	ns := env.Namespace(t)
	reg := testenv.NewRegistry(t, "", "")
	digest := reg.PushFiles(t, "manifests", "latest", map[string]string{"a.yaml": configMap("a", "a")}, nil)
	createSecret(t, ns, "notation", corev1.SecretTypeOpaque, map[string][]byte{
		"trustpolicy.json": testenv.NotationTrustPolicy(t, "skip", []string{"*"}, "*"),
		"ca.crt":           testenv.NewNotationSigner(t, "trusted").CACertPEM,
	})
	src := newOCIRepository(t, ns, "manifests", reg.URL("manifests"), withNotation("notation"))
	got := waitReady(t, src, "latest@"+digest)
	if c := conditions.Get(got, sourcev1.SourceVerifiedCondition); c != nil {
		t.Errorf("SourceVerified is set: %+v", c)
	}
}
