package kustomize

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/fluxcd/cli-utils/pkg/object"
	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"github.com/fluxcd/pkg/runtime/conditions"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"

	"github.com/weirhq/weir/internal/apply"
)

// inventoryIndex indexes Kustomizations by the entries of status.inventory.
const inventoryIndex = ".status.inventory.entries.id"

// OwnershipConflictReason is the reason of the Warning event sent to both
// Kustomizations when they apply the same object.
const OwnershipConflictReason = "OwnershipConflict"

func inventoryIDs(o client.Object) []string {
	ks, ok := o.(*kustomizev1.Kustomization)
	if !ok || ks.Status.Inventory == nil {
		return nil
	}
	ids := make([]string, 0, len(ks.Status.Inventory.Entries))
	for _, e := range ks.Status.Inventory.Entries {
		ids = append(ids, e.ID)
	}
	return ids
}

// holders returns, for each of ids held by another Kustomization, the
// other Kustomizations whose inventory lists it: status.inventory through
// the index, and the inventories kept in ConfigMaps. Kustomizations being
// deleted are left out: they are letting go of what they hold.
func (r *Reconciler) holders(ctx context.Context, self *kustomizev1.Kustomization, ids []string) (map[string][]client.ObjectKey, error) {
	out := map[string][]client.ObjectKey{}
	// Objects of the same name in two clusters are two objects.
	cluster := clusterOf(self)
	other := func(k *kustomizev1.Kustomization) bool {
		return k.UID != self.UID && k.DeletionTimestamp.IsZero() && clusterOf(k) == cluster
	}
	for _, id := range ids {
		var list kustomizev1.KustomizationList
		if err := r.List(ctx, &list, client.MatchingFields{inventoryIndex: id}, client.UnsafeDisableDeepCopy); err != nil {
			return nil, fmt.Errorf("looking for other Kustomizations that apply %s: %w", id, err)
		}
		for i := range list.Items {
			if k := &list.Items[i]; other(k) {
				out[id] = append(out[id], client.ObjectKeyFromObject(k))
			}
		}
	}
	var all kustomizev1.KustomizationList
	if err := r.List(ctx, &all, client.UnsafeDisableDeepCopy); err != nil {
		return nil, fmt.Errorf("listing Kustomizations: %w", err)
	}
	want := make(map[string]bool, len(ids))
	for _, id := range ids {
		want[id] = true
	}
	for i := range all.Items {
		k := &all.Items[i]
		if !other(k) || !conditions.IsTrue(k, apply.ExternalInventoryCondition) {
			continue
		}
		inv, err := r.store.Load(ctx, k)
		if err != nil {
			// Its status.inventory, indexed above, is what is known.
			ctrl.LoggerFrom(ctx).Info("the inventory of another Kustomization could not be read", "kustomization", client.ObjectKeyFromObject(k).String(), "error", err.Error())
			continue
		}
		key := client.ObjectKeyFromObject(k)
		for _, e := range inv.Entries {
			if want[e.ID] && !containsKey(out[e.ID], key) {
				out[e.ID] = append(out[e.ID], key)
			}
		}
	}
	return out, nil
}

func containsKey(keys []client.ObjectKey, k client.ObjectKey) bool {
	for _, x := range keys {
		if x == k {
			return true
		}
	}
	return false
}

// conflicts finds the objects of inv that other Kustomizations apply too,
// warns on both sides, queues the others the first time so that they
// report it as well, and returns the note for the Ready message ("" when
// there is none).
func (r *Reconciler) conflicts(ctx context.Context, obj *kustomizev1.Kustomization, inv *kustomizev1.ResourceInventory) (string, error) {
	ids := make([]string, 0, len(inv.Entries))
	for _, e := range inv.Entries {
		ids = append(ids, e.ID)
	}
	held, err := r.holders(ctx, obj, ids)
	if err != nil {
		return "", err
	}
	byHolder := map[client.ObjectKey][]string{}
	for id, keys := range held {
		for _, k := range keys {
			byHolder[k] = append(byHolder[k], objectName(id))
		}
	}
	self := client.ObjectKeyFromObject(obj)
	r.trackConflicts(self, byHolder)
	if len(byHolder) == 0 {
		return "", nil
	}
	holders := make([]client.ObjectKey, 0, len(byHolder))
	for k := range byHolder {
		holders = append(holders, k)
	}
	sort.Slice(holders, func(i, j int) bool { return holders[i].String() < holders[j].String() })
	notes := make([]string, 0, len(holders))
	for _, k := range holders {
		objects := byHolder[k]
		sort.Strings(objects)
		notes = append(notes, fmt.Sprintf("%s also applied by Kustomization %s", some(objects), k))
		r.Recorder.Eventf(obj, corev1.EventTypeWarning, OwnershipConflictReason,
			"%s also applied by Kustomization %s: the last apply wins and takes the ownership labels; declare each object in one Kustomization only", some(objects), k)
		r.Recorder.Eventf(r.eventTarget(ctx, k), corev1.EventTypeWarning, OwnershipConflictReason,
			"%s also applied by Kustomization %s: the last apply wins and takes the ownership labels; declare each object in one Kustomization only", some(objects), self)
	}
	return strings.Join(notes, "; "), nil
}

