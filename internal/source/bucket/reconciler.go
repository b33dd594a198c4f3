package bucket

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
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
	"github.com/weirhq/weir/internal/lifecycle"
)

// ControllerName is the component name on events, as Flux's source-controller.
const ControllerName = "source-controller"

// defaultTimeout is Flux's default for spec.timeout.
const defaultTimeout = 60 * time.Second

// Reconciler reconciles Bucket objects.
type Reconciler struct {
	client.Client
	// Store keeps the artifacts.
	Store *artifact.Store
	// Recorder emits Kubernetes events.
	Recorder record.EventRecorder
	// Metrics records Flux's gotk_* metrics; nil records nothing.
	Metrics *metrics.Recorder

	fresh lifecycle.Fresh
}

// Options size the controller's work queue.
type Options = lifecycle.Options

// SetupWithManager registers the controller: it reconciles on spec changes
// and on reconcile requests, and again after spec.interval.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager, opts Options) error {
	r.fresh.Use(mgr)
	return ctrl.NewControllerManagedBy(mgr).
		Named("bucket").
		For(&sourcev1.Bucket{}, builder.WithPredicates(predicate.Or(predicate.GenerationChangedPredicate{}, predicates.ReconcileRequestedPredicate{}))).
		WithOptions(opts.Controller(750 * time.Millisecond)).
		Complete(r)
}

// Reconcile brings one Bucket's artifact up to date with its bucket.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	log := ctrl.LoggerFrom(ctx)
	obj := &sourcev1.Bucket{}
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
	if result, err := lifecycle.Finish(ctx, r.Client, obj, orig, result, recErr, lifecycle.Retry{}); recErr != nil || err != nil {
		return result, err
	}
	log.V(1).Info("reconciled", "revision", obj.Status.Artifact.Revision, "took", time.Since(start).String())
	return result, nil
}

// reconcile runs the steps in order and leaves the outcome in obj's status:
// list the bucket into an index, stop there when the index's digest is the
// stored revision, else download the objects and store them.
func (r *Reconciler) reconcile(ctx context.Context, obj *sourcev1.Bucket) (ctrl.Result, error) {
	if obj.Status.ObservedGeneration != obj.Generation {
		r.markProgressing(ctx, obj, fmt.Sprintf("processing object: new generation %d -> %d", obj.Status.ObservedGeneration, obj.Generation))
	}
	// After markProgressing, which refreshes obj from the server: set
	// before, the request would be lost when a spec change and a request
	// come together, as `resume` sends them.
	if v, ok := meta.ReconcileAnnotationValue(obj.GetAnnotations()); ok {
		obj.Status.SetLastHandledReconcileRequest(v)
	}
	bc, err := r.clientFor(ctx, obj)
	if err != nil {
		return r.failWith(obj, err)
	}
	timeout := defaultTimeout
	if obj.Spec.Timeout != nil {
		timeout = obj.Spec.Timeout.Duration
	}
	fetchCtx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	scratch, err := os.MkdirTemp("", "bucket-")
	if err != nil {
		return r.fail(obj, sourcev1.StorageOperationFailedCondition, sourcev1.DirCreationFailedReason,
			fmt.Errorf("failed to create temporary working directory: %w", err))
	}
	defer os.RemoveAll(scratch)

	idx, err := bc.index(fetchCtx, obj, r.maxTreeSize())
	if err != nil {
		return r.fail(obj, sourcev1.FetchFailedCondition, sourcev1.BucketOperationFailedReason, err)
	}
	if r.upToDate(obj, idx.revision()) {
		// New ignore rules that leave the same objects give the same
		// artifact: it was built with them as much as with the old ones.
		obj.Status.ObservedIgnore = obj.Spec.Ignore
		r.markReady(obj)
		return ctrl.Result{RequeueAfter: obj.GetRequeueAfter()}, nil
	}
	if obj.Status.Artifact != nil {
		r.markOutdated(ctx, obj, idx.revision())
	}

	dir := filepath.Join(scratch, "content")
	if err := bc.download(fetchCtx, idx, dir, r.maxTreeSize()); err != nil {
		return r.fail(obj, sourcev1.FetchFailedCondition, sourcev1.BucketOperationFailedReason, err)
	}
	art, err := r.Store.Archive(ctx, storeRef(obj), idx.revision(), dir, artifact.KeepAll())
	if err != nil {
		return r.fail(obj, sourcev1.StorageOperationFailedCondition, sourcev1.ArchiveOperationFailedReason,
			fmt.Errorf("unable to archive artifact to storage: %w", err))
	}

	prev := obj.Status.Artifact
	obj.Status.Artifact = art
	obj.Status.URL = art.URL
	obj.Status.ObservedIgnore = obj.Spec.Ignore
	r.markReady(obj)
	if prev == nil || prev.Digest != art.Digest {
		r.Recorder.AnnotatedEventf(obj, eventMetadata(art), corev1.EventTypeNormal, "NewArtifact",
			"stored artifact with %d fetched files from '%s' bucket", idx.len(), obj.Spec.BucketName)
	}
	if _, err := r.Store.GC(storeRef(obj), art); err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "garbage-collecting old artifacts")
	}
	return ctrl.Result{RequeueAfter: obj.GetRequeueAfter()}, nil
}

