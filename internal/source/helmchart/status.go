package helmchart

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
	sourcev1.BuildFailedCondition,
	sourcev1.StorageOperationFailedCondition,
	sourcev1.ArtifactOutdatedCondition,
	meta.StalledCondition,
	meta.ReconcilingCondition,
}

// markProgressing records that a new generation is being worked on and
// writes it at once, so that kstatus and `weir get` show progress.
func (r *Reconciler) markProgressing(ctx context.Context, obj *sourcev1.HelmChart) {
	orig := obj.DeepCopy()
	msg := fmt.Sprintf("processing object: new generation %d -> %d", obj.Status.ObservedGeneration, obj.Generation)
	conditions.MarkReconciling(obj, meta.ProgressingReason, "%s", msg)
	conditions.MarkUnknown(obj, meta.ReadyCondition, meta.ProgressingReason, "%s", msg)
	if err := r.Status().Patch(ctx, obj, client.MergeFrom(orig)); err != nil {
		ctrl.LoggerFrom(ctx).V(1).Info("could not record progress", "error", err.Error())
	}
}

// markReady records a stored, current chart: ArtifactInStorage and Ready
// with source-controller's summary of the build.
func (r *Reconciler) markReady(obj *sourcev1.HelmChart, b *build) {
	for _, t := range failureConditions {
		conditions.Delete(obj, t)
	}
	if b.verified {
		conditions.MarkTrue(obj, sourcev1.SourceVerifiedCondition, meta.SucceededReason, "verified signature of version %s", b.version)
	}
	conditions.MarkTrue(obj, sourcev1.ArtifactInStorageCondition, b.reason(), "%s", b.summary())
	conditions.MarkTrue(obj, meta.ReadyCondition, b.reason(), "%s", b.summary())
}

// fail records a failure that a retry may fix: the failure's own condition,
// Ready=False with the same reason and message, Reconciling with retry, and
// a Warning event. The stored chart, if any, is kept and still served.
func (r *Reconciler) fail(obj *sourcev1.HelmChart, condition, reason string, err error) (ctrl.Result, error) {
	r.markFailed(obj, condition, reason, err, true)
	conditions.MarkReconciling(obj, meta.ProgressingWithRetryReason, "%s", err.Error())
	conditions.Delete(obj, meta.StalledCondition)
	return ctrl.Result{}, err
}

// stall records a failure that only a change of the spec or of the source
// can fix: the source's watch brings the object back then.
func (r *Reconciler) stall(obj *sourcev1.HelmChart, condition, reason string, err error) (ctrl.Result, error) {
	r.markFailed(obj, condition, reason, err, true)
	conditions.Delete(obj, meta.ReconcilingCondition)
	conditions.MarkStalled(obj, reason, "%s", err.Error())
	return ctrl.Result{}, &lifecycle.StalledError{Err: err}
}

// markFailed records a failure on condition and Ready; the condition of
// the other kind of failure (fetch or build) is cleared, as
// source-controller keeps only the latest.
func (r *Reconciler) markFailed(obj *sourcev1.HelmChart, condition, reason string, err error, warn bool) {
	msg := err.Error()
	for _, other := range []string{sourcev1.FetchFailedCondition, sourcev1.BuildFailedCondition} {
		if other != condition {
			conditions.Delete(obj, other)
		}
	}
	// A signature that does not verify: BuildFailed as the failure, and
	// SourceVerified=False, as source-controller records it.
	switch {
	case condition == sourcev1.SourceVerifiedCondition:
		conditions.MarkFalse(obj, condition, reason, "%s", msg)
	case reason == errChartVerification.reason:
		conditions.MarkTrue(obj, condition, reason, "%s", msg)
		conditions.MarkFalse(obj, sourcev1.SourceVerifiedCondition, sourcev1.VerificationError, "%s", msg)
	default:
		conditions.MarkTrue(obj, condition, reason, "%s", msg)
	}
	conditions.MarkFalse(obj, meta.ReadyCondition, reason, "%s", msg)
	if warn {
		r.Recorder.Event(obj, corev1.EventTypeWarning, reason, msg)
	}
}
