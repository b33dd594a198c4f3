package kustomize

import (
	"context"
	"fmt"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"github.com/fluxcd/pkg/apis/meta"
	"github.com/fluxcd/pkg/runtime/conditions"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/weirhq/weir/internal/depgraph"
)

func graphKey(namespace, name string) depgraph.Key {
	return depgraph.Key{Kind: kustomizev1.KustomizationKind, Namespace: namespace, Name: name}
}

// dependencyKeys are the Kustomizations obj depends on.
func dependencyKeys(obj *kustomizev1.Kustomization) []depgraph.Key {
	keys := make([]depgraph.Key, 0, len(obj.Spec.DependsOn))
	for _, d := range obj.Spec.DependsOn {
		ns := d.Namespace
		if ns == "" {
			ns = obj.Namespace
		}
		keys = append(keys, graphKey(ns, d.Name))
	}
	return keys
}

// checkDependencies refuses to go on while a dependency is missing, not
// Ready, or (when it shares the source) has not applied the source's
// current revision. Nothing polls: a dependency turning Ready queues its
// dependents. A cycle is reported and stalls.
func (r *Reconciler) checkDependencies(ctx context.Context, obj *kustomizev1.Kustomization, src *sourceArtifact) error {
	self := graphKey(obj.Namespace, obj.Name)
	if cycle := r.Graph.Cycle(self); cycle != nil {
		return &waitError{reason: meta.DependencyNotReadyReason, stalled: true,
			err: fmt.Errorf("dependency cycle: %s", depgraph.FormatCycle(cycle))}
	}
	for i, dep := range dependencyKeys(obj) {
		name := dep.Namespace + "/" + dep.Name
		if r.NoCrossNamespaceRefs && dep.Namespace != obj.Namespace {
			return &waitError{reason: "AccessDenied", stalled: true,
				err: fmt.Errorf("can't access dependency '%s', cross-namespace references have been blocked", name)}
		}
		var d kustomizev1.Kustomization
		if err := r.Get(ctx, client.ObjectKey{Namespace: dep.Namespace, Name: dep.Name}, &d); err != nil {
			if apierrors.IsNotFound(err) {
				return &waitError{reason: meta.DependencyNotReadyReason, err: fmt.Errorf("dependency '%s' not found", name)}
			}
			return &stepError{reason: meta.DependencyNotReadyReason, err: fmt.Errorf("getting dependency '%s': %w", name, err)}
		}
		if expr := obj.Spec.DependsOn[i].ReadyExpr; expr != "" {
			// readyExpr replaces the built-in check, as in Flux.
			ok, err := readyByExpr(ctx, expr, obj, &d)
			if err != nil {
				return err
			}
			if !ok {
				return &waitError{reason: meta.DependencyNotReadyReason, retry: true,
					err: fmt.Errorf("dependency '%s' is not ready according to readyExpr eval", name)}
			}
			continue
		}
		if d.Generation != d.Status.ObservedGeneration || !conditions.IsReady(&d) {
			return &waitError{reason: meta.DependencyNotReadyReason, err: fmt.Errorf("dependency '%s' is not ready", name)}
		}
		if sourceKey(&d) == src.Ref && d.Status.LastAppliedRevision != src.Revision {
			return &waitError{reason: meta.DependencyNotReadyReason,
				err: fmt.Errorf("dependency '%s' is not ready: it has not applied revision '%s' yet", name, src.Revision)}
		}
	}
	return nil
}
