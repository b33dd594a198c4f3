package oci_test

import (
	"strings"
	"testing"
	"time"

	"github.com/fluxcd/pkg/apis/meta"
	"github.com/fluxcd/pkg/runtime/conditions"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/weirhq/weir/internal/testenv"
)

const (
	ghIssuer = "https://token.actions.githubusercontent.com"
	workflow = "https://github.com/weirhq/apps/.github/workflows/release.yaml@refs/heads/main"
	// expectedIdentity is how weir names the matchOIDCIdentity of
	// withKeyless in messages.
	expectedIdentity = "expected identities: issuer '^https://token.actions.githubusercontent.com$' and subject '^https://github.com/weirhq/apps/'"
)

// withKeyless verifies keyless signatures of the weirhq/apps workflows,
// against the trusted root in the Secret named root.
func withKeyless(root string) func(*sourcev1.OCIRepository) {
	return func(o *sourcev1.OCIRepository) {
		o.Spec.Verify = &sourcev1.OCIRepositoryVerification{
			Provider:             "cosign",
			MatchOIDCIdentity:    []sourcev1.OIDCIdentityMatch{{Issuer: "^" + ghIssuer + "$", Subject: "^https://github.com/weirhq/apps/"}},
			TrustedRootSecretRef: &meta.LocalObjectReference{Name: root},
		}
	}
}

// checkKeylessRefused checks that the OCIRepository refuses digest as
// source-controller does, with a message that says why and names the
// identities expected, and that it still serves the artifact of kept.
func checkKeylessRefused(t *testing.T, got *sourcev1.OCIRepository, repoURL, digest, why, kept string) {
	t.Helper()
	ready := conditions.Get(got, meta.ReadyCondition)
	verified := conditions.Get(got, sourcev1.SourceVerifiedCondition)
	if ready.Reason != sourcev1.VerificationError || verified == nil || verified.Status != metav1.ConditionFalse || verified.Reason != sourcev1.VerificationError {
		t.Fatalf("want Ready=False and SourceVerified=False with reason VerificationError: %s", describe(got))
	}
	ref := strings.TrimPrefix(repoURL, "oci://") + "@" + digest
	for _, want := range []string{
		"failed to verify the signature using provider 'cosign keyless': no matching signatures were found for '" + ref + "'",
		why, expectedIdentity,
	} {
		if !strings.Contains(ready.Message, want) {
			t.Errorf("Ready message %q does not say %q", ready.Message, want)
		}
	}
	if got.Status.Artifact == nil || got.Status.Artifact.Revision != kept {
		t.Errorf("the artifact of %s is not served any more: %s", kept, describe(got))
	}
}

func TestOnlyArtifactsSignedKeylessByAnExpectedIdentityAreApplied(t *testing.T) {
	ns := env.Namespace(t)
	reg := testenv.NewRegistry(t, "", "")
	sigstore := testenv.NewSigstore(t)
	createSecret(t, ns, "sigstore", corev1.SecretTypeOpaque, map[string][]byte{"trusted_root.json": sigstore.TrustedRootJSON(t)})
	url := reg.URL("manifests")
	good := testenv.KeylessSignature{Subject: workflow, Issuer: ghIssuer}

	first := reg.PushFiles(t, "manifests", "latest", map[string]string{"apps/app.yaml": configMap("app", "one")}, nil)
	reg.CosignSignKeyless(t, "manifests", first, sigstore, good)
	src := newOCIRepository(t, ns, "manifests", url, withKeyless("sigstore"))
	got := waitReady(t, src, "latest@"+first)
	if c := conditions.Get(got, sourcev1.SourceVerifiedCondition); c == nil || c.Status != metav1.ConditionTrue ||
		c.Reason != meta.SucceededReason || c.Message != "verified signature of revision latest@"+first {
		t.Errorf("SourceVerified: %+v", c)
	}
	ks := newKustomization(t, ns, "manifests")
	waitApplied(t, ks, "latest@"+first)

	for i, tc := range []struct {
		name string
		sign func(digest string)
		why  string
	}{
		{"unsigned", func(string) {}, "the artifact is not signed (no signature tag 'sha256-"},
		{"another subject", func(d string) {
			reg.CosignSignKeyless(t, "manifests", d, sigstore, testenv.KeylessSignature{Subject: "https://github.com/someone/else/.github/workflows/release.yaml@refs/heads/main", Issuer: ghIssuer})
		}, "holds a signature by subject 'https://github.com/someone/else/.github/workflows/release.yaml@refs/heads/main' with issuer '" + ghIssuer + "', which matches none of the expected identities"},
		{"another issuer", func(d string) {
			reg.CosignSignKeyless(t, "manifests", d, sigstore, testenv.KeylessSignature{Subject: workflow, Issuer: "https://accounts.example.com"})
		}, "with issuer 'https://accounts.example.com', which matches none of the expected identities"},
		{"a certificate of another authority", func(d string) { reg.CosignSignKeyless(t, "manifests", d, sigstore.OtherAuthority(t), good) },
			"whose certificate was not issued by a certificate authority of 'trusted_root.json' in secret '" + ns + "/sigstore'"},
		{"a tampered SET", func(d string) {
			reg.CosignSignKeyless(t, "manifests", d, sigstore, testenv.KeylessSignature{Subject: workflow, Issuer: ghIssuer, TamperSET: true})
		}, "that does not verify: failed to verify log inclusion"},
		{"logged after the certificate expired", func(d string) {
			reg.CosignSignKeyless(t, "manifests", d, sigstore, testenv.KeylessSignature{Subject: workflow, Issuer: ghIssuer, LoggedAt: time.Now().Add(time.Hour)})
		}, "integrated time outside certificate validity"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := reg.PushFiles(t, "manifests", "latest", map[string]string{"apps/app.yaml": configMap("app", "refused"), "n": string(rune('a' + i))}, nil)
			tc.sign(d)
			got := reconcileNow(t, src)
			checkKeylessRefused(t, got, url, d, tc.why, "latest@"+first)
		})
	}
	waitConfigMap(t, ns, "app", "one")

	// Signed by the expected workflow, it goes through.
	next := reg.PushFiles(t, "manifests", "latest", map[string]string{"apps/app.yaml": configMap("app", "two")}, nil)
	reg.CosignSignKeyless(t, "manifests", next, sigstore, good)
	reconcileNow(t, src)
	waitReady(t, src, "latest@"+next)
	waitApplied(t, ks, "latest@"+next)
	waitConfigMap(t, ns, "app", "two")
}

func TestATrustedRootSecretWithoutTrustedRootIsAVerificationError(t *testing.T) {
	ns := env.Namespace(t)
	reg := testenv.NewRegistry(t, "", "")
	reg.PushFiles(t, "manifests", "latest", map[string]string{"a.yaml": configMap("a", "a")}, nil)
	createSecret(t, ns, "sigstore", corev1.SecretTypeOpaque, map[string][]byte{"root.json": []byte("{}")})
	src := newOCIRepository(t, ns, "manifests", reg.URL("manifests"), withKeyless("sigstore"))
	got := waitNotReady(t, src)
	want := "failed to verify the signature using provider 'cosign keyless': failed to read trusted root from secret '" + ns + "/sigstore': 'trusted_root.json' not found in secret '" + ns + "/sigstore'"
	if c := conditions.Get(got, meta.ReadyCondition); c.Reason != sourcev1.VerificationError || c.Message != want {
		t.Errorf("got %s, want VerificationError %q", describe(got), want)
	}
	if got.Status.Artifact != nil {
		t.Errorf("an artifact was stored")
	}
}
