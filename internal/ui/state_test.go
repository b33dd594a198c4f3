package ui

import (
	"strings"
	"testing"
	"time"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"github.com/fluxcd/pkg/apis/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestStateOfAnObject(t *testing.T) {
	since := metav1.NewTime(time.Date(2026, 3, 1, 12, 1, 3, 0, time.UTC))
	cond := func(typ string, status metav1.ConditionStatus, reason, msg string) metav1.Condition {
		return metav1.Condition{Type: typ, Status: status, Reason: reason, Message: msg, LastTransitionTime: since}
	}
	for _, c := range []struct {
		name       string
		suspend    bool
		generation int64
		observed   int64
		conds      []metav1.Condition
		state, why string
	}{
		{name: "no status yet", generation: 1,
			state: StateProgressing, why: "Not reconciled yet"},
		{name: "ready", generation: 1, observed: 1,
			conds: []metav1.Condition{cond(meta.ReadyCondition, "True", meta.ReconciliationSucceededReason, "Applied revision: main@sha1:1")},
			state: StateReady},
		{name: "ready, then changed", generation: 2, observed: 1,
			conds: []metav1.Condition{cond(meta.ReadyCondition, "True", meta.ReconciliationSucceededReason, "Applied")},
			state: StateProgressing, why: "Changed (generation 2) and not reconciled since"},
		{name: "reconciling", generation: 1, observed: 1,
			conds: []metav1.Condition{cond(meta.ReadyCondition, "Unknown", meta.ProgressingReason, "Reconciliation in progress")},
			state: StateProgressing, why: "Reconciling: Reconciliation in progress"},
		{name: "failed", generation: 1, observed: 1,
			conds: []metav1.Condition{cond(meta.ReadyCondition, "False", "BuildFailed", "kustomize build failed: no such file")},
			state: StateFailed, why: "Failed: kustomize build failed: no such file"},
		{name: "waiting", generation: 1, observed: 1,
			conds: []metav1.Condition{cond(meta.ReadyCondition, "False", meta.DependencyNotReadyReason, "dependency 'flux-system/a' is not ready")},
			state: StateWaiting, why: "Waiting for its dependencies: dependency 'flux-system/a' is not ready"},
		{name: "on a cycle", generation: 1, observed: 1,
			conds: []metav1.Condition{
				cond(meta.ReadyCondition, "False", meta.DependencyNotReadyReason, "dependency cycle: a -> b -> a"),
				cond(meta.StalledCondition, "True", meta.DependencyNotReadyReason, "dependency cycle: a -> b -> a"),
			},
			state: StateFailed, why: "Stalled, and not retried until it changes: dependency cycle: a -> b -> a"},
		{name: "suspended", suspend: true, generation: 1, observed: 1,
			conds: []metav1.Condition{cond(meta.ReadyCondition, "False", "BuildFailed", "x")},
			state: StateSuspended, why: "Suspended"},
	} {
		t.Run(c.name, func(t *testing.T) {
			obj := &kustomizev1.Kustomization{
				ObjectMeta: metav1.ObjectMeta{Namespace: "flux-system", Name: "app", Generation: c.generation},
				Spec:       kustomizev1.KustomizationSpec{Suspend: c.suspend},
				Status:     kustomizev1.KustomizationStatus{ObservedGeneration: c.observed, Conditions: c.conds},
			}
			n := summarize(kustomizev1.KustomizationKind, obj)
			if n.State != c.state {
				t.Errorf("state %q, want %q", n.State, c.state)
			}
			if !strings.HasPrefix(n.Why, c.why) || (c.why == "") != (n.Why == "") {
				t.Errorf("why %q, want it to start with %q", n.Why, c.why)
			}
			if len(c.conds) > 0 && (n.Since == nil || !n.Since.Equal(since.Time)) {
				t.Errorf("since %v, want the Ready condition's last transition %v", n.Since, since)
			}
		})
	}
}
