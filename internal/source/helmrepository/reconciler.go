package helmrepository

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/fluxcd/pkg/apis/meta"
	"github.com/fluxcd/pkg/runtime/conditions"
	"github.com/fluxcd/pkg/runtime/metrics"
	"github.com/fluxcd/pkg/runtime/predicates"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/record"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	"github.com/weirhq/weir/internal/artifact"

	"github.com/weirhq/weir/internal/lifecycle"
)

// ControllerName is the component name on events, as Flux's source-controller.
const ControllerName = "source-controller"

// Reconciler reconciles HelmRepository objects.
type Reconciler struct {
	client.Client
	// Store keeps the artifacts.
	Store *artifact.Store
	// Recorder emits Kubernetes events.
	Recorder record.EventRecorder
	// Metrics records Flux's gotk_* metrics; nil records nothing.
	Metrics *metrics.Recorder

	// validators remembers, per object, what the server said about the
	// stored index, to fetch it conditionally next time. It lives in
	// memory only: after a restart the first fetch is a full one, and an
	// unchanged index is then recognised by its digest.
	mu         sync.Mutex
	validators map[types.NamespacedName]cachedValidators

	fresh lifecycle.Fresh
}

// cachedValidators are the validators of the index stored as revision,
// fetched from url for the given generation of the object.
type cachedValidators struct {
	Validators
	url        string
	generation int64
	revision   string
}

// Options size the controller's work queue.
type Options = lifecycle.Options

// SetupWithManager registers the controller: it reconciles on spec changes
// and on reconcile requests, and again after spec.interval.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager, opts Options) error {
	r.fresh.Use(mgr)
	return ctrl.NewControllerManagedBy(mgr).
		Named("helmrepository").
		For(&sourcev1.HelmRepository{}, builder.WithPredicates(predicate.Or(predicate.GenerationChangedPredicate{}, predicates.ReconcileRequestedPredicate{}))).
		WithOptions(opts.Controller(750 * time.Millisecond)).
		Complete(r)
}

// Reconcile brings one HelmRepository's index up to date with its server,
// or marks a HelmRepository of type oci Ready.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	log := ctrl.LoggerFrom(ctx)
	obj := &sourcev1.HelmRepository{}
	if err := r.fresh.Get(ctx, r.Client, req.NamespacedName, obj); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	start := time.Now()
	defer r.recordMetrics(obj, start)

	if !obj.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, r.finalize(ctx, obj)
	}
	if obj.Spec.Suspend {
		log.Info("reconciliation is suspended for this object")
		return ctrl.Result{}, nil
	}
	if obj.Spec.Type == sourcev1.HelmRepositoryTypeOCI {
		return r.reconcileOCI(ctx, obj)
	}
	if err := lifecycle.AddFinalizer(ctx, r.Client, obj, sourcev1.SourceFinalizer); err != nil {
		return ctrl.Result{}, err
	}

	orig := obj.DeepCopy()
	result, recErr := r.reconcile(ctx, obj)
	// The shared last step: the status written, then a stalled failure
	// left until the spec changes, another failure returned for the
	// queue's back-off.
	obj.Status.ObservedGeneration = obj.Generation
	if result, err := lifecycle.Finish(ctx, r.Client, obj, orig, result, recErr, lifecycle.Retry{}); recErr != nil || err != nil {
		return result, err
	}
	log.V(1).Info("reconciled", "revision", obj.Status.Artifact.Revision, "took", time.Since(start).String())
	return result, nil
}

