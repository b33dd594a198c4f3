package kustomize

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"github.com/fluxcd/pkg/apis/meta"
	"github.com/fluxcd/pkg/runtime/conditions"
	"github.com/fluxcd/pkg/ssa"
	corev1 "k8s.io/api/core/v1"
	ctrl "sigs.k8s.io/controller-runtime"
)

// stepError is a failed step that a retry may fix; reason is Flux's.
type stepError struct {
	reason string
	err    error
}

func (e *stepError) Error() string { return e.err.Error() }
func (e *stepError) Unwrap() error { return e.err }

// waitError is a reconcile that cannot go on until something else changes
// (a dependency turns Ready, a source gets an artifact): it is not retried
// on a timer, the change queues it. stalled marks what only a spec change
// can fix, such as a dependency cycle.
type waitError struct {
	reason  string
	err     error
	stalled bool
	// retry asks for another look after the retry interval, for waits
	// that no event announces the end of (a dependency's readyExpr).
	retry bool
}

// Waiting implements lifecycle.Waiter: a wait (or a stall, which waits for
// the spec) is not backed off from; retry asks for another look.
func (e *waitError) Waiting() (waiting, retry bool) { return true, e.retry }

func (e *waitError) Error() string { return e.err.Error() }
func (e *waitError) Unwrap() error { return e.err }

// fail records err on the status: Ready=False with the step's reason,
// Reconciling while a retry is due, Stalled when none will help, and a
// Warning event.
func (r *Reconciler) fail(obj *kustomizev1.Kustomization, err error) (ctrl.Result, error) {
	reason := meta.ReconciliationFailedReason
	var se *stepError
	var we *waitError
	switch {
	case errors.As(err, &we):
		reason = we.reason
	case errors.As(err, &se):
		reason = se.reason
	}
	msg := err.Error()
	conditions.MarkFalse(obj, meta.ReadyCondition, reason, "%s", msg)
	switch {
	case we != nil && we.stalled:
		conditions.Delete(obj, meta.ReconcilingCondition)
		conditions.MarkStalled(obj, reason, "%s", msg)
	case we != nil:
		conditions.Delete(obj, meta.ReconcilingCondition)
		conditions.Delete(obj, meta.StalledCondition)
	default:
		conditions.MarkReconciling(obj, meta.ProgressingWithRetryReason, "%s", msg)
		conditions.Delete(obj, meta.StalledCondition)
	}
	r.Recorder.AnnotatedEventf(obj, revisionMetadata(obj.Status.LastAttemptedRevision), corev1.EventTypeWarning, reason, "%s", msg)
	return ctrl.Result{}, err
}

// markReady records a fully applied and healthy revision; note, when set,
// follows in the Ready message (objects other Kustomizations apply too).
func (r *Reconciler) markReady(obj *kustomizev1.Kustomization, revision, note string) {
	obj.Status.LastAppliedRevision = revision
	conditions.Delete(obj, meta.ReconcilingCondition)
	conditions.Delete(obj, meta.StalledCondition)
	msg := fmt.Sprintf("Applied revision: %s", revision)
	if note != "" {
		msg += "; " + note
	}
	conditions.MarkTrue(obj, meta.ReadyCondition, meta.ReconciliationSucceededReason, "%s", msg)
}

// announce emits the success event of a newly applied revision, once the
// status that records it is written: a status that could not be written
// is no success.
func (r *Reconciler) announce(before, after *kustomizev1.Kustomization) {
	revision := after.Status.LastAppliedRevision
	if revision == before.Status.LastAppliedRevision || !conditions.IsReady(after) {
		return
	}
	r.Recorder.AnnotatedEventf(after, revisionMetadata(revision), corev1.EventTypeNormal, meta.ReconciliationSucceededReason,
		"Reconciliation finished, next run in %s", after.GetRequeueAfter())
}

// changeSummary lists what an apply or prune changed, one object a line,
// as Flux's events do; "" when nothing changed.
func changeSummary(cs *ssa.ChangeSet) string {
	if cs == nil {
		return ""
	}
	var lines []string
	for _, e := range cs.Entries {
		if e.Action == ssa.UnchangedAction || e.Action == ssa.SkippedAction {
			continue
		}
		lines = append(lines, e.String())
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// revisionMetadata are the event annotations kustomize-controller sets.
func revisionMetadata(revision string) map[string]string {
	if revision == "" {
		return nil
	}
	return map[string]string{kustomizev1.GroupVersion.Group + "/revision": revision}
}
