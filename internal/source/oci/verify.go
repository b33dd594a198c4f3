package oci

import (
	"context"
	"fmt"

	"github.com/fluxcd/pkg/apis/meta"
	"github.com/fluxcd/pkg/runtime/conditions"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"

	"github.com/weirhq/weir/internal/cosign"
	"github.com/weirhq/weir/internal/notation"
)

// verifyError is a failed spec.verify, worded as source-controller words
// it; stall when only a spec change can help.
type verifyError struct {
	err   error
	stall bool
}

func (e *verifyError) Error() string { return e.err.Error() }
func (e *verifyError) Unwrap() error { return e.err }

// needsVerification says whether the target's signature must be checked:
// spec.verify is set, and the digest, or the spec, changed since the last
// successful verification, or that one failed. A verified digest is not
// verified again at every interval, as in source-controller.
func needsVerification(obj *sourcev1.OCIRepository, tgt target) bool {
	if obj.Spec.Verify == nil {
		return false
	}
	return obj.Status.Artifact == nil || obj.Status.Artifact.Revision != tgt.revision() ||
		!conditions.IsTrue(obj, sourcev1.SourceVerifiedCondition) ||
		conditions.GetObservedGeneration(obj, sourcev1.SourceVerifiedCondition) != obj.Generation
}

// verifySignature checks the signature of the target's manifest against
// spec.verify before anything is pulled from it, and records the outcome
// on SourceVerified. Without spec.verify, it clears SourceVerified.
func (r *Reconciler) verifySignature(ctx context.Context, obj *sourcev1.OCIRepository, g *registry, tgt target) error {
	if obj.Spec.Verify == nil {
		conditions.Delete(obj, sourcev1.SourceVerifiedCondition)
		return nil
	}
	if !needsVerification(obj, tgt) {
		return nil
	}
	v := obj.Spec.Verify
	provider := v.Provider
	if provider == "cosign" && v.SecretRef == nil {
		provider = "cosign keyless"
	}
	failed := func(err error, stall bool) error {
		return &verifyError{fmt.Errorf("failed to verify the signature using provider '%s': %w", provider, err), stall}
	}
	switch {
	case v.Provider == "notation":
		return r.verifyNotation(ctx, obj, g, tgt, failed)
	case v.Provider != "cosign":
		return failed(fmt.Errorf("unsupported verification provider: %s", v.Provider), true)
	case v.SecretRef == nil:
		tr, err := r.trustedRoot(ctx, obj)
		if err != nil {
			return failed(err, false)
		}
		ref := g.repo.Digest(tgt.digest.String())
		if _, err := cosign.VerifyKeyless(ctx, ref, tr, cosign.Identities(v.MatchOIDCIdentity), g.options(ctx)...); err != nil {
			return failed(g.describe(ctx, err, nil), false)
		}
		conditions.MarkTrue(obj, sourcev1.SourceVerifiedCondition, meta.SucceededReason, "verified signature of revision %s", tgt.revision())
		return nil
	}
	s, err := r.secret(ctx, obj, v.SecretRef.Name)
	if err != nil {
		return failed(err, false)
	}
	keys, err := cosign.KeysFromSecret(s)
	if err != nil {
		return failed(err, false)
	}
	ref := g.repo.Digest(tgt.digest.String())
	if _, err := cosign.Verify(ctx, ref, keys, g.options(ctx)...); err != nil {
		return failed(g.describe(ctx, err, nil), false)
	}
	conditions.MarkTrue(obj, sourcev1.SourceVerifiedCondition, meta.SucceededReason, "verified signature of revision %s", tgt.revision())
	return nil
}

// verifyNotation checks the target's notation signatures against the trust
// policy and certificates of spec.verify.secretRef. A policy whose level
// for the artifact is skip (or audit, when authenticity fails) verifies
// nothing and refuses nothing: SourceVerified is removed, as
// source-controller leaves it unset.
func (r *Reconciler) verifyNotation(ctx context.Context, obj *sourcev1.OCIRepository, g *registry, tgt target, failed func(error, bool) error) error {
	ref := g.repo.Digest(tgt.digest.String())
	if obj.Spec.Verify.SecretRef == nil {
		return failed(fmt.Errorf("verification secret cannot be empty: '%s'", ref), true)
	}
	s, err := r.secret(ctx, obj, obj.Spec.Verify.SecretRef.Name)
	if err != nil {
		return failed(err, false)
	}
	policy, err := notation.PolicyFromSecret(s)
	if err != nil {
		return failed(err, false)
	}
	res, err := notation.Verify(ctx, ref, policy, g.options(ctx)...)
	if err != nil {
		return failed(g.describe(ctx, err, nil), false)
	}
	if res == notation.Skipped {
		conditions.Delete(obj, sourcev1.SourceVerifiedCondition)
		return nil
	}
	conditions.MarkTrue(obj, sourcev1.SourceVerifiedCondition, meta.SucceededReason, "verified signature of revision %s", tgt.revision())
	return nil
}

// trustedRoot is the Sigstore trusted root keyless signatures are checked
// against: the trusted_root.json of spec.verify.trustedRootSecretRef, else
// the controller's (--sigstore-trusted-root, else the public-good
// instance's).
func (r *Reconciler) trustedRoot(ctx context.Context, obj *sourcev1.OCIRepository) (*cosign.TrustedRoot, error) {
	ref := obj.Spec.Verify.TrustedRootSecretRef
	if ref == nil {
		return r.sigstoreRoots().Get(ctx)
	}
	s, err := r.secret(ctx, obj, ref.Name)
	if err == nil {
		var tr *cosign.TrustedRoot
		if tr, err = cosign.TrustedRootFromSecret(s); err == nil {
			return tr, nil
		}
	}
	return nil, fmt.Errorf("failed to read trusted root from secret '%s/%s': %w", obj.Namespace, ref.Name, err)
}

// publicGood is the trusted root of reconcilers given none.
var publicGood = &cosign.Roots{}

func (r *Reconciler) sigstoreRoots() *cosign.Roots {
	if r.SigstoreRoots == nil {
		return publicGood
	}
	return r.SigstoreRoots
}
