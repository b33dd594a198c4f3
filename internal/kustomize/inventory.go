package kustomize

import (
	"context"
	"errors"
	"fmt"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"github.com/fluxcd/pkg/apis/meta"
	"github.com/fluxcd/pkg/runtime/conditions"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/weirhq/weir/internal/apply"
)

// inventory returns what the last successful reconcile recorded as
// applied: status.inventory, or the whole inventory from the ConfigMaps
// when it is kept there. An error that wraps apply.ErrNoInventory means
// those ConfigMaps are gone or damaged.
func (r *Reconciler) inventory(ctx context.Context, obj *kustomizev1.Kustomization) (*kustomizev1.ResourceInventory, error) {
	return r.store.Of(ctx, obj)
}

// lastInventory is inventory for a reconcile that is about to apply: if
// the ConfigMaps are lost, it warns that what left the source since will
// not be pruned, and goes on with the part in the status, rather than
// holding the Kustomization back for good.
func (r *Reconciler) lastInventory(ctx context.Context, obj *kustomizev1.Kustomization) (*kustomizev1.ResourceInventory, error) {
	inv, err := r.inventory(ctx, obj)
	if errors.Is(err, apply.ErrNoInventory) {
		r.Recorder.Eventf(obj, corev1.EventTypeWarning, meta.PruneFailedReason,
			"%s: objects removed from the source since the last apply and not listed in status.inventory will not be pruned", err)
		return obj.Status.Inventory, nil
	}
	if err != nil {
		return nil, &stepError{reason: meta.ReconciliationFailedReason, err: err}
	}
	return inv, nil
}

// recordInventory sets inv on the status when it fits there; otherwise it
// keeps inv in ConfigMaps, lists in status.inventory the part that fits
// (Flux's own kinds first), and says so with apply.ExternalInventoryCondition.
func (r *Reconciler) recordInventory(ctx context.Context, obj *kustomizev1.Kustomization, inv *kustomizev1.ResourceInventory) error {
	if apply.InventorySize(inv) <= apply.StatusInventoryBudget {
		obj.Status.Inventory = inv
		conditions.Delete(obj, apply.ExternalInventoryCondition)
		return nil
	}
	if err := r.store.Save(ctx, obj, inv); err != nil {
		return &stepError{reason: meta.ReconciliationFailedReason, err: fmt.Errorf("keeping the inventory of %d objects: %w", len(inv.Entries), err)}
	}
	obj.Status.Inventory = apply.StatusPart(inv, apply.StatusInventoryBudget)
	conditions.MarkTrue(obj, apply.ExternalInventoryCondition, apply.InventoryTooLargeReason,
		"the inventory of %d objects is too large for the status: status.inventory lists %d of them, ConfigMap %s/%s holds them all",
		len(inv.Entries), len(obj.Status.Inventory.Entries), obj.Namespace, apply.InventoryConfigMap(obj.Name))
	return nil
}

// dropExternalInventory removes the ConfigMaps of an inventory that fits in
// the status again, once the status that no longer points at them is
// written.
func (r *Reconciler) dropExternalInventory(ctx context.Context, before, after *kustomizev1.Kustomization) {
	if !conditions.IsTrue(before, apply.ExternalInventoryCondition) || conditions.Has(after, apply.ExternalInventoryCondition) {
		return
	}
	if err := r.store.Delete(ctx, after); err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "removing the ConfigMaps of an inventory that fits in the status again")
	}
}

// deletionTargets are the objects to delete with the Kustomization: its
// inventory, or, when none can be read (it was never written, or its
// ConfigMaps are lost), every object of its target cluster that carries
// its ownership labels.
func (r *Reconciler) deletionTargets(ctx context.Context, obj *kustomizev1.Kustomization, t *target) ([]*unstructured.Unstructured, error) {
	inv, err := r.inventory(ctx, obj)
	if err != nil && !errors.Is(err, apply.ErrNoInventory) {
		return nil, err
	}
	if err == nil && inv != nil {
		return apply.Objects(inv)
	}
	objects, lerr := apply.Labelled(ctx, t.config, t.reader, apply.Owner{Name: obj.Name, Namespace: obj.Namespace})
	if lerr != nil {
		return nil, fmt.Errorf("finding the objects to delete by their labels: %w", lerr)
	}
	return objects, nil
}
