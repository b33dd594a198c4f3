package kustomize

import (
	"context"
	"errors"
	"fmt"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"github.com/fluxcd/pkg/apis/meta"
	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/weirhq/weir/internal/dependency"
	"github.com/weirhq/weir/internal/depgraph"
)

func graphKey(namespace, name string) depgraph.Key {
	return depgraph.Key{Kind: kustomizev1.KustomizationKind, Namespace: namespace, Name: name}
}

// dependencyKeys are the objects obj depends on: Kustomizations, or
// HelmReleases of those names when no Kustomization has one.
func (r *Reconciler) dependencyKeys(ctx context.Context, obj *kustomizev1.Kustomization) []depgraph.Key {
	return dependency.Keys(ctx, r.Client, kustomizev1.KustomizationKind, obj.Namespace, obj.Spec.DependsOn)
}

// checkDependencies refuses to go on while a dependency is missing, not
// Ready, or (when it is a Kustomization sharing the source) has not applied
// the source's current revision. Nothing polls: a dependency turning Ready
// queues its dependents. A cycle is reported and stalls.
func (r *Reconciler) checkDependencies(ctx context.Context, obj *kustomizev1.Kustomization, keys []depgraph.Key, src *sourceArtifact) error {
	self := graphKey(obj.Namespace, obj.Name)
	if cycle := r.Graph.Cycle(self); cycle != nil {
		return &waitError{reason: meta.DependencyNotReadyReason, stalled: true,
			err: fmt.Errorf("dependency cycle: %s", depgraph.FormatCycle(cycle))}
	}
	for i, dep := range keys {
		name := dependency.Label(kustomizev1.KustomizationKind, dep)
		if r.NoCrossNamespaceRefs && dep.Namespace != obj.Namespace {
			return &waitError{reason: "AccessDenied", stalled: true,
				err: fmt.Errorf("can't access dependency '%s', cross-namespace references have been blocked", name)}
		}
		d, err := dependency.Get(ctx, r.Client, dep)
		if err != nil {
			if apierrors.IsNotFound(err) {
				return &waitError{reason: meta.DependencyNotReadyReason, err: fmt.Errorf("dependency '%s' not found", name)}
			}
			return &stepError{reason: meta.DependencyNotReadyReason, err: fmt.Errorf("getting dependency '%s': %w", name, err)}
		}
		if expr := obj.Spec.DependsOn[i].ReadyExpr; expr != "" {
			// readyExpr replaces the built-in check, as in Flux.
			ok, err := dependency.ReadyByExpr(ctx, expr, obj, d)
			if errors.Is(err, dependency.ErrInvalidExpr) {
				return invalidExpr(err)
			}
			if err != nil {
				return &stepError{reason: meta.DependencyNotReadyReason, err: err}
			}
			if !ok {
				return &waitError{reason: meta.DependencyNotReadyReason, retry: true,
					err: fmt.Errorf("dependency '%s' is not ready according to readyExpr eval", name)}
			}
			continue
		}
		if ok, _ := dependency.Ready(d); !ok {
			return &waitError{reason: meta.DependencyNotReadyReason, err: fmt.Errorf("dependency '%s' is not ready", name)}
		}
		if k, isKs := d.(*kustomizev1.Kustomization); isKs && sourceKey(k) == src.Ref && k.Status.LastAppliedRevision != src.Revision {
			return &waitError{reason: meta.DependencyNotReadyReason,
				err: fmt.Errorf("dependency '%s' is not ready: it has not applied revision '%s' yet", name, src.Revision)}
		}
	}
	return nil
}
