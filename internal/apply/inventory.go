package apply

import (
	"fmt"
	"sort"

	"github.com/fluxcd/cli-utils/pkg/object"
	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"github.com/fluxcd/pkg/ssa"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Inventory returns the change set as an inventory in Flux's format
// (entries of "<namespace>_<name>_<group>_<kind>" and API version), sorted.
func Inventory(cs *ssa.ChangeSet) *kustomizev1.ResourceInventory {
	inv := &kustomizev1.ResourceInventory{Entries: []kustomizev1.ResourceRef{}}
	for _, e := range cs.Entries {
		inv.Entries = append(inv.Entries, kustomizev1.ResourceRef{ID: e.ObjMetadata.String(), Version: e.GroupVersion})
	}
	sort.Slice(inv.Entries, func(i, j int) bool { return inv.Entries[i].ID < inv.Entries[j].ID })
	return inv
}

// InventoryOf is the inventory applying objects would record, in the
// order given: what `weir diff` and the MCP diff compare a Kustomization's
// inventory with to find what prune would delete.
func InventoryOf(objects []*unstructured.Unstructured) *kustomizev1.ResourceInventory {
	inv := &kustomizev1.ResourceInventory{}
	for _, o := range objects {
		gvk := o.GroupVersionKind()
		inv.Entries = append(inv.Entries, kustomizev1.ResourceRef{
			ID:      object.ObjMetadata{Namespace: o.GetNamespace(), Name: o.GetName(), GroupKind: gvk.GroupKind()}.String(),
			Version: gvk.Version,
		})
	}
	return inv
}

// Objects returns the inventory's entries as objects that hold only their
// identity, for pruning, health checks and `weir tree`.
func Objects(inv *kustomizev1.ResourceInventory) ([]*unstructured.Unstructured, error) {
	if inv == nil {
		return nil, nil
	}
	out := make([]*unstructured.Unstructured, 0, len(inv.Entries))
	for _, e := range inv.Entries {
		id, err := object.ParseObjMetadata(e.ID)
		if err != nil {
			return nil, fmt.Errorf("inventory entry %q is not <namespace>_<name>_<group>_<kind>: %w", e.ID, err)
		}
		u := &unstructured.Unstructured{}
		gv, err := schema.ParseGroupVersion(e.Version)
		if err != nil {
			return nil, fmt.Errorf("inventory entry %q has version %q: %w", e.ID, e.Version, err)
		}
		u.SetGroupVersionKind(schema.GroupVersionKind{Group: id.GroupKind.Group, Version: gv.Version, Kind: id.GroupKind.Kind})
		u.SetNamespace(id.Namespace)
		u.SetName(id.Name)
		out = append(out, u)
	}
	return out, nil
}

// Stale returns the objects of old that are not in current: what left the
// source since the last apply.
func Stale(old, current *kustomizev1.ResourceInventory) ([]*unstructured.Unstructured, error) {
	if old == nil {
		return nil, nil
	}
	keep := map[string]bool{}
	if current != nil {
		for _, e := range current.Entries {
			keep[e.ID] = true
		}
	}
	var gone kustomizev1.ResourceInventory
	for _, e := range old.Entries {
		if !keep[e.ID] {
			gone.Entries = append(gone.Entries, e)
		}
	}
	return Objects(&gone)
}
