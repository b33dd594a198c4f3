package apply

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
)

func TestInventorySizeIsTheEncodedSize(t *testing.T) {
	inv := &kustomizev1.ResourceInventory{Entries: []kustomizev1.ResourceRef{
		{ID: "apps_web_apps_Deployment", Version: "v1"},
		{ID: "apps_web__ConfigMap", Version: "v1"},
	}}
	raw, err := json.Marshal(inv)
	if err != nil {
		t.Fatal(err)
	}
	// One separator less than entries: the estimate may be over by one byte.
	if got := InventorySize(inv); got < len(raw) || got > len(raw)+1 {
		t.Errorf("InventorySize = %d, encoded size %d", got, len(raw))
	}
}

func TestStatusPartKeepsFluxKindsFirstWithinTheBudget(t *testing.T) {
	inv := &kustomizev1.ResourceInventory{}
	for i := 0; i < 1000; i++ {
		inv.Entries = append(inv.Entries, kustomizev1.ResourceRef{ID: fmt.Sprintf("apps_cm-%04d__ConfigMap", i), Version: "v1"})
	}
	inv.Entries = append(inv.Entries,
		kustomizev1.ResourceRef{ID: "flux-system_zz-apps_kustomize.toolkit.fluxcd.io_Kustomization", Version: "kustomize.toolkit.fluxcd.io/v1"},
		kustomizev1.ResourceRef{ID: "apps_zz-web_helm.toolkit.fluxcd.io_HelmRelease", Version: "helm.toolkit.fluxcd.io/v2"})
	const budget = 4 << 10
	part := StatusPart(inv, budget)
	if InventorySize(part) > budget {
		t.Errorf("the part takes %d bytes, over the budget of %d", InventorySize(part), budget)
	}
	if len(part.Entries) < 50 || len(part.Entries) >= len(inv.Entries) {
		t.Fatalf("the part has %d entries", len(part.Entries))
	}
	var flux int
	for i, e := range part.Entries {
		if strings.Contains(e.ID, "toolkit.fluxcd.io") {
			flux++
		}
		if i > 0 && part.Entries[i-1].ID > e.ID {
			t.Errorf("entries are not sorted: %s before %s", part.Entries[i-1].ID, e.ID)
		}
	}
	if flux != 2 {
		t.Errorf("the part keeps %d of the 2 Flux objects", flux)
	}
}

func TestInventoryConfigMapNamesAreValid(t *testing.T) {
	long := strings.Repeat("k", 253)
	for _, name := range []string{"apps", long} {
		for _, i := range []int{0, 1, 12} {
			n := partName(name, i)
			if len(n) > 253 {
				t.Errorf("partName(%d chars, %d) has %d characters", len(name), i, len(n))
			}
		}
	}
	if partName(long, 0) == partName(long[:252]+"j", 0) {
		t.Error("two long names share their ConfigMap")
	}
	if got := InventoryConfigMap("apps"); got != "apps.weir-inventory" {
		t.Errorf("InventoryConfigMap(apps) = %s", got)
	}
}
