// Package notation verifies the Notary Project signatures of an artifact
// in an OCI registry, as `notation verify` does for the signatures
// `notation sign` pushes: signature manifests of artifact type
// application/vnd.cncf.notary.signature that refer to the signed manifest
// (OCI 1.1 referrers, or the sha256-<hex> referrers tag of registries
// without the referrers API), each holding one JWS or COSE envelope, which
// notation-go checks against a trust policy and its trusted certificates.
//
// The OCIRepository and HelmChart reconcilers use it for spec.verify with
// provider notation, as source-controller does: PolicyFromSecret reads the
// trust policy (trustpolicy.json) and the certificates (every entry whose
// name ends in .crt or .pem) of spec.verify.secretRef, and Verify checks a
// manifest digest before anything is pulled from it, reaching the registry
// with the reconciler's own go-containerregistry options (transport,
// credentials, plain HTTP). The Secret's certificates make up every trust
// store the policy names; verification plug-ins are not run.
//
//	p, err := notation.PolicyFromSecret(secret)
//	if err != nil {
//		return err // names the Secret and what is wrong with it
//	}
//	res, err := notation.Verify(ctx, digestRef, p, remoteOpts...)
//	// err is an *UnverifiedError when no trusted signature was found;
//	// res is Skipped when the policy asks for no verification.
package notation
