package oci_test

import (
	"context"
	"strings"
	"testing"
	"time"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"github.com/fluxcd/pkg/apis/meta"
	"github.com/fluxcd/pkg/runtime/conditions"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/weirhq/weir/internal/cosign"
	"github.com/weirhq/weir/internal/testenv"
)

func withCosignKeys(secret string) func(*sourcev1.OCIRepository) {
	return func(o *sourcev1.OCIRepository) {
		o.Spec.Verify = &sourcev1.OCIRepositoryVerification{Provider: "cosign", SecretRef: &meta.LocalObjectReference{Name: secret}}
	}
}

// createKeySecret puts the public half of key in a Secret as cosign.pub,
// and returns how weir names the key in messages.
func createKeySecret(t *testing.T, ns, name string, key *testenv.CosignKey) string {
	t.Helper()
	createSecret(t, ns, name, corev1.SecretTypeOpaque, map[string][]byte{"cosign.pub": key.PublicPEM})
	k, err := cosign.ParseKey("cosign.pub", key.PublicPEM)
	if err != nil {
		t.Fatal(err)
	}
	return k.String()
}

func newKustomization(t *testing.T, ns, source string) *kustomizev1.Kustomization {
	t.Helper()
	ks := &kustomizev1.Kustomization{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "apps"},
		Spec: kustomizev1.KustomizationSpec{
			Interval:        metav1.Duration{Duration: time.Hour},
			Path:            "./apps",
			Prune:           true,
			TargetNamespace: ns,
			Timeout:         &metav1.Duration{Duration: 30 * time.Second},
			SourceRef:       kustomizev1.CrossNamespaceSourceReference{Kind: "OCIRepository", Name: source},
		},
	}
	if err := env.Client.Create(context.Background(), ks); err != nil {
		t.Fatal(err)
	}
	return ks
}

