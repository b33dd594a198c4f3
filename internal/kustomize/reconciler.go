package kustomize

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"github.com/fluxcd/pkg/apis/meta"
	"github.com/fluxcd/pkg/runtime/conditions"
	"github.com/fluxcd/pkg/runtime/metrics"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/record"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"

	"github.com/weirhq/weir/internal/apply"
	"github.com/weirhq/weir/internal/artifact"
	"github.com/weirhq/weir/internal/depgraph"
	"github.com/weirhq/weir/internal/kubeconfig"
	"github.com/weirhq/weir/internal/lifecycle"
	"github.com/weirhq/weir/internal/redact"
	"github.com/weirhq/weir/internal/render"
)

// foreignHealthPeriod is how often health checks of objects that other
// controllers applied are read again: those alone are polled.
const foreignHealthPeriod = 2 * time.Second

// ControllerName is the component name on events, as Flux's.
const ControllerName = "kustomize-controller"

// Reconciler reconciles Kustomization objects.
type Reconciler struct {
	client.Client
	// Store holds the source artifacts.
	Store *artifact.Store
	// Graph is the dependsOn index shared with HelmReleases.
	Graph *depgraph.Graph
	// Recorder emits Kubernetes events.
	Recorder record.EventRecorder
	// Metrics records Flux's gotk_* metrics; nil records nothing.
	Metrics *metrics.Recorder
	// NoCrossNamespaceRefs refuses sources and dependencies in other
	// namespaces.
	NoCrossNamespaceRefs bool
	// NoRemoteBases refuses kustomize remote bases.
	NoRemoteBases bool
	// DefaultServiceAccount is impersonated for Kustomizations that name
	// none; empty means the controller's own identity.
	DefaultServiceAccount string

	config       *rest.Config
	fresh        lifecycle.Fresh
	apiReader    client.Reader
	store        apply.InventoryStore
	requeue      chan event.GenericEvent
	unpacked     unpackCache
	applier      *apply.Applier
	impersonated map[string]*apply.Applier
	remotes      kubeconfig.Cache[*connection]
	health       *healthWatch
	secrets      redact.Registry

	mu      sync.Mutex
	waiting map[client.ObjectKey]*healthWait
	// pairs are the Kustomizations known to apply the same objects.
	pairs map[[2]client.ObjectKey]bool
}

// healthWait is an applied revision whose objects are not healthy yet.
type healthWait struct {
	revision   string
	generation int64
	objects    []*unstructured.Unstructured
	since      time.Time
	changes    string
	// conflicts notes, for the Ready message, the objects that other
	// Kustomizations apply too.
	conflicts string
}

// Reconcile brings one Kustomization's objects in line with its source.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	obj := &kustomizev1.Kustomization{}
	if err := r.fresh.Get(ctx, r.Client, req.NamespacedName, obj); err != nil {
		if client.IgnoreNotFound(err) == nil {
			r.Graph.Remove(graphKey(req.Namespace, req.Name))
			r.remotes.Forget(req.NamespacedName)
			// Those that shared objects with it drop their note.
			r.trackConflicts(req.NamespacedName, nil)
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	start := time.Now()
	defer r.recordMetrics(obj, start)
	if !obj.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, r.finalize(ctx, obj)
	}
	if err := lifecycle.AddFinalizer(ctx, r.Client, obj, kustomizev1.KustomizationFinalizer); err != nil {
		return ctrl.Result{}, err
	}
	deps := r.dependencyKeys(ctx, obj)
	r.Graph.Set(graphKey(obj.Namespace, obj.Name), deps)
	if obj.Spec.Suspend {
		return ctrl.Result{}, nil
	}

	// The secret values the render uses are masked in every message of
	// this reconcile: events (through the recorder), conditions, and the
	// error, which controller-runtime logs.
	secrets := r.secrets.Start(req.NamespacedName)
	defer r.secrets.Done(req.NamespacedName)
	orig := obj.DeepCopy()
	result, recErr := r.reconcile(ctx, obj, deps)
	secrets.MaskConditions(obj.Status.Conditions)
	recErr = secrets.Error(recErr)
	obj.Status.ObservedGeneration = obj.Generation
	if err := lifecycle.PatchStatus(ctx, r.Client, obj, orig); err != nil {
		r.Recorder.Event(obj, corev1.EventTypeWarning, "StatusUpdateFailed", err.Error())
		return ctrl.Result{}, errors.Join(recErr, err)
	}
	r.announce(orig, obj)
	r.dropExternalInventory(ctx, orig, obj)
	retry := lifecycle.Retry{OnWait: obj.GetRetryInterval()}
	if obj.Spec.RetryInterval != nil {
		// The user chose the retry period; otherwise failures back off
		// exponentially from under a second.
		retry.OnFailure = obj.Spec.RetryInterval.Duration
	}
	return lifecycle.Outcome(ctx, result, recErr, retry)
}

