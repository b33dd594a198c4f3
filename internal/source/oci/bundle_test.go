package oci_test

import (
	"testing"

	"github.com/fluxcd/pkg/apis/meta"
	"github.com/fluxcd/pkg/runtime/conditions"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/weirhq/weir/internal/testenv"
)

// checkVerified checks that SourceVerified says revision was verified.
func checkVerified(t *testing.T, got *sourcev1.OCIRepository, revision string) {
	t.Helper()
	if c := conditions.Get(got, sourcev1.SourceVerifiedCondition); c == nil || c.Status != metav1.ConditionTrue ||
		c.Reason != meta.SucceededReason || c.Message != "verified signature of revision "+revision {
		t.Errorf("SourceVerified: %+v", c)
	}
}

func TestArtifactsSignedWithCosignV3BundlesAreApplied(t *testing.T) {
	t.Run("with a key, from a registry with login and without the referrers API", func(t *testing.T) {
		ns := env.Namespace(t)
		reg := testenv.NewRegistry(t, "weir", "s3cret")
		createPullSecret(t, ns, "registry", reg, "weir", "s3cret")
		trusted, other := testenv.NewCosignKey(t), testenv.NewCosignKey(t)
		key := createKeySecret(t, ns, "cosign-keys", trusted)
		url := reg.URL("manifests")

		first := reg.PushFiles(t, "manifests", "latest", map[string]string{"apps/app.yaml": configMap("app", "one")}, nil)
		reg.AttachBundle(t, "manifests", first, trusted.CosignBundle(t, first))
		src := newOCIRepository(t, ns, "manifests", url, func(o *sourcev1.OCIRepository) {
			withCosignKeys("cosign-keys")(o)
			o.Spec.SecretRef = &meta.LocalObjectReference{Name: "registry"}
		})
		checkVerified(t, waitReady(t, src, "latest@"+first), "latest@"+first)

		next := reg.PushFiles(t, "manifests", "latest", map[string]string{"apps/app.yaml": configMap("app", "two")}, nil)
		reg.AttachBundle(t, "manifests", next, other.CosignBundle(t, next))
		got := reconcileNow(t, src)
		checkRefused(t, got, url, next, "': its referrers hold a bundle by another key; trusted keys", key, "latest@"+first)

		reg.AttachBundle(t, "manifests", next, trusted.CosignBundle(t, next))
		reconcileNow(t, src)
		checkVerified(t, waitReady(t, src, "latest@"+next), "latest@"+next)
	})

	t.Run("keyless, from a registry with the referrers API", func(t *testing.T) {
		ns := env.Namespace(t)
		reg := testenv.NewReferrersRegistry(t)
		sigstore := testenv.NewSigstore(t)
		createSecret(t, ns, "sigstore", corev1.SecretTypeOpaque, map[string][]byte{"trusted_root.json": sigstore.TrustedRootJSON(t)})
		url := reg.URL("manifests")
		good := testenv.KeylessSignature{Subject: workflow, Issuer: ghIssuer}
		const otherRepo = "https://github.com/someone/else/.github/workflows/release.yaml@refs/heads/main"

		first := reg.PushFiles(t, "manifests", "latest", map[string]string{"apps/app.yaml": configMap("app", "one")}, nil)
		reg.AttachBundle(t, "manifests", first, sigstore.CosignBundle(t, first, good))
		src := newOCIRepository(t, ns, "manifests", url, withKeyless("sigstore"))
		checkVerified(t, waitReady(t, src, "latest@"+first), "latest@"+first)

		next := reg.PushFiles(t, "manifests", "latest", map[string]string{"apps/app.yaml": configMap("app", "two")}, nil)
		reg.AttachBundle(t, "manifests", next, sigstore.CosignBundle(t, next, testenv.KeylessSignature{Subject: otherRepo, Issuer: ghIssuer}))
		got := reconcileNow(t, src)
		checkKeylessRefused(t, got, url, next, "': its referrers hold a bundle by subject '"+otherRepo+"' with issuer '"+ghIssuer+"', which matches none of the expected identities", "latest@"+first)

		reg.AttachBundle(t, "manifests", next, sigstore.CosignBundle(t, next, good))
		reconcileNow(t, src)
		checkVerified(t, waitReady(t, src, "latest@"+next), "latest@"+next)
	})
}