// checkRefused checks that the OCIRepository refuses digest with
// source-controller's reason, a message that says why and names the key,
// and that it still serves the artifact of revision kept ("" for none).
func checkRefused(t *testing.T, got *sourcev1.OCIRepository, repoURL, digest, why, key, kept string) {
	t.Helper()
	ready := conditions.Get(got, meta.ReadyCondition)
	verified := conditions.Get(got, sourcev1.SourceVerifiedCondition)
	if ready.Reason != sourcev1.VerificationError || verified == nil || verified.Status != metav1.ConditionFalse || verified.Reason != sourcev1.VerificationError {
		t.Fatalf("want Ready=False and SourceVerified=False with reason VerificationError: %s", describe(got))
	}
	ref := strings.TrimPrefix(repoURL, "oci://") + "@" + digest
	for _, want := range []string{
		"failed to verify the signature using provider 'cosign': no matching signatures were found for '" + ref + "'",
		why, "trusted keys: " + key,
	} {
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

func TestOnlyArtifactsSignedByATrustedKeyAreApplied(t *testing.T) {
	ns := env.Namespace(t)
	reg := testenv.NewRegistry(t, "", "")
	trusted, other := testenv.NewCosignKey(t), testenv.NewCosignKey(t)
	key := createKeySecret(t, ns, "cosign-keys", trusted)
	url := reg.URL("manifests")

	first := reg.PushFiles(t, "manifests", "latest", map[string]string{"apps/app.yaml": configMap("app", "one")}, nil)
	reg.CosignSign(t, "manifests", first, trusted)
	src := newOCIRepository(t, ns, "manifests", url, withCosignKeys("cosign-keys"))
	got := waitReady(t, src, "latest@"+first)
	if c := conditions.Get(got, sourcev1.SourceVerifiedCondition); c == nil || c.Status != metav1.ConditionTrue ||
		c.Reason != meta.SucceededReason || c.Message != "verified signature of revision latest@"+first {
		t.Errorf("SourceVerified: %+v", c)
	}
	ks := newKustomization(t, ns, "manifests")
	waitApplied(t, ks, "latest@"+first)
	waitConfigMap(t, ns, "app", "one")

	// A verified digest is not verified again at the next reconcile: one
	// HEAD of the tag, no manifest pulled.
	before := reg.Counts()
	reconcileNow(t, src)
	if after := reg.Counts(); after.ManifestGets != before.ManifestGets {
		t.Errorf("an unchanged, verified digest was fetched again: %+v -> %+v", before, after)
	}

	// An unsigned push is refused; the cluster keeps what it has.
	unsigned := reg.PushFiles(t, "manifests", "latest", map[string]string{"apps/app.yaml": configMap("app", "unsigned")}, nil)
	reconcileNow(t, src)
	got = waitNotReady(t, src)
	checkRefused(t, got, url, unsigned, "the artifact is not signed (no signature tag 'sha256-", key, "latest@"+first)

	// So is one signed by a key that is not in the Secret.
	byOther := reg.PushFiles(t, "manifests", "latest", map[string]string{"apps/app.yaml": configMap("app", "other")}, nil)
	reg.CosignSign(t, "manifests", byOther, other)
	got = reconcileNow(t, src)
	checkRefused(t, got, url, byOther, "holds a signature by another key", key, "latest@"+first)
	waitApplied(t, ks, "latest@"+first)
	waitConfigMap(t, ns, "app", "one")

	// Signed by the trusted key as well, it goes through.
	reg.CosignSign(t, "manifests", byOther, trusted)
	reconcileNow(t, src)
	waitReady(t, src, "latest@"+byOther)
	waitApplied(t, ks, "latest@"+byOther)
	waitConfigMap(t, ns, "app", "other")
}

func TestAnUnsignedArtifactIsNeverStored(t *testing.T) {
	ns := env.Namespace(t)
	reg := testenv.NewRegistry(t, "", "")
	key := createKeySecret(t, ns, "cosign-keys", testenv.NewCosignKey(t))
	digest := reg.PushFiles(t, "manifests", "latest", map[string]string{"apps/app.yaml": configMap("app", "one")}, nil)
	src := newOCIRepository(t, ns, "manifests", reg.URL("manifests"), withCosignKeys("cosign-keys"))
	ks := newKustomization(t, ns, "manifests")
	got := waitNotReady(t, src)
	checkRefused(t, got, reg.URL("manifests"), digest, "the artifact is not signed (no signature tag 'sha256-"+strings.TrimPrefix(digest, "sha256:")+".sig' and no sigstore bundle among its referrers)", key, "")
	if c := reg.Counts(); c.BlobGets != 0 {
		t.Errorf("the artifact's blobs were fetched: %+v", c)
	}
	waitEvent(t, ns, "manifests", sourcev1.VerificationError)

	// The Kustomization has nothing to apply.
	time.Sleep(time.Second)
	var cm corev1.ConfigMap
	if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "app"}, &cm); !apierrors.IsNotFound(err) {
		t.Errorf("the ConfigMap of an unsigned artifact exists: %v", err)
	}
	if err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(ks), ks); err != nil {
		t.Fatal(err)
	}
	if ks.Status.LastAppliedRevision != "" {
		t.Errorf("the Kustomization applied %s", ks.Status.LastAppliedRevision)
	}
}

func TestVerificationWeirCannotDoStalls(t *testing.T) {
	ns := env.Namespace(t)
	reg := testenv.NewRegistry(t, "", "")
	reg.PushFiles(t, "manifests", "latest", map[string]string{"a.yaml": configMap("a", "a")}, nil)
	for _, tc := range []struct {
		name   string
		verify sourcev1.OCIRepositoryVerification
		want   string
	}{
		{"notation without a secret", sourcev1.OCIRepositoryVerification{Provider: "notation"},
			"failed to verify the signature using provider 'notation': verification secret cannot be empty: '"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := newOCIRepository(t, ns, strings.ReplaceAll(tc.name, " ", "-"), reg.URL("manifests"), func(o *sourcev1.OCIRepository) { o.Spec.Verify = &tc.verify })
			got := waitFor(t, 30*time.Second, "Stalled", src, func(o *sourcev1.OCIRepository) bool { return conditions.IsStalled(o) })
			ready := conditions.Get(got, meta.ReadyCondition)
			if ready.Status != metav1.ConditionFalse || ready.Reason != sourcev1.VerificationError || !strings.HasPrefix(ready.Message, tc.want) {
				t.Errorf("got %s, want Ready=False VerificationError %q", describe(got), tc.want)
			}
			if got.Status.Artifact != nil {
				t.Errorf("an artifact was stored")
			}
		})
	}
}
