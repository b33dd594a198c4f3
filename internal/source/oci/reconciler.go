package oci

import (
	"context"
	"errors"
	"fmt"
	"os"
	"reflect"
	"time"

	"github.com/fluxcd/pkg/apis/meta"
	"github.com/fluxcd/pkg/runtime/metrics"
	"github.com/fluxcd/pkg/runtime/predicates"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/record"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	"github.com/weirhq/weir/internal/artifact"
	"github.com/weirhq/weir/internal/cosign"

	"github.com/weirhq/weir/internal/lifecycle"
)

// ControllerName is the component name on events, as Flux's source-controller.
const ControllerName = "source-controller"

// defaultTimeout is Flux's default for spec.timeout.
const defaultTimeout = 60 * time.Second

// Reconciler reconciles OCIRepository objects.
type Reconciler struct {
	client.Client
	// Store keeps the artifacts.
	Store *artifact.Store
	// Recorder emits Kubernetes events.
	Recorder record.EventRecorder
	// Metrics records Flux's gotk_* metrics; nil records nothing.
	Metrics *metrics.Recorder
	// SigstoreRoots gives the trusted root of keyless verification to
	// objects that name none; nil uses the public-good instance.
	SigstoreRoots *cosign.Roots

	fresh lifecycle.Fresh
}

// Options size the controller's work queue.
type Options = lifecycle.Options

// SetupWithManager registers the controller: it reconciles on spec changes
// and on reconcile requests, and again after spec.interval.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager, opts Options) error {
	r.fresh.Use(mgr)
	return ctrl.NewControllerManagedBy(mgr).
		Named("ocirepository").
		For(&sourcev1.OCIRepository{}, builder.WithPredicates(predicate.Or(predicate.GenerationChangedPredicate{}, predicates.ReconcileRequestedPredicate{}))).
		WithOptions(opts.Controller(750 * time.Millisecond)).
		Complete(r)
}

// Reconcile brings one OCIRepository's artifact up to date with its registry.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	log := ctrl.LoggerFrom(ctx)
	obj := &sourcev1.OCIRepository{}
	if err := r.fresh.Get(ctx, r.Client, req.NamespacedName, obj); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	start := time.Now()
	defer r.recordMetrics(obj, start)

	if !obj.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, r.finalize(ctx, obj)
	}
	if err := lifecycle.AddFinalizer(ctx, r.Client, obj, sourcev1.SourceFinalizer); err != nil {
		return ctrl.Result{}, err
	}
	if obj.Spec.Suspend {
		log.Info("reconciliation is suspended for this object")
		return ctrl.Result{}, nil
	}

	orig := obj.DeepCopy()
	result, recErr := r.reconcile(ctx, obj)
	obj.Status.ObservedGeneration = obj.Generation
	// The shared last step: the status written, then a stalled failure
	// left until the spec (or, for a chart, its source) changes, another
	// failure returned for the queue's back-off.
	if result, err := lifecycle.Finish(ctx, r.Client, obj, orig, result, recErr, lifecycle.Retry{}); recErr != nil || err != nil {
		return result, err
	}
	log.V(1).Info("reconciled", "revision", obj.Status.Artifact.Revision, "took", time.Since(start).String())
	return result, nil
}

