package helm

import (
	"context"
	"fmt"
	"time"

	helmv2 "github.com/fluxcd/helm-controller/api/v2"
	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"github.com/fluxcd/pkg/apis/meta"
	"github.com/fluxcd/pkg/runtime/predicates"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	"helm.sh/helm/v4/pkg/kube"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/weirhq/weir/internal/artifact"
	"github.com/weirhq/weir/internal/dependency"
	"github.com/weirhq/weir/internal/depgraph"

	"github.com/weirhq/weir/internal/lifecycle"
)

func init() {
	// Helm writes objects under this field manager, as helm-controller.
	kube.ManagedFieldsManager = ControllerName
}

// Options size the controller's work queue.
type Options = lifecycle.Options

// chartSourceIndex indexes HelmReleases by "Kind/namespace/name" of the
// object whose artifact holds their chart.
const chartSourceIndex = ".spec.chartSource"

// SetupWithManager registers the controller and its watches: its own
// objects, new chart artifacts, and dependencies turning Ready.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager, opts Options) error {
	if r.Graph == nil {
		r.Graph = &depgraph.Graph{}
	}
	r.config = mgr.GetConfig()
	r.remotes.Home, r.remotes.UserAgent = r.config, ControllerName
	r.fresh.Use(mgr)
	// Events are masked with the Secret values of the reconcile they tell of.
	r.Recorder = r.secrets.Recorder(r.Recorder)
	err := mgr.GetFieldIndexer().IndexField(context.Background(), &helmv2.HelmRelease{}, chartSourceIndex, func(o client.Object) []string {
		kind, ns, name := sourceRef(o.(*helmv2.HelmRelease))
		if kind == "" {
			return nil
		}
		return []string{kind + "/" + ns + "/" + name}
	})
	if err != nil {
		return fmt.Errorf("indexing HelmReleases by chart source: %w", err)
	}
	requested := predicate.Or(predicate.GenerationChangedPredicate{}, predicates.ReconcileRequestedPredicate{},
		annotationChanged{key: helmv2.ResetRequestAnnotation}, annotationChanged{key: meta.ForceRequestAnnotation})
	return ctrl.NewControllerManagedBy(mgr).
		Named("helmrelease").
		For(&helmv2.HelmRelease{}, builder.WithPredicates(requested)).
		Watches(&helmv2.HelmRelease{}, handler.EnqueueRequestsFromMapFunc(r.dependents), builder.WithPredicates(dependency.ReadyChanged{})).
		Watches(&kustomizev1.Kustomization{}, handler.EnqueueRequestsFromMapFunc(r.dependents), builder.WithPredicates(dependency.ReadyChanged{})).
		Watches(&sourcev1.OCIRepository{}, handler.EnqueueRequestsFromMapFunc(r.consumers), builder.WithPredicates(artifact.Changed{})).
		Watches(&sourcev1.HelmChart{}, handler.EnqueueRequestsFromMapFunc(r.consumers), builder.WithPredicates(artifact.Changed{})).
		Watches(&sourcev1.ExternalArtifact{}, handler.EnqueueRequestsFromMapFunc(r.consumers), builder.WithPredicates(artifact.Changed{})).
		WithOptions(opts.Controller(time.Second)).
		Complete(r)
}

// dependents maps a HelmRelease or Kustomization to the HelmReleases that
// depend on it.
func (r *Reconciler) dependents(_ context.Context, o client.Object) []reconcile.Request {
	return dependency.Dependents(r.Graph, helmv2.HelmReleaseKind, o)
}

// consumers maps a chart source to the HelmReleases that install from it.
func (r *Reconciler) consumers(ctx context.Context, o client.Object) []reconcile.Request {
	var kind string
	switch o.(type) {
	case *sourcev1.OCIRepository:
		kind = sourcev1.OCIRepositoryKind
	case *sourcev1.HelmChart:
		kind = sourcev1.HelmChartKind
	case *sourcev1.ExternalArtifact:
		kind = sourcev1.ExternalArtifactKind
	default:
		return nil
	}
	var list helmv2.HelmReleaseList
	if err := r.List(ctx, &list, client.MatchingFields{chartSourceIndex: kind + "/" + o.GetNamespace() + "/" + o.GetName()}); err != nil {
		return nil
	}
	reqs := make([]reconcile.Request, 0, len(list.Items))
	for i := range list.Items {
		reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&list.Items[i])})
	}
	return reqs
}

// annotationChanged passes objects whose annotation key changed, for the
// forceAt and resetAt requests.
type annotationChanged struct {
	predicate.Funcs
	key string
}

func (a annotationChanged) Update(e event.UpdateEvent) bool {
	return e.ObjectOld.GetAnnotations()[a.key] != e.ObjectNew.GetAnnotations()[a.key]
}