// some names the first object and counts the others.
func some(objects []string) string {
	switch len(objects) {
	case 1:
		return objects[0] + " is"
	case 2:
		return objects[0] + " and 1 more object are"
	default:
		return fmt.Sprintf("%s and %d more objects are", objects[0], len(objects)-1)
	}
}

// trackConflicts remembers which pairs of Kustomizations share objects,
// and queues the other side of a pair that appears or goes away, so that
// it reports the change without waiting for its interval. A pair already
// known is not queued again: two Kustomizations never queue each other in
// turn.
func (r *Reconciler) trackConflicts(self client.ObjectKey, byHolder map[client.ObjectKey][]string) {
	r.mu.Lock()
	if r.pairs == nil {
		r.pairs = map[[2]client.ObjectKey]bool{}
	}
	var queue []client.ObjectKey
	for k := range byHolder {
		p := pairOf(self, k)
		if !r.pairs[p] {
			r.pairs[p] = true
			queue = append(queue, k)
		}
	}
	for p := range r.pairs {
		other, ok := otherOf(p, self)
		if !ok {
			continue
		}
		if _, still := byHolder[other]; !still {
			delete(r.pairs, p)
			queue = append(queue, other)
		}
	}
	r.mu.Unlock()
	for _, k := range queue {
		r.enqueue(k)
	}
}

func pairOf(a, b client.ObjectKey) [2]client.ObjectKey {
	if a.String() > b.String() {
		a, b = b, a
	}
	return [2]client.ObjectKey{a, b}
}

func otherOf(p [2]client.ObjectKey, self client.ObjectKey) (client.ObjectKey, bool) {
	switch self {
	case p[0]:
		return p[1], true
	case p[1]:
		return p[0], true
	}
	return client.ObjectKey{}, false
}

// keepShared leaves out of objects, about to be deleted, those that
// another Kustomization still applies, says so in an event, and queues
// those Kustomizations so that their next apply puts their ownership
// labels back on the objects.
func (r *Reconciler) keepShared(ctx context.Context, obj *kustomizev1.Kustomization, objects []*unstructured.Unstructured) ([]*unstructured.Unstructured, error) {
	if len(objects) == 0 {
		return objects, nil
	}
	ids := make([]string, 0, len(objects))
	for _, o := range objects {
		ids = append(ids, object.UnstructuredToObjMetadata(o).String())
	}
	held, err := r.holders(ctx, obj, ids)
	if err != nil {
		return nil, err
	}
	if len(held) == 0 {
		return objects, nil
	}
	var out []*unstructured.Unstructured
	var kept []string
	queue := map[client.ObjectKey]bool{}
	for i, o := range objects {
		keys := held[ids[i]]
		if len(keys) == 0 {
			out = append(out, o)
			continue
		}
		names := make([]string, 0, len(keys))
		for _, k := range keys {
			names = append(names, k.String())
			queue[k] = true
		}
		kept = append(kept, fmt.Sprintf("%s kept: Kustomization %s still applies it", objectName(ids[i]), strings.Join(names, ", ")))
	}
	sort.Strings(kept)
	r.Recorder.Event(obj, corev1.EventTypeNormal, "Progressing", strings.Join(kept, "\n"))
	for k := range queue {
		r.enqueue(k)
	}
	return out, nil
}

// enqueue asks for a reconcile of another Kustomization.
func (r *Reconciler) enqueue(k client.ObjectKey) {
	select {
	case r.requeue <- event.GenericEvent{Object: kustomizationRef(k)}:
	default:
		// The queue is full of requests already; the Kustomization is
		// reconciled again at its interval.
	}
}

func kustomizationRef(k client.ObjectKey) *kustomizev1.Kustomization {
	return &kustomizev1.Kustomization{
		TypeMeta:   metav1.TypeMeta{APIVersion: kustomizev1.GroupVersion.String(), Kind: kustomizev1.KustomizationKind},
		ObjectMeta: metav1.ObjectMeta{Namespace: k.Namespace, Name: k.Name},
	}
}

// eventTarget is the Kustomization k as the cache holds it, for an event
// that carries its UID, or a reference by name when it is not there.
func (r *Reconciler) eventTarget(ctx context.Context, k client.ObjectKey) *kustomizev1.Kustomization {
	got := &kustomizev1.Kustomization{}
	if err := r.Get(ctx, k, got); err != nil {
		return kustomizationRef(k)
	}
	return got
}

// objectName writes an inventory ID as Kind/namespace/name.
func objectName(id string) string {
	m, err := object.ParseObjMetadata(id)
	if err != nil {
		return id
	}
	if m.Namespace == "" {
		return m.GroupKind.Kind + "/" + m.Name
	}
	return m.GroupKind.Kind + "/" + m.Namespace + "/" + m.Name
}
