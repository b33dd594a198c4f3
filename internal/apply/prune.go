package apply

import (
	"context"
	"fmt"

	"github.com/fluxcd/pkg/ssa"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// PruneDisabled is the annotation (or label) value that keeps an object
// when it leaves the source: kustomize.toolkit.fluxcd.io/prune: disabled.
const pruneKey = LabelGroup + "/prune"

// Prune deletes stale objects that still carry owner's labels, skipping
// those marked kustomize.toolkit.fluxcd.io/prune: disabled. Namespaces and
// CRDs go last, so that what lives in them is removed first.
func (a *Applier) Prune(ctx context.Context, owner Owner, stale []*unstructured.Unstructured) (*ssa.ChangeSet, error) {
	if len(stale) == 0 {
		return ssa.NewChangeSet(), nil
	}
	opts := ssa.DeleteOptions{
		PropagationPolicy: metav1.DeletePropagationBackground,
		Inclusions:        a.Labels(owner),
		Exclusions:        map[string]string{pruneKey: "disabled"},
	}
	cs, err := a.rm.DeleteAll(ctx, stale, opts)
	if err != nil {
		return cs, fmt.Errorf("pruning: %w", err)
	}
	return cs, nil
}

// WaitDeleted waits until the objects are gone, for deletionPolicy
// WaitForTermination.
func (a *Applier) WaitDeleted(ctx context.Context, objects []*unstructured.Unstructured) error {
	return a.rm.WaitForTermination(objects, ssa.WaitOptions{Interval: pollInterval, Timeout: timeoutOf(ctx)})
}
