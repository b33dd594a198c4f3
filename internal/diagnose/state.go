package diagnose

import (
	"fmt"

	"github.com/fluxcd/pkg/apis/meta"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/weirhq/weir/internal/control"
)

// State is how an object stands, in the words the dashboard colours and
// `weir why` reports.
type State string

// The states of an object.
const (
	// Ready is Ready=True for the current generation.
	Ready State = "ready"
	// Failed is Ready=False for a reason of its own, or Stalled.
	Failed State = "failed"
	// Waiting is Ready=False because a dependency is not Ready.
	Waiting State = "waiting"
	// Progressing is not reconciled yet, reconciling, or changed since
	// its last reconcile.
	Progressing State = "progressing"
	// Suspended is spec.suspend (or a FluxInstance's reconcile annotation).
	Suspended State = "suspended"
	// Missing is an object that is named (by a dependsOn or a sourceRef)
	// and does not exist.
	Missing State = "missing"
)

// Classify says how obj stands and, when it is not Ready, why in one
// sentence of its own status: the chain behind a waiting object needs the
// other objects (see [Graph.Explain]).
func Classify(obj control.Object) (State, string) {
	st := control.StatusOf(obj)
	conds := control.Conditions(obj)
	ready := apimeta.FindStatusCondition(conds, meta.ReadyCondition)
	switch {
	case st.Suspended:
		return Suspended, "Suspended: weir leaves it as it is until it is resumed."
	case ready == nil:
		return Progressing, "Not reconciled yet: no controller has reported on it."
	case apimeta.IsStatusConditionTrue(conds, meta.StalledCondition):
		msg := ready.Message
		if c := apimeta.FindStatusCondition(conds, meta.StalledCondition); c != nil && c.Message != "" {
			msg = c.Message
		}
		return Failed, "Stalled, and not retried until it changes: " + msg
	case ready.Status == metav1.ConditionFalse && ready.Reason == meta.DependencyNotReadyReason:
		return Waiting, "Waiting for its dependencies: " + ready.Message
	case ready.Status == metav1.ConditionFalse:
		return Failed, "Failed: " + ready.Message
	case ready.Status == metav1.ConditionTrue && st.ObservedGeneration != 0 && st.ObservedGeneration != obj.GetGeneration():
		return Progressing, fmt.Sprintf("Changed (generation %d) and not reconciled since: the last reconcile was of generation %d.", obj.GetGeneration(), st.ObservedGeneration)
	case ready.Status == metav1.ConditionTrue:
		return Ready, ""
	}
	if ready.Message == "" {
		return Progressing, "Reconciling."
	}
	return Progressing, "Reconciling: " + ready.Message
}
