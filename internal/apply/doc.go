// Package apply puts rendered objects into a cluster and keeps track of
// them: server-side apply in stages (CRDs, Namespaces and cluster roles
// first), ownership labels, the inventory of what was applied in Flux's
// format, pruning of what left the source, and health by kstatus rules.
//
// It is built on fluxcd/pkg/ssa, with the field manager and labels of
// Flux's kustomize-controller, so that a cluster moves from Flux to weir
// without conflicts over field ownership.
package apply