// reconcile fetches the index (conditionally when the server gave
// validators for the stored one), stops there when it is the stored one,
// and otherwise checks it and stores it.
func (r *Reconciler) reconcile(ctx context.Context, obj *sourcev1.HelmRepository) (ctrl.Result, error) {
	r.begin(ctx, obj)
	if strings.HasPrefix(obj.Spec.URL, sourcev1.OCIRepositoryPrefix) {
		return r.stall(obj, sourcev1.FetchFailedCondition, sourcev1.URLInvalidReason,
			errors.New("invalid Helm repository URL: 'oci' URL scheme cannot be used with 'default' HelmRepository type"))
	}
	if _, err := NormalizeURL(obj.Spec.URL); err != nil {
		return r.stall(obj, sourcev1.FetchFailedCondition, sourcev1.URLInvalidReason,
			fmt.Errorf("invalid Helm repository URL '%s': %w", RedactURL(obj.Spec.URL), err))
	}
	getter, err := NewGetter(ctx, r.Client, obj)
	if err != nil {
		return r.fail(obj, sourcev1.FetchFailedCondition, sourcev1.AuthenticationFailedReason, err)
	}
	defer getter.Close()
	fetchCtx, cancel := context.WithTimeout(ctx, obj.GetTimeout())
	defer cancel()

	known := r.knownValidators(obj, getter.URL)
	resp, err := getter.FetchIndex(fetchCtx, known)
	if err != nil {
		return r.fail(obj, sourcev1.FetchFailedCondition, meta.FailedReason,
			fmt.Errorf("failed to fetch Helm repository index: %w", err))
	}
	if resp.NotModified {
		r.markReady(obj)
		return ctrl.Result{RequeueAfter: obj.GetRequeueAfter()}, nil
	}
	revision := Revision(resp.Body)
	if a := obj.Status.Artifact; a != nil && a.Revision == revision && r.Store.Has(a) {
		r.rememberValidators(obj, getter.URL, revision, resp.Validators)
		r.markReady(obj)
		return ctrl.Result{RequeueAfter: obj.GetRequeueAfter()}, nil
	}

	index, err := LoadIndex(resp.Body)
	if err != nil {
		return r.fail(obj, sourcev1.FetchFailedCondition, sourcev1.IndexationFailedReason,
			fmt.Errorf("failed to load Helm repository from index YAML: %w", err))
	}
	// Stored as JSON, as source-controller does: it is still YAML, and
	// HelmCharts read it back much faster.
	b, err := json.Marshal(index)
	if err != nil {
		return r.fail(obj, sourcev1.StorageOperationFailedCondition, sourcev1.ArchiveOperationFailedReason,
			fmt.Errorf("unable to get JSON index from chart repo: %w", err))
	}
	art, err := r.Store.CopyYAML(ctx, storeRef(obj), revision, bytes.NewReader(b))
	if err != nil {
		return r.fail(obj, sourcev1.StorageOperationFailedCondition, sourcev1.ArchiveOperationFailedReason,
			fmt.Errorf("unable to save artifact to storage: %w", err))
	}
	obj.Status.Artifact = art
	obj.Status.URL = art.URL
	r.rememberValidators(obj, getter.URL, revision, resp.Validators)
	r.markReady(obj)
	r.Recorder.AnnotatedEventf(obj, eventMetadata(art), corev1.EventTypeNormal, "NewArtifact",
		"stored fetched index of size %s from '%s'", humanSize(*art.Size), RedactURL(getter.URL))
	if _, err := r.Store.GC(storeRef(obj), art); err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "garbage-collecting old artifacts")
	}
	return ctrl.Result{RequeueAfter: obj.GetRequeueAfter()}, nil
}

// begin records progress on a new generation and takes the reconcile
// request the object carries, if any.
func (r *Reconciler) begin(ctx context.Context, obj *sourcev1.HelmRepository) {
	if obj.Status.ObservedGeneration != obj.Generation {
		r.markProgressing(ctx, obj)
	}
	// After markProgressing, which refreshes obj from the server: set
	// before, the request would be lost when a spec change and a request
	// come together, as `resume` sends them.
	if v, ok := meta.ReconcileAnnotationValue(obj.GetAnnotations()); ok {
		obj.Status.SetLastHandledReconcileRequest(v)
	}
}

