// Package repo is the offline model of a cluster repository: which
// clusters it describes, and what each of them applies, read from disk the
// way Flux's controllers would read it, without a cluster.
//
// Open indexes a repository. Its clusters are found from their sync roots:
// the folders a flux-system Kustomization applies (found by the
// Kustomization whose spec.path holds its own file, as `flux bootstrap`
// writes it, or by a FluxInstance's spec.sync.path), else by weir up's
// conventions (kubernetes/flux/cluster, clusters/<name>,
// kubernetes/clusters/<name>). From each sync root, the walk follows what
// the controllers follow: a kustomization.yaml's resources and components
// (its namespace applying to all below it, the outermost one winning), a
// folder without one as the generated kustomization of every YAML file
// under it, and each Flux Kustomization's spec.path (its targetNamespace
// winning over all). Every Flux object, source, ConfigMap and Secret
// reached is an Object of that Cluster, with the namespace kustomize and
// the Kustomization would give it.
//
// Files are read when a walk first reaches them and parsed once; files no
// sync root reaches are never read, so a template filled by another tool
// (op inject, envsubst) is never taken for a value. The reading and
// parsing run ahead of the walk on a few goroutines, following the same
// paths; the walk itself stays in order, so what it finds does not depend
// on them.
//
// FindKustomization picks one Flux Kustomization by name, namespace,
// file and cluster; Cluster.Values reads the ConfigMaps and Secrets of one
// cluster for substituteFrom and valuesFrom, decrypting SOPS-encrypted ones
// with the age keys given and never handing out ciphertext.
package repo