// reconcile runs the steps in order; each failure leaves the cluster as it
// was before the step and says so on the status.
func (r *Reconciler) reconcile(ctx context.Context, obj *kustomizev1.Kustomization, deps []depgraph.Key) (ctrl.Result, error) {
	if v, ok := meta.ReconcileAnnotationValue(obj.GetAnnotations()); ok {
		obj.Status.SetLastHandledReconcileRequest(v)
	}
	src, err := r.fetchSource(ctx, obj)
	if err != nil {
		return r.fail(obj, err)
	}
	if err := r.checkDependencies(ctx, obj, deps, src); err != nil {
		return r.fail(obj, err)
	}
	revision := src.Revision
	obj.Status.LastAttemptedRevision = revision
	t, err := r.targetFor(ctx, obj)
	if err != nil {
		return r.fail(obj, kubeConfigError(err))
	}

	key := client.ObjectKeyFromObject(obj)
	if w := r.waitingFor(key); w != nil && w.revision == revision && w.generation == obj.Generation {
		return r.checkHealth(ctx, obj, t, w)
	}
	objects, err := r.render(ctx, obj, src)
	if err != nil {
		return r.fail(obj, err)
	}
	last, err := r.lastInventory(ctx, obj)
	if err != nil {
		return r.fail(obj, err)
	}
	cs, versions, err := t.applier.Apply(ctx, apply.Owner{Name: obj.Name, Namespace: obj.Namespace}, objects, apply.Options{Force: obj.Spec.Force, Timeout: obj.GetTimeout(), Ignore: obj.Spec.Ignore})
	if err != nil {
		return r.fail(obj, &stepError{reason: meta.ReconciliationFailedReason, err: t.explain(ctx, r, obj, err)})
	}
	inventory := apply.Inventory(cs)
	changes := changeSummary(cs)
	if changes != "" {
		r.Recorder.AnnotatedEventf(obj, revisionMetadata(revision), corev1.EventTypeNormal, "Progressing", "%s", changes)
	}
	conflicts, err := r.conflicts(ctx, obj, inventory)
	if err != nil {
		return r.fail(obj, &stepError{reason: meta.ReconciliationFailedReason, err: err})
	}
	if err := r.prune(ctx, t, obj, last, inventory); err != nil {
		return r.fail(obj, err)
	}
	if err := r.recordInventory(ctx, obj, inventory); err != nil {
		return r.fail(obj, err)
	}

	w := &healthWait{revision: revision, generation: obj.Generation, since: time.Now(), changes: changes, conflicts: conflicts}
	if w.objects, err = r.healthTargets(obj, objects, versions); err != nil {
		return r.fail(obj, err)
	}
	return r.checkHealth(ctx, obj, t, w)
}

