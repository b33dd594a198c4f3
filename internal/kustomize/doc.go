// Package kustomize reconciles Flux's Kustomization objects
// (kustomize.toolkit.fluxcd.io/v1): it takes the artifact of the source,
// renders the path (internal/render), applies it with server-side apply,
// prunes what left the source, and follows the health of what it applied,
// in this cluster or in the remote cluster that spec.kubeConfig names (see
// internal/kubeconfig; the status and inventory stay here).
//
// Everything waits on events, never on a period: a Kustomization waiting on
// a dependency is queued the moment that dependency turns Ready; one
// waiting on health is queued when an object it applied changes; a
// dependency cycle is reported (Stalled, with the cycle written out) rather
// than waited on.
package kustomize
