package main

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// The chain floor installs as many releases on each level as the
// example's dependsOn graph puts there.
func TestChainLevelsOfTheExample(t *testing.T) {
	got, err := chainLevels(filepath.Join("..", "examples", "cluster"))
	if err != nil {
		t.Fatal(err)
	}
	// cilium, coredns, flux-operator, flux-instance, then cert-manager,
	// cloudnative-pg, rustfs and spegel, then envoy-gateway, then the
	// four that depend on it.
	if want := []int{1, 1, 1, 1, 4, 1, 4}; !slices.Equal(got, want) {
		t.Errorf("levels %v, want %v", got, want)
	}
}

// A cycle is an error, not a stack overflow.
func TestChainLevelsRefusesACycle(t *testing.T) {
	dir := t.TempDir()
	for name, dep := range map[string]string{"a": "b", "b": "a"} {
		p := filepath.Join(dir, "kubernetes", "apps", name, "ks.yaml")
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		ks := "apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata: {name: " + name + "}\nspec:\n  dependsOn: [{name: " + dep + "}]\n"
		if err := os.WriteFile(p, []byte(ks), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := chainLevels(dir); err == nil {
		t.Error("a dependsOn cycle gave levels")
	}
}