// checkHealth finishes a reconcile when every object to wait for is
// healthy; otherwise it records the wait and returns, to be queued again
// when one of them changes (or when the timeout ends).
func (r *Reconciler) checkHealth(ctx context.Context, obj *kustomizev1.Kustomization, t *target, w *healthWait) (ctrl.Result, error) {
	key := client.ObjectKeyFromObject(obj)
	if len(w.objects) > 0 {
		reader, err := r.healthReader(ctx, t, w.objects)
		if err != nil {
			return r.fail(obj, &stepError{reason: meta.HealthCheckFailedReason, err: err})
		}
		eval, err := healthEvaluators(obj)
		if err != nil {
			r.setWaiting(key, nil)
			return r.fail(obj, err)
		}
		unhealthy, err := apply.Health(ctx, reader, w.objects, eval)
		if err != nil {
			return r.fail(obj, &stepError{reason: meta.HealthCheckFailedReason, err: t.explain(ctx, r, obj, err)})
		}
		elapsed := time.Since(w.since)
		switch {
		case len(unhealthy) > 0 && (apply.Failed(unhealthy) || elapsed >= obj.GetTimeout()):
			r.setWaiting(key, nil)
			msg := fmt.Errorf("health check failed after %s: %s", elapsed.Round(time.Millisecond), apply.Summary(unhealthy))
			conditions.MarkFalse(obj, meta.HealthyCondition, meta.HealthCheckFailedReason, "%s", msg)
			return r.fail(obj, &stepError{reason: meta.HealthCheckFailedReason, err: msg})
		case len(unhealthy) > 0:
			r.setWaiting(key, w)
			msg := "waiting for " + apply.Summary(unhealthy)
			conditions.MarkReconciling(obj, meta.ProgressingReason, "%s", msg)
			conditions.MarkUnknown(obj, meta.HealthyCondition, meta.ProgressingReason, "%s", msg)
			conditions.MarkUnknown(obj, meta.ReadyCondition, meta.ProgressingReason, "%s", msg)
			next := obj.GetTimeout() - elapsed
			if reader.usedAPI && next > foreignHealthPeriod {
				// Objects this controller did not apply send it no events.
				next = foreignHealthPeriod
			}
			return ctrl.Result{RequeueAfter: next}, nil
		}
		// A check that passes again keeps the condition as it was, its
		// duration included: an unchanged Kustomization (an interval's
		// reconcile, a restart) then writes no status at all.
		if !conditions.IsTrue(obj, meta.HealthyCondition) || conditions.GetReason(obj, meta.HealthyCondition) != meta.SucceededReason {
			conditions.MarkTrue(obj, meta.HealthyCondition, meta.SucceededReason, "Health check passed in %s", time.Since(w.since).Round(time.Millisecond))
		}
	} else {
		conditions.Delete(obj, meta.HealthyCondition)
	}
	r.setWaiting(key, nil)
	r.markReady(obj, w.revision, w.conflicts)
	return ctrl.Result{RequeueAfter: obj.GetRequeueAfter()}, nil
}

// render renders the Kustomization's path from the source's artifact,
// unpacked once per revision and shared with the other Kustomizations.
func (r *Reconciler) render(ctx context.Context, obj *kustomizev1.Kustomization, src *sourceArtifact) ([]*unstructured.Unstructured, error) {
	dir, release, err := r.unpacked.acquire(ctx, r.Store, src.Artifact)
	if err != nil {
		return nil, &stepError{reason: meta.ArtifactFailedReason, err: fmt.Errorf("unpacking the artifact of %s: %w", src.Ref, err)}
	}
	defer release()
	objects, err := render.Build(ctx, render.Options{
		Root:          dir,
		Namespace:     obj.Namespace,
		Spec:          obj.Spec,
		Values:        render.ClusterValues{Reader: r.Client},
		NoRemoteBases: r.NoRemoteBases,
		Secrets:       r.secrets.Of(client.ObjectKeyFromObject(obj)),
	})
	if err != nil {
		return nil, &stepError{reason: meta.BuildFailedReason, err: err}
	}
	return objects, nil
}

// prune deletes what the last inventory held and the new one does not,
// when spec.prune is on, except what another Kustomization still applies.
// It runs only after a successful apply.
func (r *Reconciler) prune(ctx context.Context, t *target, obj *kustomizev1.Kustomization, last, inventory *kustomizev1.ResourceInventory) error {
	if !obj.Spec.Prune {
		return nil
	}
	stale, err := apply.Stale(last, inventory)
	if err != nil {
		return &stepError{reason: meta.PruneFailedReason, err: err}
	}
	if stale, err = r.keepShared(ctx, obj, stale); err != nil {
		return &stepError{reason: meta.PruneFailedReason, err: err}
	}
	cs, err := t.applier.Prune(ctx, apply.Owner{Name: obj.Name, Namespace: obj.Namespace}, stale)
	if err != nil {
		return &stepError{reason: meta.PruneFailedReason, err: t.explain(ctx, r, obj, err)}
	}
	if s := changeSummary(cs); s != "" {
		r.Recorder.Event(obj, corev1.EventTypeNormal, "Progressing", s)
	}
	return nil
}

