package gitrepository

import (
	"context"
	"fmt"
	"net/url"
	"strings"

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
	sourcev1.IncludeUnavailableCondition,
	sourcev1.StorageOperationFailedCondition,
	sourcev1.BuildFailedCondition,
	sourcev1.ArtifactOutdatedCondition,
	meta.StalledCondition,
	meta.ReconcilingCondition,
}

// markProgressing records that a new generation is being worked on and
// writes it at once, so that kstatus and `weir get` show progress.
func (r *Reconciler) markProgressing(ctx context.Context, obj *sourcev1.GitRepository, msg string) {
	orig := obj.DeepCopy()
	conditions.MarkReconciling(obj, meta.ProgressingReason, "%s", msg)
	conditions.MarkUnknown(obj, meta.ReadyCondition, meta.ProgressingReason, "%s", msg)
	if err := r.Status().Patch(ctx, obj, client.MergeFrom(orig)); err != nil {
		ctrl.LoggerFrom(ctx).V(1).Info("could not record progress", "error", err.Error())
	}
}

// markReady records a stored, current artifact.
func (r *Reconciler) markReady(obj *sourcev1.GitRepository) {
	for _, t := range failureConditions {
		conditions.Delete(obj, t)
	}
	msg := fmt.Sprintf("stored artifact for revision '%s'", obj.Status.Artifact.Revision)
	conditions.MarkTrue(obj, sourcev1.ArtifactInStorageCondition, meta.SucceededReason, "%s", msg)
	conditions.MarkTrue(obj, meta.ReadyCondition, meta.SucceededReason, "%s", msg)
}

// fail records a failure that a retry may fix: the failure's own condition,
// Ready=False with the same reason and message, Reconciling with retry, and
// a Warning event. The stored artifact, if any, is kept and still served.
func (r *Reconciler) fail(obj *sourcev1.GitRepository, condition, reason string, err error) (ctrl.Result, error) {
	r.markFailed(obj, condition, reason, err)
	conditions.MarkReconciling(obj, meta.ProgressingWithRetryReason, "%s", err.Error())
	conditions.Delete(obj, meta.StalledCondition)
	return ctrl.Result{}, err
}

// stall records a failure that only a spec change can fix.
func (r *Reconciler) stall(obj *sourcev1.GitRepository, condition, reason string, err error) (ctrl.Result, error) {
	r.markFailed(obj, condition, reason, err)
	conditions.Delete(obj, meta.ReconcilingCondition)
	conditions.MarkStalled(obj, reason, "%s", err.Error())
	return ctrl.Result{}, &lifecycle.StalledError{Err: err}
}

func (r *Reconciler) markFailed(obj *sourcev1.GitRepository, condition, reason string, err error) {
	msg := err.Error()
	conditions.MarkTrue(obj, condition, reason, "%s", msg)
	conditions.MarkFalse(obj, meta.ReadyCondition, reason, "%s", msg)
	if obj.Status.Artifact != nil && r.Store.Has(obj.Status.Artifact) {
		conditions.MarkTrue(obj, sourcev1.ArtifactInStorageCondition, meta.SucceededReason,
			"stored artifact for revision '%s'", obj.Status.Artifact.Revision)
	}
	r.Recorder.Event(obj, corev1.EventTypeWarning, reason, msg)
}

// redact removes credentials written into the URL from an error message,
// so that they never reach status, events or logs.
func redact(err error, rawURL string) error {
	u, perr := url.Parse(rawURL)
	if perr != nil || u.User == nil {
		return err
	}
	if _, has := u.User.Password(); !has {
		return err
	}
	msg := strings.ReplaceAll(err.Error(), rawURL, u.Redacted())
	if pw, _ := u.User.Password(); pw != "" {
		msg = strings.ReplaceAll(msg, pw, "xxxxx")
	}
	return fmt.Errorf("%s", msg)
}
