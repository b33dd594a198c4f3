package bucket

import (
	"context"
	"fmt"

	"github.com/fluxcd/pkg/apis/meta"
	"github.com/fluxcd/pkg/runtime/conditions"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	corev1 "k8s.io/api/core/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/weirhq/weir/internal/lifecycle"
)

// failureConditions are the conditions a successful reconcile clears.
var failureConditions = []string{
	sourcev1.FetchFailedCondition,
	sourcev1.StorageOperationFailedCondition,
	sourcev1.ArtifactOutdatedCondition,
	meta.StalledCondition,
	meta.ReconcilingCondition,
}

// markProgressing records that a new generation is being worked on and
// writes it at once, so that kstatus and `weir get` show progress.
func (r *Reconciler) markProgressing(ctx context.Context, obj *sourcev1.Bucket, msg string) {
	orig := obj.DeepCopy()
	conditions.MarkReconciling(obj, meta.ProgressingReason, "%s", msg)
	conditions.MarkUnknown(obj, meta.ReadyCondition, meta.ProgressingReason, "%s", msg)
	r.patchStatus(ctx, obj, orig)
}

// markOutdated records, as source-controller does, that the bucket has a
// new revision the stored artifact does not hold yet, and writes it at
// once: a large bucket takes a while to download.
func (r *Reconciler) markOutdated(ctx context.Context, obj *sourcev1.Bucket, revision string) {
	orig := obj.DeepCopy()
	msg := fmt.Sprintf("new upstream revision '%s'", revision)
	conditions.MarkTrue(obj, sourcev1.ArtifactOutdatedCondition, "NewRevision", "%s", msg)
	conditions.MarkReconciling(obj, meta.ProgressingReason, "building artifact: %s", msg)
	conditions.MarkUnknown(obj, meta.ReadyCondition, meta.ProgressingReason, "building artifact: %s", msg)
	r.patchStatus(ctx, obj, orig)
}

// patchStatus writes the conditions changed since orig. The patch
// refreshes obj from the server, which would drop a reconcile request
// handled in this reconcile but not written yet: it is kept.
func (r *Reconciler) patchStatus(ctx context.Context, obj *sourcev1.Bucket, orig *sourcev1.Bucket) {
	handled := obj.Status.LastHandledReconcileAt
	if err := r.Status().Patch(ctx, obj, client.MergeFrom(orig)); err != nil {
		ctrl.LoggerFrom(ctx).V(1).Info("could not record progress", "error", err.Error())
	}
	obj.Status.LastHandledReconcileAt = handled
}

// storedMessage is source-controller's message for a Bucket artifact in
// storage, on ArtifactInStorage and Ready.
func storedMessage(obj *sourcev1.Bucket) string {
	return fmt.Sprintf("stored artifact: revision '%s'", obj.Status.Artifact.Revision)
}

// markReady records a stored, current artifact.
func (r *Reconciler) markReady(obj *sourcev1.Bucket) {
	for _, t := range failureConditions {
		conditions.Delete(obj, t)
	}
	msg := storedMessage(obj)
	conditions.MarkTrue(obj, sourcev1.ArtifactInStorageCondition, meta.SucceededReason, "%s", msg)
	conditions.MarkTrue(obj, meta.ReadyCondition, meta.SucceededReason, "%s", msg)
}

// fail records a failure that a retry may fix: the failure's own condition,
// Ready=False with the same reason and message, Reconciling with retry, and
// a Warning event. The stored artifact, if any, is kept and still served.
func (r *Reconciler) fail(obj *sourcev1.Bucket, condition, reason string, err error) (ctrl.Result, error) {
	r.markFailed(obj, condition, reason, err)
	conditions.MarkReconciling(obj, meta.ProgressingWithRetryReason, "%s", err.Error())
	conditions.Delete(obj, meta.StalledCondition)
	return ctrl.Result{}, err
}

// stall records a failure that only a spec change can fix.
func (r *Reconciler) stall(obj *sourcev1.Bucket, condition, reason string, err error) (ctrl.Result, error) {
	r.markFailed(obj, condition, reason, err)
	conditions.Delete(obj, meta.ReconcilingCondition)
	conditions.MarkStalled(obj, reason, "%s", err.Error())
	return ctrl.Result{}, &lifecycle.StalledError{Err: err}
}

func (r *Reconciler) markFailed(obj *sourcev1.Bucket, condition, reason string, err error) {
	msg := err.Error()
	conditions.MarkTrue(obj, condition, reason, "%s", msg)
	conditions.MarkFalse(obj, meta.ReadyCondition, reason, "%s", msg)
	if obj.Status.Artifact != nil && r.Store.Has(obj.Status.Artifact) {
		conditions.MarkTrue(obj, sourcev1.ArtifactInStorageCondition, meta.SucceededReason, "%s", storedMessage(obj))
	}
	r.Recorder.Event(obj, corev1.EventTypeWarning, reason, msg)
}