// finalize deletes what the Kustomization applied, as its deletionPolicy
// says, then drops the finalizer.
func (r *Reconciler) finalize(ctx context.Context, obj *kustomizev1.Kustomization) error {
	r.Graph.Remove(graphKey(obj.Namespace, obj.Name))
	r.setWaiting(client.ObjectKeyFromObject(obj), nil)
	policy := obj.GetDeletionPolicy()
	remove := policy == kustomizev1.DeletionPolicyDelete || policy == kustomizev1.DeletionPolicyWaitForTermination ||
		(policy == kustomizev1.DeletionPolicyMirrorPrune && obj.Spec.Prune)
	if remove && !obj.Spec.Suspend {
		if err := r.deleteObjects(ctx, obj, policy); err != nil {
			return err
		}
	}
	r.remotes.Forget(client.ObjectKeyFromObject(obj))
	if r.Metrics != nil {
		ref := objectRef(obj)
		r.Metrics.DeleteDuration(ref)
		r.Metrics.DeleteSuspend(ref)
	}
	return lifecycle.RemoveFinalizer(ctx, r.Client, obj, kustomizev1.KustomizationFinalizer)
}

// deleteObjects deletes what the Kustomization applied, in the cluster it
// applied it to, except what another Kustomization still applies. When the
// remote cluster's kubeConfig is gone or was never usable, and so nothing
// can be deleted there, the objects are left in place with a Warning
// event, as helm-controller does for a release, rather than holding the
// deletion (and its namespace's) for good.
func (r *Reconciler) deleteObjects(ctx context.Context, obj *kustomizev1.Kustomization, policy string) error {
	t, err := r.targetFor(ctx, obj)
	if err != nil {
		if obj.Spec.KubeConfig != nil && (apierrors.IsNotFound(err) || errors.Is(err, kubeconfig.ErrUnsupported) || !holdsObjects(obj)) {
			r.Recorder.Eventf(obj, corev1.EventTypeWarning, meta.PruneFailedReason,
				"the objects in the remote cluster were left in place: %s", err)
			return nil
		}
		return err
	}
	objects, err := r.deletionTargets(ctx, obj, t)
	if err != nil {
		return t.explain(ctx, r, obj, err)
	}
	if objects, err = r.keepShared(ctx, obj, objects); err != nil {
		return err
	}
	if _, err := t.applier.Prune(ctx, apply.Owner{Name: obj.Name, Namespace: obj.Namespace}, objects); err != nil {
		return t.explain(ctx, r, obj, err)
	}
	if policy == kustomizev1.DeletionPolicyWaitForTermination {
		wctx, cancel := context.WithTimeout(ctx, obj.GetTimeout())
		defer cancel()
		if err := t.applier.WaitDeleted(wctx, objects); err != nil {
			return fmt.Errorf("waiting for the objects to be deleted: %w", err)
		}
	}
	return nil
}

// holdsObjects reports whether the Kustomization's inventory lists objects.
func holdsObjects(obj *kustomizev1.Kustomization) bool {
	return obj.Status.Inventory != nil && len(obj.Status.Inventory.Entries) > 0
}

func (r *Reconciler) waitingFor(key client.ObjectKey) *healthWait {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.waiting[key]
}

func (r *Reconciler) setWaiting(key client.ObjectKey, w *healthWait) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.waiting == nil {
		r.waiting = map[client.ObjectKey]*healthWait{}
	}
	if w == nil {
		delete(r.waiting, key)
		return
	}
	r.waiting[key] = w
}

func (r *Reconciler) recordMetrics(obj *kustomizev1.Kustomization, start time.Time) {
	if r.Metrics == nil || !obj.DeletionTimestamp.IsZero() {
		return
	}
	ref := objectRef(obj)
	r.Metrics.RecordDuration(ref, start)
	r.Metrics.RecordSuspend(ref, obj.Spec.Suspend)
}

func objectRef(obj *kustomizev1.Kustomization) corev1.ObjectReference {
	return corev1.ObjectReference{Kind: kustomizev1.KustomizationKind, APIVersion: kustomizev1.GroupVersion.String(), Namespace: obj.Namespace, Name: obj.Name}
}
