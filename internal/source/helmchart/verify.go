package helmchart

import (
	"context"
	"errors"
	"fmt"

	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	"github.com/google/go-containerregistry/pkg/name"

	"github.com/weirhq/weir/internal/cosign"
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

// chartVerifier reads spec.verify for a chart from an OCI registry: the
// trusted keys of a cosign secretRef. It returns nil without spec.verify.
func (r *Reconciler) chartVerifier(ctx context.Context, obj *sourcev1.HelmChart) (func(context.Context, *registry, name.Digest, string) error, error) {
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
		return nil, failed(fmt.Errorf("notation signatures are not supported by weir: sign with cosign, with a key given in spec.verify.secretRef or keyless: %w", errCannotVerify))
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
		return func(ctx context.Context, g *registry, d name.Digest, tag string) error {
			if _, err := cosign.VerifyKeyless(ctx, d, tr, ids, g.options(ctx)...); err != nil {
				return &buildError{reason: errChartVerification, err: fmt.Errorf("failed to verify %s:%s: %w", g.url, tag, g.describe(ctx, err, tag))}
			}
			return nil
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
	return func(ctx context.Context, g *registry, d name.Digest, tag string) error {
		if _, err := cosign.Verify(ctx, d, keys, g.options(ctx)...); err != nil {
			return &buildError{reason: errChartVerification, err: fmt.Errorf("failed to verify %s:%s: %w", g.url, tag, g.describe(ctx, err, tag))}
		}
		return nil
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
