package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// weir build all renders every Kustomization of every cluster of the
// multi-cluster repository, each with its own cluster's values; --cluster
// keeps one; a Kustomization that fails is reported and fails the run,
// after the others are rendered.
func TestBuildAllRendersEveryClusterWithItsValues(t *testing.T) {
	root, key := multicluster(t)
	out, stderr, err := runSplit(t, "build", "all", root, "--repo", root, "--age-key-file", key)
	if err != nil {
		t.Fatalf("weir build all: %v\n%s", err, stderr)
	}
	for _, c := range clusters {
		wantIn(t, "weir build all", out, "# cluster "+c+" (kubernetes/clusters/"+c+")")
	}
	// Each cluster's echo carries that cluster's value, never another's.
	groups := strings.Split(out, "# cluster ")
	for _, g := range groups[1:] {
		name := strings.Fields(g)[0]
		echo := g[strings.Index(g, "# Kustomization flux-system/echo")+1:]
		if i := strings.Index(echo, "\n# "); i > 0 {
			echo = echo[:i]
		}
		wantIn(t, "echo of "+name, echo, "cluster: "+name)
		for _, other := range clusters {
			if other != name {
				wantNotIn(t, "echo of "+name, echo, "cluster: "+other)
			}
		}
	}
	wantNotIn(t, "weir build all", out, "ENC[")

	out, _, err = runSplit(t, "build", "all", root, "--repo", root, "--cluster", "test", "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Clusters []struct {
			Name           string
			Kustomizations []struct {
				Name, Namespace, File string
				Objects               []map[string]any
			}
		}
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("-o json is not JSON: %v\n%s", err, out)
	}
	if len(got.Clusters) != 1 || got.Clusters[0].Name != "test" || len(got.Clusters[0].Kustomizations) == 0 {
		t.Fatalf("--cluster test gave %+v", got.Clusters)
	}
	for _, k := range got.Clusters[0].Kustomizations {
		for _, o := range k.Objects {
			labels, _ := o["metadata"].(map[string]any)["labels"].(map[string]any)
			if labels["kustomize.toolkit.fluxcd.io/name"] != k.Name {
				t.Errorf("an object of %s lacks its owner label: %v", k.Name, labels)
			}
		}
	}

	// A Kustomization whose path is gone fails alone.
	if err := os.RemoveAll(filepath.Join(root, "kubernetes", "apps", "cert-manager", "app")); err != nil {
		t.Fatal(err)
	}
	out, stderr, err = runSplit(t, "build", "all", root, "--repo", root, "--cluster", "main")
	if err == nil || !strings.Contains(err.Error(), "failed to render") {
		t.Errorf("weir build all with a missing path: err = %v, want a failure", err)
	}
	wantIn(t, "stderr", stderr, "✗ main: Kustomization ")
	wantIn(t, "stdout", out, "cert-manager", ": failed: ", "# Kustomization flux-system/echo")
}

// The example repository renders whole, offline, with no ciphertext.
func TestBuildAllOnTheExample(t *testing.T) {
	t.Setenv("SOPS_AGE_KEY_FILE", "")
	t.Setenv("SOPS_AGE_KEY", "")
	example := filepath.Join("..", "..", "examples", "cluster")
	out, stderr, err := runSplit(t, "build", "all", example)
	if err != nil {
		t.Fatalf("weir build all on the example: %v\n%s", err, stderr)
	}
	if n := strings.Count(out, "# Kustomization flux-system/"); n != 14 {
		t.Errorf("the example rendered %d Kustomizations, want its 14 (the 15th, flux-system, is made by weir up)", n)
	}
	wantNotIn(t, "the example", out, "ENC[", ": failed: ")
}
