package helmchart

import (
	"context"
	"fmt"
	"time"

	"github.com/fluxcd/pkg/apis/meta"
	"github.com/fluxcd/pkg/runtime/conditions"
	"github.com/fluxcd/pkg/runtime/predicates"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
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

// sourceIndex indexes HelmCharts by their source, "<kind>/<name>" (the
// source is in the chart's namespace).
const sourceIndex = ".spec.sourceRef"

func sourceKey(kind, name string) string { return kind + "/" + name }

// SetupWithManager registers the controller and its watches: its own
// objects, and the sources they build from, so that a new index or a new
// commit rebuilds the charts that use it at once.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager, opts Options) error {
	r.fresh.Use(mgr)
	err := mgr.GetFieldIndexer().IndexField(context.Background(), &sourcev1.HelmChart{}, sourceIndex, func(o client.Object) []string {
		hc, ok := o.(*sourcev1.HelmChart)
		if !ok {
			return nil
		}
		return []string{sourceKey(hc.Spec.SourceRef.Kind, hc.Spec.SourceRef.Name)}
	})
	if err != nil {
		return fmt.Errorf("indexing HelmCharts by source: %w", err)
	}
	return ctrl.NewControllerManagedBy(mgr).
		Named("helmchart").
		For(&sourcev1.HelmChart{}, builder.WithPredicates(predicate.Or(predicate.GenerationChangedPredicate{}, predicates.ReconcileRequestedPredicate{}))).
		Watches(&sourcev1.HelmRepository{}, handler.EnqueueRequestsFromMapFunc(r.consumers), builder.WithPredicates(sourceChanged{})).
		Watches(&sourcev1.GitRepository{}, handler.EnqueueRequestsFromMapFunc(r.consumers), builder.WithPredicates(sourceChanged{})).
		Watches(&sourcev1.Bucket{}, handler.EnqueueRequestsFromMapFunc(r.consumers), builder.WithPredicates(sourceChanged{})).
		WithOptions(opts.Controller(750 * time.Millisecond)).
		Complete(r)
}

// consumers maps a source to the HelmCharts that build from it and have
// not seen its artifact yet (all of them for a HelmRepository of type oci,
// which has none).
func (r *Reconciler) consumers(ctx context.Context, o client.Object) []reconcile.Request {
	var kind string
	var art *meta.Artifact
	switch s := o.(type) {
	case *sourcev1.HelmRepository:
		kind, art = sourcev1.HelmRepositoryKind, s.Status.Artifact
	case *sourcev1.GitRepository:
		kind, art = sourcev1.GitRepositoryKind, s.Status.Artifact
	case *sourcev1.Bucket:
		kind, art = sourcev1.BucketKind, s.Status.Artifact
	default:
		return nil
	}
	var list sourcev1.HelmChartList
	err := r.List(ctx, &list, client.InNamespace(o.GetNamespace()), client.MatchingFields{sourceIndex: sourceKey(kind, o.GetName())})
	if err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "listing the HelmCharts of a source", "source", kind+"/"+o.GetNamespace()+"/"+o.GetName())
		return nil
	}
	reqs := make([]reconcile.Request, 0, len(list.Items))
	for i := range list.Items {
		hc := &list.Items[i]
		if art != nil && hc.Status.ObservedSourceArtifactRevision == art.Revision && conditions.IsReady(hc) {
			continue
		}
		reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(hc)})
	}
	return reqs
}

// sourceChanged passes sources whose artifact changed, and HelmRepositories
// of type oci that turned Ready or were reconciled for a new generation
// (they have no artifact, and their spec is what their charts use).
type sourceChanged struct{ predicate.Funcs }

func (sourceChanged) Create(event.CreateEvent) bool   { return false }
func (sourceChanged) Delete(event.DeleteEvent) bool   { return false }
func (sourceChanged) Generic(event.GenericEvent) bool { return false }
func (sourceChanged) Update(e event.UpdateEvent) bool {
	switch n := e.ObjectNew.(type) {
	case *sourcev1.HelmRepository:
		o, ok := e.ObjectOld.(*sourcev1.HelmRepository)
		if !ok {
			return false
		}
		if n.Spec.Type == sourcev1.HelmRepositoryTypeOCI {
			return conditions.IsReady(n) && (!conditions.IsReady(o) || o.Status.ObservedGeneration != n.Status.ObservedGeneration)
		}
		return artifact.Stored(o.Status.Artifact, n.Status.Artifact)
	case *sourcev1.GitRepository:
		o, ok := e.ObjectOld.(*sourcev1.GitRepository)
		return ok && artifact.Stored(o.Status.Artifact, n.Status.Artifact)
	case *sourcev1.Bucket:
		o, ok := e.ObjectOld.(*sourcev1.Bucket)
		return ok && artifact.Stored(o.Status.Artifact, n.Status.Artifact)
	}
	return false
}
