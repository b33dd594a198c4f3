// Package cosign verifies the cosign signatures of an artifact in an OCI
// registry against trusted public keys, as `cosign verify --key` does for
// the signatures `cosign sign --key` pushes: the tag sha256-<hex>.sig in
// the artifact's repository holds one layer per signature, a simple-signing
// payload that names the signed manifest digest, with the signature of
// that payload in the layer's dev.cosignproject.cosign/signature
// annotation.
//
// Keyless signatures (`cosign sign` with an OIDC identity) are in the same
// tag: the layer also carries the Fulcio certificate that signed it and
// the Rekor entry of the signature with its signed entry timestamp.
// VerifyKeyless checks them with sigstore-go against a Sigstore trusted
// root (TrustedRoot), offline, and matches the certificate's identity.
//
// The OCIRepository and HelmChart reconcilers use it for spec.verify with
// provider cosign: with a secretRef, KeysFromSecret reads the keys and
// Verify checks a manifest digest before anything is pulled from it;
// without, VerifyKeyless does, against the trusted root of an
// OCIRepository's trustedRootSecretRef or the controller's (Roots).
//
// Since cosign v3, `cosign sign` attaches a sigstore bundle instead
// (--new-bundle-format, its default): an OCI 1.1 referrer of the manifest
// whose only layer is the bundle, a DSSE envelope of an in-toto statement
// naming the manifest digest with its verification material (a key hint,
// or a Fulcio certificate and Rekor entries). Verify and VerifyKeyless
// also read those, found through the referrers API or the sha256-<hex>
// referrers tag, as `cosign verify` does: an artifact passes when a
// signature of its tag or one of its bundles verifies.
package cosign
