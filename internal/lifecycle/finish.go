package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"time"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Staller is implemented by a reconcile error that retrying cannot fix
// until the spec changes: the object stays Stalled and is not requeued.
type Staller interface{ Stalled() bool }

// Waiter is implemented by a reconcile error that means the object waits
// for another (a dependency, its source's artifact) rather than failed:
// no back-off; retry says whether to look again after the wait interval
// or only when an event wakes it.
type Waiter interface{ Waiting() (waiting, retry bool) }

// Retry says when a reconcile that did not succeed runs again.
type Retry struct {
	// OnWait is the delay after a Waiter error that asks for a retry.
	OnWait time.Duration
	// OnFailure, when set, replaces the work queue's exponential back-off
	// after a failure (spec.retryInterval, or a remediation's interval).
	OnFailure time.Duration
}

// PatchStatus writes the status a reconcile computed, as a merge patch
// from orig: the one step every reconciler ends with. A status that did
// not change costs no request: a restart over objects that are up to date
// writes nothing.
func PatchStatus(ctx context.Context, c client.Client, obj, orig client.Object) error {
	patch := client.MergeFrom(orig)
	if data, err := patch.Data(obj); err == nil && string(data) == "{}" {
		return nil
	}
	if err := c.Status().Patch(ctx, obj, patch); err != nil {
		return fmt.Errorf("updating the status: %w", err)
	}
	return nil
}

// Outcome turns a reconcile's result and error into the work queue's: a
// stalled failure is logged and not retried, a wait is retried after
// r.OnWait (or not at all), another failure is retried after r.OnFailure
// when set or returned for the queue's back-off, and success keeps its
// result.
func Outcome(ctx context.Context, result ctrl.Result, recErr error, r Retry) (ctrl.Result, error) {
	if recErr == nil {
		return result, nil
	}
	var s Staller
	if errors.As(recErr, &s) && s.Stalled() {
		ctrl.LoggerFrom(ctx).Error(recErr, "reconciliation stalled")
		return ctrl.Result{}, nil
	}
	var w Waiter
	if errors.As(recErr, &w) {
		if waiting, retry := w.Waiting(); waiting {
			if retry && r.OnWait > 0 {
				return ctrl.Result{RequeueAfter: r.OnWait}, nil
			}
			return ctrl.Result{}, nil
		}
	}
	if r.OnFailure > 0 {
		return ctrl.Result{RequeueAfter: r.OnFailure}, nil
	}
	return ctrl.Result{}, recErr
}

// Finish is PatchStatus then Outcome; a failed status write is returned
// with the reconcile's own error.
func Finish(ctx context.Context, c client.Client, obj, orig client.Object, result ctrl.Result, recErr error, r Retry) (ctrl.Result, error) {
	if err := PatchStatus(ctx, c, obj, orig); err != nil {
		return ctrl.Result{}, errors.Join(recErr, err)
	}
	return Outcome(ctx, result, recErr, r)
}

// StalledError is a failure that retrying cannot fix until the spec
// changes.
type StalledError struct{ Err error }

func (e *StalledError) Error() string { return e.Err.Error() }
func (e *StalledError) Unwrap() error { return e.Err }

// Stalled implements Staller.
func (e *StalledError) Stalled() bool { return true }
