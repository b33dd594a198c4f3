// Package render is the render pipeline of a Flux Kustomization
// (kustomize.toolkit.fluxcd.io/v1): from an unpacked source artifact and a
// Kustomization's spec, the objects it would apply. It reads no cluster:
// the ConfigMaps and Secrets that postBuild.substituteFrom and
// decryption.secretRef name come through the Values interface, so that the
// Kustomization reconciler (reading the API server) and `weir build`
// (reading manifests through Objects, or nothing) share it.
//
// Build follows Flux's kustomize-controller step by step (see Build): the
// path resolved inside the root; a kustomization.yaml generated when the
// folder has none, with fluxcd/pkg/kustomize's Generator; the spec's
// patches, images, components, namePrefix, nameSuffix and targetNamespace
// laid over it; SOPS decryption with the age keys of
// spec.decryption.secretRef; kustomize build with plugins off; postBuild
// variable substitution with fluxcd/pkg/envsubst; commonMetadata.
//
// The source is copied into memory (100 MiB at most) and kustomize reads
// only that copy: nothing outside the root is reachable (symlinks that
// leave it are not copied; under a path without a kustomization.yaml they
// fail the render, as in Flux), ../ bases inside it work, and decrypted
// data never touches the disk. Only the clone folders of remote Git bases,
// which kustomize makes itself with the git program, are read from disk.
//
// Errors are *Error values whose Step says which stage failed; their
// messages are meant for the Kustomization's Ready condition, name the file
// or object at fault by its path in the source, and never hold secret
// values.
//
// Where weir differs from Flux on purpose:
//   - A spec.path that climbs out of the root is refused; Flux clamps it
//     at the root.
//   - NoRemoteBases refuses remote references before kustomize runs, HTTP
//     resources and generator files included; Flux's --no-remote-bases
//     lets kustomize clone and only then refuses to read the clone.
//   - Decryption uses only the age keys of spec.decryption.secretRef: no
//     PGP keys, no cloud KMS, no controller-wide age key, no age plugins.
package render