// reconcile runs the steps in order and leaves the outcome in obj's status:
// resolve the ref to a digest (one HEAD request), verify its signature
// when spec.verify asks, stop there when that digest is stored already,
// else pull and store.
func (r *Reconciler) reconcile(ctx context.Context, obj *sourcev1.OCIRepository) (ctrl.Result, error) {
	if obj.Status.ObservedGeneration != obj.Generation {
		r.markProgressing(ctx, obj, "reconciliation in progress")
	}
	// After markProgressing, which refreshes obj from the server: set
	// before, the request would be lost when a spec change and a request
	// come together, as `resume` sends them.
	if v, ok := meta.ReconcileAnnotationValue(obj.GetAnnotations()); ok {
		obj.Status.SetLastHandledReconcileRequest(v)
	}
	if reason, err := unsupported(obj); err != nil {
		return r.stall(obj, sourcev1.FetchFailedCondition, reason, err)
	}
	repo, err := ParseURL(obj.Spec.URL, obj.Spec.Insecure)
	if err != nil {
		return r.stall(obj, sourcev1.FetchFailedCondition, sourcev1.URLInvalidReason, err)
	}
	reg, err := r.registryFor(ctx, obj, repo)
	if err != nil {
		return r.fail(obj, sourcev1.FetchFailedCondition, sourcev1.AuthenticationFailedReason, err)
	}
	defer reg.close()
	timeout := defaultTimeout
	if obj.Spec.Timeout != nil {
		timeout = obj.Spec.Timeout.Duration
	}
	fetchCtx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	ref, err := reg.reference(fetchCtx, obj.Spec.Reference)
	if err != nil {
		var inv *invalidRefError
		if errors.As(err, &inv) {
			return r.stall(obj, sourcev1.FetchFailedCondition, sourcev1.ReadOperationFailedReason, err)
		}
		return r.fail(obj, sourcev1.FetchFailedCondition, sourcev1.ReadOperationFailedReason,
			fmt.Errorf("failed to determine the artifact tag for '%s': %w", obj.Spec.URL, err))
	}
	tgt, err := reg.resolve(fetchCtx, ref)
	if err != nil {
		return r.fail(obj, sourcev1.FetchFailedCondition, sourcev1.OCIPullFailedReason,
			fmt.Errorf("failed to determine artifact digest: %w", err))
	}
	if err := r.verifySignature(fetchCtx, obj, reg, tgt); err != nil {
		return r.unverified(obj, err)
	}
	if r.upToDate(obj, tgt) {
		r.markReady(obj)
		return ctrl.Result{RequeueAfter: obj.GetRequeueAfter()}, nil
	}

	scratch, err := os.MkdirTemp("", "ocirepository-")
	if err != nil {
		return r.fail(obj, sourcev1.StorageOperationFailedCondition, sourcev1.DirCreationFailedReason, fmt.Errorf("creating a work folder: %w", err))
	}
	defer os.RemoveAll(scratch)
	art, err := r.pull(fetchCtx, obj, reg, tgt, scratch)
	if err != nil {
		var pe *pullError
		if errors.As(err, &pe) {
			return r.fail(obj, pe.condition, pe.reason, pe.err)
		}
		return r.fail(obj, sourcev1.StorageOperationFailedCondition, sourcev1.ArchiveOperationFailedReason, err)
	}

	prev := obj.Status.Artifact
	obj.Status.Artifact = art
	obj.Status.URL = art.URL
	obj.Status.ObservedIgnore = obj.Spec.Ignore
	obj.Status.ObservedLayerSelector = obj.Spec.LayerSelector
	r.markReady(obj)
	if prev == nil || prev.Digest != art.Digest {
		r.Recorder.AnnotatedEventf(obj, eventMetadata(art), corev1.EventTypeNormal, "NewArtifact", "%s", newArtifactMessage(obj))
	}
	if _, err := r.Store.GC(storeRef(obj), art); err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "garbage-collecting old artifacts")
	}
	return ctrl.Result{RequeueAfter: obj.GetRequeueAfter()}, nil
}

// upToDate reports whether the stored artifact already holds this digest,
// built with the same ignore rules and layer selector, so nothing needs
// pulling.
func (r *Reconciler) upToDate(obj *sourcev1.OCIRepository, tgt target) bool {
	a := obj.Status.Artifact
	if a == nil || a.Revision != tgt.revision() || !r.Store.Has(a) {
		return false
	}
	return reflect.DeepEqual(obj.Status.ObservedIgnore, obj.Spec.Ignore) &&
		reflect.DeepEqual(obj.Status.ObservedLayerSelector, obj.Spec.LayerSelector)
}

// finalize removes the object's artifacts, then its finalizer.
func (r *Reconciler) finalize(ctx context.Context, obj *sourcev1.OCIRepository) error {
	if err := r.Store.Remove(storeRef(obj)); err != nil {
		return fmt.Errorf("removing the artifacts of %s/%s: %w", obj.Namespace, obj.Name, err)
	}
	if r.Metrics != nil {
		ref := objectRef(obj)
		r.Metrics.DeleteDuration(ref)
		r.Metrics.DeleteSuspend(ref)
	}
	return lifecycle.RemoveFinalizer(ctx, r.Client, obj, sourcev1.SourceFinalizer)
}

func (r *Reconciler) recordMetrics(obj *sourcev1.OCIRepository, start time.Time) {
	if r.Metrics == nil || !obj.DeletionTimestamp.IsZero() {
		return
	}
	ref := objectRef(obj)
	r.Metrics.RecordDuration(ref, start)
	r.Metrics.RecordSuspend(ref, obj.Spec.Suspend)
}

func objectRef(obj *sourcev1.OCIRepository) corev1.ObjectReference {
	return corev1.ObjectReference{Kind: sourcev1.OCIRepositoryKind, APIVersion: sourcev1.GroupVersion.String(), Namespace: obj.Namespace, Name: obj.Name}
}

func storeRef(obj *sourcev1.OCIRepository) artifact.Ref {
	return artifact.Ref{Kind: sourcev1.OCIRepositoryKind, Namespace: obj.Namespace, Name: obj.Name}
}

// eventMetadata are the annotations source-controller puts on its events.
func eventMetadata(a *meta.Artifact) map[string]string {
	return map[string]string{
		sourcev1.GroupVersion.Group + "/revision": a.Revision,
		sourcev1.GroupVersion.Group + "/digest":   a.Digest,
	}
}

// OCI annotations that say where an artifact was built from, as `flux push
// artifact --source --revision` writes them.
const (
	sourceAnnotation   = "org.opencontainers.image.source"
	revisionAnnotation = "org.opencontainers.image.revision"
)

// newArtifactMessage is source-controller's NewArtifact event message.
func newArtifactMessage(obj *sourcev1.OCIRepository) string {
	a := obj.Status.Artifact
	msg := fmt.Sprintf("stored artifact with revision '%s' from '%s'", a.Revision, obj.Spec.URL)
	if src, rev := a.Metadata[sourceAnnotation], a.Metadata[revisionAnnotation]; src != "" && rev != "" {
		msg += fmt.Sprintf(", origin source '%s', origin revision '%s'", src, rev)
	}
	return msg
}