// failWith records a failure that carries its own condition and reason.
func (r *Reconciler) failWith(obj *sourcev1.Bucket, err error) (ctrl.Result, error) {
	var f *failure
	if !errors.As(err, &f) {
		return r.fail(obj, sourcev1.FetchFailedCondition, sourcev1.AuthenticationFailedReason, err)
	}
	if f.stalled {
		return r.stall(obj, sourcev1.FetchFailedCondition, f.reason, f.err)
	}
	return r.fail(obj, sourcev1.FetchFailedCondition, f.reason, f.err)
}

// upToDate reports whether the stored artifact was built from this index.
// The index is taken after the prefix and the ignore rules, so a change of
// either changes the revision.
func (r *Reconciler) upToDate(obj *sourcev1.Bucket, revision string) bool {
	a := obj.Status.Artifact
	return a != nil && a.Revision == revision && r.Store.Has(a)
}

// defaultMaxTreeSize bounds what one Bucket downloads when the store sets
// no limit of its own.
const defaultMaxTreeSize = 1 << 30

func (r *Reconciler) maxTreeSize() int64 {
	if r.Store.MaxTreeSize > 0 {
		return r.Store.MaxTreeSize
	}
	return defaultMaxTreeSize
}

// finalize removes the object's artifacts, then its finalizer.
func (r *Reconciler) finalize(ctx context.Context, obj *sourcev1.Bucket) error {
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

func (r *Reconciler) recordMetrics(obj *sourcev1.Bucket, start time.Time) {
	if r.Metrics == nil || !obj.DeletionTimestamp.IsZero() {
		return
	}
	ref := objectRef(obj)
	r.Metrics.RecordDuration(ref, start)
	r.Metrics.RecordSuspend(ref, obj.Spec.Suspend)
}

func objectRef(obj *sourcev1.Bucket) corev1.ObjectReference {
	return corev1.ObjectReference{Kind: sourcev1.BucketKind, APIVersion: sourcev1.GroupVersion.String(), Namespace: obj.Namespace, Name: obj.Name}
}

func storeRef(obj *sourcev1.Bucket) artifact.Ref {
	return artifact.Ref{Kind: sourcev1.BucketKind, Namespace: obj.Namespace, Name: obj.Name}
}

// eventMetadata are the annotations source-controller puts on its events.
func eventMetadata(a *meta.Artifact) map[string]string {
	return map[string]string{
		sourcev1.GroupVersion.Group + "/revision": a.Revision,
		sourcev1.GroupVersion.Group + "/digest":   a.Digest,
	}
}
