package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	ctrl "sigs.k8s.io/controller-runtime"
)

type waitErr struct{ retry bool }

func (e waitErr) Error() string                  { return "waiting" }
func (e waitErr) Waiting() (waiting, retry bool) { return true, e.retry }

// The shared last step turns each kind of outcome into the queue's result
// the same way for every reconciler.
func TestOutcome(t *testing.T) {
	ctx := context.Background()
	failure := errors.New("fetch failed")
	cases := []struct {
		name    string
		result  ctrl.Result
		err     error
		retry   Retry
		want    ctrl.Result
		wantErr bool
	}{
		{"success keeps its result", ctrl.Result{RequeueAfter: time.Hour}, nil, Retry{}, ctrl.Result{RequeueAfter: time.Hour}, false},
		{"a stall is not retried", ctrl.Result{}, fmt.Errorf("wrapped: %w", &StalledError{Err: failure}), Retry{OnFailure: time.Minute}, ctrl.Result{}, false},
		{"a wait for an event is not retried", ctrl.Result{}, waitErr{}, Retry{OnWait: time.Minute}, ctrl.Result{}, false},
		{"a wait asking for a retry", ctrl.Result{}, waitErr{retry: true}, Retry{OnWait: time.Minute}, ctrl.Result{RequeueAfter: time.Minute}, false},
		{"a failure with a retry interval", ctrl.Result{}, failure, Retry{OnFailure: 30 * time.Second}, ctrl.Result{RequeueAfter: 30 * time.Second}, false},
		{"a failure backs off", ctrl.Result{RequeueAfter: time.Hour}, failure, Retry{}, ctrl.Result{}, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := Outcome(ctx, c.result, c.err, c.retry)
			if got != c.want || (err != nil) != c.wantErr {
				t.Errorf("Outcome = %+v, %v; want %+v, error %v", got, err, c.want, c.wantErr)
			}
		})
	}
}
