// Package oci reconciles Flux's OCIRepository objects
// (source.toolkit.fluxcd.io/v1, and v1beta2 served from the same storage):
// it resolves spec.ref (a tag, the highest tag matching a semver range, or a
// digest) against the registry with a HEAD request for the manifest digest,
// pulls nothing when that digest is the one already stored, and otherwise
// pulls the manifest and the selected layer with go-containerregistry. The
// layer is either unpacked and archived, minus ignored files, as
// GitRepository artifacts are, or kept as it is ("copy"), which is how a
// Helm chart pushed to a registry reaches a HelmRelease's chartRef.
//
// The artifact revision is written as Flux writes it, <tag>@sha256:<hex>
// (sha256:<hex> for a digest ref), and status, conditions, reasons, events
// and metrics follow source-controller, so that Flux's own tooling reads
// weir's objects as it reads Flux's.
package oci
