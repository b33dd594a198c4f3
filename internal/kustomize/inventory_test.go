package kustomize_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"github.com/fluxcd/pkg/apis/meta"
	"github.com/fluxcd/pkg/runtime/conditions"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/weirhq/weir/internal/apply"
	"github.com/weirhq/weir/internal/testenv"
)

// etcdMaxRequestBytes is the object size limit of this package's etcd,
// lowered from 1.5 MiB so that an inventory too large for a status takes
// 2,000 objects to build rather than 6,000 (see main_test.go).
const etcdMaxRequestBytes = 512 << 10

// manyConfigMaps writes count ConfigMaps whose names have the longest
// length allowed, 253 characters, so that their inventory entries are as
// large as they get.
func manyConfigMaps(count int) string {
	var b strings.Builder
	for i := 0; i < count; i++ {
		name := fmt.Sprintf("%s-%05d", strings.Repeat("x", 247), i)
		fmt.Fprintf(&b, "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: %s\n", name)
	}
	return b.String()
}

// TestAnInventoryTooLargeForTheStatusIsKeptAside applies more objects
// than a status can list under etcd's size limit. The Kustomization still
// gets its status, and the success event only then; status.inventory
// lists what fits, ConfigMaps hold the whole inventory, and deleting the
// Kustomization with prune deletes every object.
func TestAnInventoryTooLargeForTheStatusIsKeptAside(t *testing.T) {
	const count = 2000
	f := newFixture(t, map[string]string{"many/configmaps.yaml": manyConfigMaps(count)})
	ks := f.kustomization("many", "./many", func(k *kustomizev1.Kustomization) {
		k.Spec.Timeout = &metav1.Duration{Duration: 5 * time.Minute}
	})
	rev := f.revision()
	got := f.wait(ks, 3*time.Minute, "to apply "+rev, func(k *kustomizev1.Kustomization) bool {
		return conditions.IsReady(k) && k.Status.LastAppliedRevision == rev
	})
	// Before this Kustomization's status was written, no success was
	// reported.
	waitEvent(t, f.ns, ks.Name, corev1.EventTypeNormal, "Reconciliation finished")

	if !conditions.IsTrue(got, apply.ExternalInventoryCondition) {
		t.Fatalf("no %s condition says where the inventory is: %s", apply.ExternalInventoryCondition, describe(got))
	}
	msg := conditions.GetMessage(got, apply.ExternalInventoryCondition)
	if !strings.Contains(msg, fmt.Sprintf("%d objects", count)) || !strings.Contains(msg, "ConfigMap "+f.ns+"/many.weir-inventory") {
		t.Errorf("the %s message does not say how many objects and where: %q", apply.ExternalInventoryCondition, msg)
	}
	listed := len(got.Status.Inventory.Entries)
	if listed == 0 || listed >= count || apply.InventorySize(got.Status.Inventory) > apply.StatusInventoryBudget {
		t.Errorf("status.inventory lists %d entries (%d bytes), want part of the %d within %d bytes", listed, apply.InventorySize(got.Status.Inventory), count, apply.StatusInventoryBudget)
	}
	// What `weir tree` and `weir diff` read: the whole inventory.
	inv, err := apply.InventoryStore{Reader: env.Client}.Of(context.Background(), got)
	if err != nil {
		t.Fatal(err)
	}
	if len(inv.Entries) != count {
		t.Errorf("the inventory kept aside has %d entries, want %d", len(inv.Entries), count)
	}

	if err := env.Client.Delete(context.Background(), got); err != nil {
		t.Fatal(err)
	}
	waitGone(t, got)
	var left corev1.ConfigMapList
	if err := env.Client.List(context.Background(), &left, client.InNamespace(f.ns), client.MatchingLabels{"kustomize.toolkit.fluxcd.io/name": "many"}); err != nil {
		t.Fatal(err)
	}
	remaining := 0
	for _, cm := range left.Items {
		if cm.DeletionTimestamp.IsZero() {
			remaining++
		}
	}
	if remaining > 0 {
		t.Errorf("%d of %d objects were left behind by the deletion with prune", remaining, count)
	}
}

// TestDeletionWithoutAnInventoryFindsObjectsByTheirLabels deletes a
// Kustomization that never recorded an inventory, yet applied something:
// its first stage (cluster roles) went in, then a Service the API server
// refuses failed the apply. With prune, what carries its ownership labels
// is deleted with it all the same.
func TestDeletionWithoutAnInventoryFindsObjectsByTheirLabels(t *testing.T) {
	role := "weir-test-" + testenv.RandomName(8)
	badService := "apiVersion: v1\nkind: Service\nmetadata:\n  name: bad\nspec:\n  ports:\n    - port: 99999\n"
	f := newFixture(t, map[string]string{
		"app/role.yaml":    fmt.Sprintf("apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: %s\nrules: []\n", role),
		"app/service.yaml": badService,
	})
	key := client.ObjectKey{Name: role}
	t.Cleanup(func() {
		_ = env.Client.Delete(context.Background(), &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: role}})
	})
	ks := f.kustomization("app", "./app", nil)
	got := f.waitReason(ks, meta.ReconciliationFailedReason)
	if got.Status.Inventory != nil {
		t.Fatalf("a failed first apply recorded an inventory: %+v", got.Status.Inventory)
	}
	if err := env.Client.Get(context.Background(), key, &rbacv1.ClusterRole{}); err != nil {
		t.Fatalf("the first stage was not applied: %v", err)
	}
	if err := env.Client.Delete(context.Background(), ks); err != nil {
		t.Fatal(err)
	}
	waitGone(t, ks)
	cr := &rbacv1.ClusterRole{}
	err := env.Client.Get(context.Background(), key, cr)
	if err == nil && cr.DeletionTimestamp.IsZero() {
		t.Errorf("ClusterRole %s, with the Kustomization's labels, was left behind when it was deleted with prune", role)
	}
}
