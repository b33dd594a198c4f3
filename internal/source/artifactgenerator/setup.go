package artifactgenerator

import (
	"context"
	"fmt"
	"time"

	"github.com/fluxcd/pkg/runtime/predicates"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	swapi "github.com/fluxcd/source-watcher/api/v2/v1beta1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/weirhq/weir/internal/artifact"
	"github.com/weirhq/weir/internal/lifecycle"
)

// Options size the controller's work queue.
type Options = lifecycle.Options

// sourceIndex indexes ArtifactGenerators by "Kind/namespace/name" of each
// of their sources.
const sourceIndex = ".spec.sources"

// SetupWithManager registers the controller and its watches: its own
// objects, a new artifact of any of their sources (which regenerates at
// once), and the deletion of an ExternalArtifact they generated (which
// brings it back).
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager, opts Options) error {
	r.fresh.Use(mgr)
	err := mgr.GetFieldIndexer().IndexField(context.Background(), &swapi.ArtifactGenerator{}, sourceIndex, func(o client.Object) []string {
		obj := o.(*swapi.ArtifactGenerator)
		keys := make([]string, 0, len(obj.Spec.Sources))
		for _, s := range obj.Spec.Sources {
			keys = append(keys, sourceKey(obj, s))
		}
		return keys
	})
	if err != nil {
		return fmt.Errorf("indexing ArtifactGenerators by source: %w", err)
	}
	b := ctrl.NewControllerManagedBy(mgr).
		Named("artifactgenerator").
		For(&swapi.ArtifactGenerator{}, builder.WithPredicates(predicate.Or(predicate.GenerationChangedPredicate{}, predicates.ReconcileRequestedPredicate{})))
	for _, kind := range sourceKinds {
		b = b.Watches(newSource(kind), handler.EnqueueRequestsFromMapFunc(r.consumers(kind)), builder.WithPredicates(artifact.Changed{}))
	}
	return b.
		Watches(&sourcev1.ExternalArtifact{}, handler.EnqueueRequestsFromMapFunc(generatorOf), builder.WithPredicates(deleted{})).
		WithOptions(opts.Controller(750 * time.Millisecond)).
		Complete(r)
}

// consumers maps a source of kind to the generators that read from it.
func (r *Reconciler) consumers(kind string) handler.MapFunc {
	return func(ctx context.Context, o client.Object) []reconcile.Request {
		var list swapi.ArtifactGeneratorList
		if err := r.List(ctx, &list, client.MatchingFields{sourceIndex: kind + "/" + o.GetNamespace() + "/" + o.GetName()}); err != nil {
			return nil
		}
		reqs := make([]reconcile.Request, 0, len(list.Items))
		for i := range list.Items {
			reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&list.Items[i])})
		}
		return reqs
	}
}

// generatorOf maps an ExternalArtifact to the generator named by its
// spec.sourceRef, if any.
func generatorOf(_ context.Context, o client.Object) []reconcile.Request {
	ea, ok := o.(*sourcev1.ExternalArtifact)
	if !ok || ea.Spec.SourceRef == nil || ea.Spec.SourceRef.Kind != swapi.ArtifactGeneratorKind {
		return nil
	}
	ns := ea.Spec.SourceRef.Namespace
	if ns == "" {
		ns = ea.Namespace
	}
	return []reconcile.Request{{NamespacedName: client.ObjectKey{Namespace: ns, Name: ea.Spec.SourceRef.Name}}}
}

// deleted passes deletions only.
type deleted struct{ predicate.Funcs }

func (deleted) Create(e event.CreateEvent) bool   { return false }
func (deleted) Update(e event.UpdateEvent) bool   { return false }
func (deleted) Generic(e event.GenericEvent) bool { return false }
func (deleted) Delete(e event.DeleteEvent) bool   { return true }
