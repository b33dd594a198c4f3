package oci

import (
	"context"
	"errors"
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
func (r *Reconciler) markProgressing(ctx context.Context, obj *sourcev1.OCIRepository, msg string) {
	orig := obj.DeepCopy()
	conditions.MarkReconciling(obj, meta.ProgressingReason, "%s", msg)
	conditions.MarkUnknown(obj, meta.ReadyCondition, meta.ProgressingReason, "%s", msg)
	if err := r.Status().Patch(ctx, obj, client.MergeFrom(orig)); err != nil {
		ctrl.LoggerFrom(ctx).V(1).Info("could not record progress", "error", err.Error())
	}
}

// storedMessage is source-controller's message for an OCI artifact in
// storage, on ArtifactInStorage and Ready.
func storedMessage(a *meta.Artifact) string {
	return fmt.Sprintf("stored artifact for digest '%s'", a.Revision)
}

// markReady records a stored, current artifact.
func (r *Reconciler) markReady(obj *sourcev1.OCIRepository) {
	for _, t := range failureConditions {
		conditions.Delete(obj, t)
	}
	msg := storedMessage(obj.Status.Artifact)
	conditions.MarkTrue(obj, sourcev1.ArtifactInStorageCondition, meta.SucceededReason, "%s", msg)
	conditions.MarkTrue(obj, meta.ReadyCondition, meta.SucceededReason, "%s", msg)
}

// fail records a failure that a retry may fix: the failure's own condition,
// Ready=False with the same reason and message, Reconciling with retry, and
// a Warning event. The stored artifact, if any, is kept and still served.
func (r *Reconciler) fail(obj *sourcev1.OCIRepository, condition, reason string, err error) (ctrl.Result, error) {
	r.markFailed(obj, condition, reason, err)
	conditions.MarkReconciling(obj, meta.ProgressingWithRetryReason, "%s", err.Error())
	conditions.Delete(obj, meta.StalledCondition)
	return ctrl.Result{}, err
}

// stall records a failure that only a spec change can fix.
func (r *Reconciler) stall(obj *sourcev1.OCIRepository, condition, reason string, err error) (ctrl.Result, error) {
	r.markFailed(obj, condition, reason, err)
	conditions.Delete(obj, meta.ReconcilingCondition)
	conditions.MarkStalled(obj, reason, "%s", err.Error())
	return ctrl.Result{}, &lifecycle.StalledError{Err: err}
}

// unverified records a failed signature verification: SourceVerified=False
// and Ready=False with reason VerificationError, retried unless only a
// spec change can help. Nothing was pulled: the stored artifact, if any,
// is kept and still served.
func (r *Reconciler) unverified(obj *sourcev1.OCIRepository, err error) (ctrl.Result, error) {
	conditions.Delete(obj, sourcev1.FetchFailedCondition)
	var ve *verifyError
	if errors.As(err, &ve) && ve.stall {
		return r.stall(obj, sourcev1.SourceVerifiedCondition, sourcev1.VerificationError, err)
	}
	return r.fail(obj, sourcev1.SourceVerifiedCondition, sourcev1.VerificationError, err)
}

// markFailed records a failure on its condition (SourceVerified=False, or
// the failure condition True) and on Ready.
func (r *Reconciler) markFailed(obj *sourcev1.OCIRepository, condition, reason string, err error) {
	msg := err.Error()
	if condition == sourcev1.SourceVerifiedCondition {
		conditions.MarkFalse(obj, condition, reason, "%s", msg)
	} else {
		conditions.MarkTrue(obj, condition, reason, "%s", msg)
	}
	conditions.MarkFalse(obj, meta.ReadyCondition, reason, "%s", msg)
	if obj.Status.Artifact != nil && r.Store.Has(obj.Status.Artifact) {
		conditions.MarkTrue(obj, sourcev1.ArtifactInStorageCondition, meta.SucceededReason, "%s", storedMessage(obj.Status.Artifact))
	}
	r.Recorder.Event(obj, corev1.EventTypeWarning, reason, msg)
}
