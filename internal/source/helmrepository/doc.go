// Package helmrepository reconciles Flux's HelmRepository objects
// (source.toolkit.fluxcd.io/v1, and v1beta2 served from the same storage).
//
// A HelmRepository of type "default" is a Helm HTTP/S repository: the
// reconciler fetches its index.yaml with the credentials of spec.secretRef
// (basic auth, or TLS keys as Flux still reads them there) and
// spec.certSecretRef, checks it, and stores it as the artifact, revision
// sha256:<hex> of the index as fetched, as source-controller writes it. The
// index is fetched conditionally (If-None-Match, If-Modified-Since) when the
// server gave an ETag or a Last-Modified date for the stored one, and when
// it did not, an index whose digest is the stored one writes nothing: an
// unchanged repository costs one request and no storage.
//
// A HelmRepository of type "oci" is a data container for HelmCharts that
// pull charts from oci:// URLs: it has no artifact, and is marked Ready
// with the message the flux CLI shows for it, "Helm repository is Ready".
//
// Getter is how the HelmChart reconciler reaches the charts of a default
// HelmRepository, with the same credentials; LoadIndex reads an index as
// source-controller does.
package helmrepository
