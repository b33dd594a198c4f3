package repo

import (
	"context"
	"fmt"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/weirhq/weir/internal/render"
)

// ownerLabels prefix the labels kustomize-controller sets on every object
// it applies (<group>/name, <group>/namespace).
const ownerLabels = "kustomize.toolkit.fluxcd.io"

// BuildOptions say what Build renders.
type BuildOptions struct {
	// Query picks the Kustomization; Query.Path, required, is the folder
	// rendered (the Kustomization's spec.path in the checkout).
	Query Query
	// Keys decrypt SOPS-encrypted ConfigMaps and Secrets read for values;
	// nil leaves them unavailable.
	Keys *render.AgeKeys
	// Strict fails on a substituteFrom source that is unavailable
	// offline instead of leaving its variables as written.
	Strict bool
	// DefaultNamespace is the Kustomization's namespace when nothing in
	// the repository gives it one.
	DefaultNamespace string
	// Applied, when set, is the Kustomization as the Kustomization that
	// applies it renders it (its postBuild variables substituted, its
	// patches applied): its spec is rendered instead of the one written
	// in the repository, as the cluster would hold it.
	Applied *unstructured.Unstructured
}

// Built is what Build rendered.
type Built struct {
	// Objects are the objects the Kustomization would apply, Secrets
	// masked, with the owner labels the controller sets.
	Objects []*unstructured.Unstructured
	// Kustomization is the one rendered, its namespace resolved.
	Kustomization *kustomizev1.Kustomization
	// Cluster is the cluster whose values were used (nil for none).
	Cluster *Cluster
	// Report lists what was left as written.
	Report render.Report
}

// Build renders a Kustomization of the repository as `weir build ks`
// does: the one opts.Query means (see FindKustomization), its spec
// applied to Query.Path, with the values of its own cluster (see
// Cluster.Values); a substituteFrom source that is not in the repository,
// encrypted without a key or ambiguous leaves its variables as written
// (listed in the Report) unless Strict. The Kustomization's own
// decryption is not done: Secrets are masked.
func (r *Repository) Build(ctx context.Context, opts BuildOptions) (*Built, error) {
	m, err := r.FindKustomization(opts.Query)
	if err != nil {
		return nil, err
	}
	ks := m.Kustomization
	if opts.Applied != nil {
		applied := &kustomizev1.Kustomization{}
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(opts.Applied.Object, applied); err != nil {
			return nil, fmt.Errorf("Kustomization %s as %s renders it does not parse: %w", ks.Name, m.Object.By, err)
		}
		ks.Spec = applied.Spec
	}
	if ks.Namespace == "" {
		ks.Namespace = opts.DefaultNamespace
	}
	spec := ks.Spec
	spec.Path = "./" + opts.Query.Path
	spec.Decryption = nil
	b := &Built{Kustomization: ks, Cluster: m.Cluster}
	b.Objects, err = render.Build(ctx, render.Options{
		Root: r.root, Namespace: ks.Namespace, Spec: spec, Values: m.Cluster.Values(opts.Keys),
		MaskSecrets: true, KeepUnavailable: !opts.Strict, Report: &b.Report,
	})
	if err != nil {
		return nil, err
	}
	SetOwnerLabels(b.Objects, ks.Name, ks.Namespace)
	return b, nil
}

// SetOwnerLabels sets the labels kustomize-controller applies to every
// object of a Kustomization (as flux build prints them).
func SetOwnerLabels(objects []*unstructured.Unstructured, name, namespace string) {
	for _, o := range objects {
		labels := o.GetLabels()
		if labels == nil {
			labels = map[string]string{}
		}
		labels[ownerLabels+"/name"] = name
		labels[ownerLabels+"/namespace"] = namespace
		o.SetLabels(labels)
	}
}
