package artifactgenerator

import (
	"context"

	"github.com/fluxcd/pkg/apis/meta"
	"github.com/fluxcd/pkg/runtime/conditions"
	swapi "github.com/fluxcd/source-watcher/api/v2/v1beta1"
	corev1 "k8s.io/api/core/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/weirhq/weir/internal/lifecycle"
)

// msgInProgress is source-watcher's message while a generator builds.
const msgInProgress = "Reconciliation in progress"

// markProgressing records that the outputs are being built and writes it
// at once, so that kstatus and `weir get` show progress.
func (r *Reconciler) markProgressing(ctx context.Context, obj *swapi.ArtifactGenerator) {
	orig := obj.DeepCopy()
	conditions.MarkReconciling(obj, meta.ProgressingReason, "%s", msgInProgress)
	conditions.MarkUnknown(obj, meta.ReadyCondition, meta.ProgressingReason, "%s", msgInProgress)
	if err := r.Status().Patch(ctx, obj, client.MergeFrom(orig)); err != nil {
		ctrl.LoggerFrom(ctx).V(1).Info("could not record progress", "error", err.Error())
	}
}

// markReady records a generator whose outputs are all published.
func (r *Reconciler) markReady(obj *swapi.ArtifactGenerator, msg string) {
	conditions.Delete(obj, meta.StalledCondition)
	conditions.Delete(obj, meta.ReconcilingCondition)
	conditions.MarkTrue(obj, meta.ReadyCondition, meta.SucceededReason, "%s", msg)
}

// fail records a failure that a retry may fix, or a wait for a source
// (which its next artifact ends): Ready=False with the reason, Reconciling
// with retry when a run was in progress, and a Warning event. The
// ExternalArtifacts keep their artifacts.
func (r *Reconciler) fail(obj *swapi.ArtifactGenerator, reason string, err error) (ctrl.Result, error) {
	conditions.MarkFalse(obj, meta.ReadyCondition, reason, "%s", err.Error())
	conditions.Delete(obj, meta.StalledCondition)
	if conditions.Has(obj, meta.ReconcilingCondition) {
		conditions.MarkReconciling(obj, meta.ProgressingWithRetryReason, "%s", err.Error())
	}
	r.Recorder.Event(obj, corev1.EventTypeWarning, reason, err.Error())
	return ctrl.Result{}, err
}

// stall records a failure that only a change of the spec or of a source's
// content can fix; both queue the generator.
func (r *Reconciler) stall(obj *swapi.ArtifactGenerator, reason string, err error) (ctrl.Result, error) {
	conditions.MarkFalse(obj, meta.ReadyCondition, reason, "%s", err.Error())
	conditions.MarkStalled(obj, reason, "%s", err.Error())
	conditions.Delete(obj, meta.ReconcilingCondition)
	r.Recorder.Event(obj, corev1.EventTypeWarning, reason, err.Error())
	return ctrl.Result{}, &lifecycle.StalledError{Err: err}
}
