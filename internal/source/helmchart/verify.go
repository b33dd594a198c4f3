package helmchart

import (
	"context"
	"errors"
	"fmt"

	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	"github.com/google/go-containerregistry/pkg/name"

	"github.com/weirhq/weir/internal/cosign"
	"github.com/weirhq/weir/internal/notation"
)

var (
	// errChartVerification is source-controller's reason for a chart whose
	// signature does not verify.
	errChartVerification = buildReason{"ChartVerificationError", "chart verification error"}
	// errVerifySetup is a spec.verify that cannot be used: keys that
	// cannot be read, a provider weir does not support.
	errVerifySetup = buildReason{reason: sourcev1.VerificationError}
)

// errCannotVerify marks a spec.verify weir cannot honour at all: only a
// change of the spec helps, so the HelmChart stalls.
var errCannotVerify = errors.New("verification not possible")

// chartVerify checks the signature of the manifest d, pushed as tag,
// before the chart is pulled from it. verified is false when a notation
// trust policy asks for no verification of the chart (level skip, or
// audit with a failed authenticity check): it is neither refused nor
// marked SourceVerified.
type chartVerify func(ctx context.Context, g *registry, d name.Digest, tag string) (verified bool, err error)

// chartVerifier reads spec.verify for a chart from an OCI registry: the
// trusted keys of a cosign secretRef, the controller's Sigstore trusted
// root for keyless cosign, or the trust policy and certificates of a
// notation secretRef. It returns nil without spec.verify.
func (r *Reconciler) chartVerifier(ctx context.Context, obj *sourcev1.HelmChart) (chartVerify, error) {
	v := obj.Spec.Verify
	if v == nil {
		return nil, nil
	}
	provider := v.Provider
	if provider == "cosign" && v.SecretRef == nil {
		provider = "cosign keyless"
	}
	failed := func(err error) error {
		return &buildError{reason: errVerifySetup, err: fmt.Errorf("failed to verify the signature using provider '%s': %w", provider, err)}
	}
	switch {
	case v.Provider == "notation":
		return r.notationVerifier(ctx, obj, failed)
	case v.Provider != "cosign":
		return nil, failed(fmt.Errorf("unsupported verification provider: %s: %w", v.Provider, errCannotVerify))
	case v.SecretRef == nil:
		// HelmChart has no trustedRootSecretRef: the controller's
		// trusted root is used.
		tr, err := r.sigstoreRoots().Get(ctx)
		if err != nil {
			return nil, failed(err)
		}
		ids := cosign.Identities(v.MatchOIDCIdentity)
		return func(ctx context.Context, g *registry, d name.Digest, tag string) (bool, error) {
			if _, err := cosign.VerifyKeyless(ctx, d, tr, ids, g.options(ctx)...); err != nil {
				return false, &buildError{reason: errChartVerification, err: fmt.Errorf("failed to verify %s:%s: %w", g.url, tag, g.describe(ctx, err, tag))}
			}
			return true, nil
		}, nil
	}
	s, err := getSecret(ctx, r.Client, obj.Namespace, v.SecretRef.Name)
	if err != nil {
		return nil, failed(fmt.Errorf("failed to get secret '%s/%s': %w", obj.Namespace, v.SecretRef.Name, err))
	}
	keys, err := cosign.KeysFromSecret(s)
	if err != nil {
		return nil, failed(err)
	}
	return func(ctx context.Context, g *registry, d name.Digest, tag string) (bool, error) {
		if _, err := cosign.Verify(ctx, d, keys, g.options(ctx)...); err != nil {
			return false, &buildError{reason: errChartVerification, err: fmt.Errorf("failed to verify %s:%s: %w", g.url, tag, g.describe(ctx, err, tag))}
		}
		return true, nil
	}, nil
}

// notationVerifier reads the trust policy and certificates of a notation
// spec.verify.secretRef.
func (r *Reconciler) notationVerifier(ctx context.Context, obj *sourcev1.HelmChart, failed func(error) error) (chartVerify, error) {
	ref := obj.Spec.Verify.SecretRef
	if ref == nil {
		return nil, failed(fmt.Errorf("verification secret cannot be empty: '%s': %w", obj.Name, errCannotVerify))
	}
	s, err := getSecret(ctx, r.Client, obj.Namespace, ref.Name)
	if err != nil {
		return nil, failed(fmt.Errorf("failed to get secret '%s/%s': %w", obj.Namespace, ref.Name, err))
	}
	policy, err := notation.PolicyFromSecret(s)
	if err != nil {
		return nil, failed(err)
	}
	return func(ctx context.Context, g *registry, d name.Digest, tag string) (bool, error) {
		res, err := notation.Verify(ctx, d, policy, g.options(ctx)...)
		if err != nil {
			return false, &buildError{reason: errChartVerification, err: fmt.Errorf("failed to verify %s:%s: %w", g.url, tag, g.describe(ctx, err, tag))}
		}
		return res == notation.Verified, nil
	}, nil
}

// publicGood is the trusted root of reconcilers given none.
var publicGood = &cosign.Roots{}

func (r *Reconciler) sigstoreRoots() *cosign.Roots {
	if r.SigstoreRoots == nil {
		return publicGood
	}
	return r.SigstoreRoots
}
