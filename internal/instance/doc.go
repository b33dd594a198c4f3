// Package instance reconciles Flux Operator's FluxInstance
// (fluxcd.controlplane.io/v1) with weir: spec.sync becomes the cluster's
// source and root Kustomization, and, when weir runs in the cluster,
// spec.components, spec.cluster, spec.commonMetadata and
// spec.kustomize.patches shape weir's own in-cluster objects (its
// Deployment's flags, RBAC mode, NetworkPolicies). Everything applied is
// listed in the instance's inventory and pruned when no longer declared.
// One FluxInstance runs per cluster; it also keeps a FluxReport of what
// runs and how many objects of each kind are Ready.
package instance
