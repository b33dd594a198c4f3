package kustomize

import (
	"context"
	"fmt"
	"time"

	helmv2 "github.com/fluxcd/helm-controller/api/v2"
	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"github.com/fluxcd/pkg/runtime/predicates"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"github.com/weirhq/weir/internal/apply"
	"github.com/weirhq/weir/internal/artifact"
	"github.com/weirhq/weir/internal/dependency"
	"github.com/weirhq/weir/internal/depgraph"

	"github.com/weirhq/weir/internal/lifecycle"
)

// Options size the controller's work queue.
type Options = lifecycle.Options

// SetupWithManager registers the controller and its watches: its own
// objects, their sources' new artifacts, dependencies turning Ready, and
// the health of what it applied.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager, opts Options) error {
	if r.Graph == nil {
		r.Graph = &depgraph.Graph{}
	}
	r.applier = apply.New(mgr.GetClient())
	r.config = mgr.GetConfig()
	r.remotes.Home, r.remotes.UserAgent = r.config, ControllerName
	r.fresh.Use(mgr)
	// Events are masked with the secret values of the reconcile they tell of.
	r.Recorder = r.secrets.Recorder(r.Recorder)
	r.apiReader = mgr.GetAPIReader()
	r.store = apply.InventoryStore{Client: mgr.GetClient(), Reader: mgr.GetAPIReader()}
	r.requeue = make(chan event.GenericEvent, 1024)
	err := mgr.GetFieldIndexer().IndexField(context.Background(), &kustomizev1.Kustomization{}, sourceIndex, func(o client.Object) []string {
		return []string{sourceKey(o.(*kustomizev1.Kustomization))}
	})
	if err != nil {
		return fmt.Errorf("indexing Kustomizations by source: %w", err)
	}
	if err := mgr.GetFieldIndexer().IndexField(context.Background(), &kustomizev1.Kustomization{}, inventoryIndex, inventoryIDs); err != nil {
		return fmt.Errorf("indexing Kustomizations by inventory: %w", err)
	}
	c, err := ctrl.NewControllerManagedBy(mgr).
		Named("kustomization").
		For(&kustomizev1.Kustomization{}, builder.WithPredicates(predicate.Or(predicate.GenerationChangedPredicate{}, predicates.ReconcileRequestedPredicate{}))).
		Watches(&kustomizev1.Kustomization{}, handler.EnqueueRequestsFromMapFunc(r.dependents), builder.WithPredicates(dependency.ReadyChanged{})).
		Watches(&helmv2.HelmRelease{}, handler.EnqueueRequestsFromMapFunc(r.dependents), builder.WithPredicates(dependency.ReadyChanged{})).
		Watches(&sourcev1.GitRepository{}, handler.EnqueueRequestsFromMapFunc(r.consumers), builder.WithPredicates(artifact.Changed{})).
		Watches(&sourcev1.OCIRepository{}, handler.EnqueueRequestsFromMapFunc(r.consumers), builder.WithPredicates(artifact.Changed{})).
		Watches(&sourcev1.ExternalArtifact{}, handler.EnqueueRequestsFromMapFunc(r.consumers), builder.WithPredicates(artifact.Changed{})).
		Watches(&sourcev1.Bucket{}, handler.EnqueueRequestsFromMapFunc(r.consumers), builder.WithPredicates(artifact.Changed{})).
		WatchesRawSource(source.Channel(r.requeue, &handler.EnqueueRequestForObject{})).
		WithOptions(opts.Controller(750 * time.Millisecond)).
		Build(r)
	if err != nil {
		return err
	}
	r.health, err = newHealthWatch(mgr, c, func(k client.ObjectKey) bool { return r.waitingFor(k) != nil })
	return err
}

// dependents maps a Kustomization or HelmRelease to the Kustomizations
// that depend on it.
func (r *Reconciler) dependents(_ context.Context, o client.Object) []reconcile.Request {
	return dependency.Dependents(r.Graph, kustomizev1.KustomizationKind, o)
}

// consumers maps a source to the Kustomizations that render from it.
func (r *Reconciler) consumers(ctx context.Context, o client.Object) []reconcile.Request {
	var kind string
	switch o.(type) {
	case *sourcev1.GitRepository:
		kind = sourcev1.GitRepositoryKind
	case *sourcev1.OCIRepository:
		kind = sourcev1.OCIRepositoryKind
	case *sourcev1.ExternalArtifact:
		kind = sourcev1.ExternalArtifactKind
	case *sourcev1.Bucket:
		kind = sourcev1.BucketKind
	default:
		return nil
	}
	var list kustomizev1.KustomizationList
	key := kind + "/" + o.GetNamespace() + "/" + o.GetName()
	if err := r.List(ctx, &list, client.MatchingFields{sourceIndex: key}); err != nil {
		return nil
	}
	reqs := make([]reconcile.Request, 0, len(list.Items))
	for i := range list.Items {
		reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&list.Items[i])})
	}
	return reqs
}