// reconcileOCI handles a HelmRepository of type oci, a data container
// that HelmCharts read: it has no artifact (one left from type default is
// removed, with the finalizer) and is Ready, unless weir cannot use it.
func (r *Reconciler) reconcileOCI(ctx context.Context, obj *sourcev1.HelmRepository) (ctrl.Result, error) {
	if controllerutil.ContainsFinalizer(obj, sourcev1.SourceFinalizer) || obj.Status.Artifact != nil {
		if err := r.Store.Remove(storeRef(obj)); err != nil {
			return ctrl.Result{}, fmt.Errorf("removing the artifacts of %s/%s: %w", obj.Namespace, obj.Name, err)
		}
		r.forgetValidators(obj)
		if err := lifecycle.RemoveFinalizer(ctx, r.Client, obj, sourcev1.SourceFinalizer); err != nil {
			return ctrl.Result{}, err
		}
	}
	orig := obj.DeepCopy()
	if v, ok := meta.ReconcileAnnotationValue(obj.GetAnnotations()); ok {
		obj.Status.SetLastHandledReconcileRequest(v)
	}
	obj.Status.Artifact = nil
	obj.Status.URL = ""
	conditions.Delete(obj, sourcev1.ArtifactInStorageCondition)
	var recErr error
	switch {
	case !strings.HasPrefix(obj.Spec.URL, sourcev1.OCIRepositoryPrefix):
		_, recErr = r.stall(obj, "", sourcev1.URLInvalidReason,
			fmt.Errorf("invalid OCI registry URL '%s': a HelmRepository of type 'oci' needs an oci:// URL", RedactURL(obj.Spec.URL)))
	case obj.Spec.Provider != "" && obj.Spec.Provider != sourcev1.GenericOCIProvider:
		_, recErr = r.stall(obj, "", sourcev1.InvalidProviderConfigurationReason,
			fmt.Errorf("provider '%s' is not supported by weir: use provider 'generic' with a secretRef", obj.Spec.Provider))
	default:
		for _, t := range failureConditions {
			conditions.Delete(obj, t)
		}
		conditions.MarkTrue(obj, meta.ReadyCondition, meta.SucceededReason, "%s", OCIReadyMessage)
	}
	// Static: nothing to fetch, so no requeue after the interval; a
	// failure here is always a stall.
	obj.Status.ObservedGeneration = obj.Generation
	return lifecycle.Finish(ctx, r.Client, obj, orig, ctrl.Result{}, recErr, lifecycle.Retry{})
}

// knownValidators returns the validators of the stored index, when the
// server gave some and the stored index is still the one they describe.
func (r *Reconciler) knownValidators(obj *sourcev1.HelmRepository, url string) Validators {
	a := obj.Status.Artifact
	if a == nil {
		return Validators{}
	}
	r.mu.Lock()
	v, ok := r.validators[client.ObjectKeyFromObject(obj)]
	r.mu.Unlock()
	if !ok || v.url != url || v.generation != obj.Generation || v.revision != a.Revision || !r.Store.Has(a) {
		return Validators{}
	}
	return v.Validators
}

func (r *Reconciler) rememberValidators(obj *sourcev1.HelmRepository, url, revision string, v Validators) {
	r.mu.Lock()
	defer r.mu.Unlock()
	key := client.ObjectKeyFromObject(obj)
	if v.IsZero() {
		delete(r.validators, key)
		return
	}
	if r.validators == nil {
		r.validators = map[types.NamespacedName]cachedValidators{}
	}
	r.validators[key] = cachedValidators{Validators: v, url: url, generation: obj.Generation, revision: revision}
}

func (r *Reconciler) forgetValidators(obj *sourcev1.HelmRepository) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.validators, client.ObjectKeyFromObject(obj))
}

// finalize removes the object's artifacts, then its finalizer.
func (r *Reconciler) finalize(ctx context.Context, obj *sourcev1.HelmRepository) error {
	if err := r.Store.Remove(storeRef(obj)); err != nil {
		return fmt.Errorf("removing the artifacts of %s/%s: %w", obj.Namespace, obj.Name, err)
	}
	r.forgetValidators(obj)
	if r.Metrics != nil {
		ref := objectRef(obj)
		r.Metrics.DeleteDuration(ref)
		r.Metrics.DeleteSuspend(ref)
	}
	return lifecycle.RemoveFinalizer(ctx, r.Client, obj, sourcev1.SourceFinalizer)
}

func (r *Reconciler) recordMetrics(obj *sourcev1.HelmRepository, start time.Time) {
	if r.Metrics == nil || !obj.DeletionTimestamp.IsZero() {
		return
	}
	ref := objectRef(obj)
	r.Metrics.RecordDuration(ref, start)
	r.Metrics.RecordSuspend(ref, obj.Spec.Suspend)
}

func objectRef(obj *sourcev1.HelmRepository) corev1.ObjectReference {
	return corev1.ObjectReference{Kind: sourcev1.HelmRepositoryKind, APIVersion: sourcev1.GroupVersion.String(), Namespace: obj.Namespace, Name: obj.Name}
}

func storeRef(obj *sourcev1.HelmRepository) artifact.Ref {
	return artifact.Ref{Kind: sourcev1.HelmRepositoryKind, Namespace: obj.Namespace, Name: obj.Name}
}

// eventMetadata are the annotations source-controller puts on its events.
func eventMetadata(a *meta.Artifact) map[string]string {
	return map[string]string{
		sourcev1.GroupVersion.Group + "/revision": a.Revision,
		sourcev1.GroupVersion.Group + "/digest":   a.Digest,
	}
}
