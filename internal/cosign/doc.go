// Package cosign verifies the cosign signatures of an artifact in an OCI
// registry against trusted public keys, as `cosign verify --key` does for
// the signatures `cosign sign --key` pushes: the tag sha256-<hex>.sig in
// the artifact's repository holds one layer per signature, a simple-signing
// payload that names the signed manifest digest, with the signature of
// that payload in the layer's dev.cosignproject.cosign/signature
// annotation.
//
// The OCIRepository and HelmChart reconcilers use it for spec.verify with
// provider cosign and a secretRef: KeysFromSecret reads the keys, Verify
// checks a manifest digest before anything is pulled from it. Keyless
// signatures (Fulcio certificates, Rekor entries) and the sigstore bundles
// cosign v3 attaches as OCI 1.1 referrers are not read.
package cosign
