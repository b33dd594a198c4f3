package repo

import (
	"path/filepath"
	"slices"
	"testing"
)

// clusterPaths lists the sync roots of the repository at root.
func clusterPaths(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	for _, c := range open(t, root).Clusters() {
		out = append(out, c.Name+"="+c.Path)
	}
	return out
}

func TestClustersAreFoundFromTheirSyncRoots(t *testing.T) {
	if got, want := clusterPaths(t, filepath.Join("testdata", "multicluster")), []string{
		"main=kubernetes/clusters/main", "test=kubernetes/clusters/test", "utility=kubernetes/clusters/utility",
	}; !slices.Equal(got, want) {
		t.Errorf("bootstrapped clusters: got %v, want %v", got, want)
	}
	// weir up's convention, with no flux-system Kustomization in Git.
	if got, want := clusterPaths(t, filepath.Join("..", "..", "examples", "cluster")), []string{"kubernetes=kubernetes/flux/cluster"}; !slices.Equal(got, want) {
		t.Errorf("the example: got %v, want %v", got, want)
	}
	// A flux-system Kustomization synced from a folder of its own name.
	root := t.TempDir()
	writeFile(t, root, "clusters/production/flux-system/gotk-sync.yaml", "apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata:\n  name: flux-system\n  namespace: flux-system\nspec:\n  path: ./clusters/production\n  sourceRef:\n    kind: GitRepository\n    name: home\n")
	writeFile(t, root, "clusters/staging/apps.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n")
	r := open(t, root)
	cs := r.Clusters()
	if len(cs) != 2 || cs[0].Path != "clusters/production" || cs[0].Source != "home" || cs[1].Path != "clusters/staging" || cs[1].Source != "flux-system" {
		t.Errorf("clusters/: got %+v %+v", cs[0], cs[1])
	}
	if c := r.ClusterOf("clusters/staging/apps.yaml"); c == nil || c.Name != "staging" {
		t.Errorf("ClusterOf(clusters/staging/apps.yaml) = %+v", c)
	}
	// No sync root: the repository is one cluster.
	root = t.TempDir()
	writeFile(t, root, "apps/cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n")
	if got, want := clusterPaths(t, root), []string{"repository=."}; !slices.Equal(got, want) {
		t.Errorf("no sync root: got %v, want %v", got, want)
	}
}

// Objects get the namespace kustomize and the applying Kustomization give
// them: targetNamespace over the outermost kustomization.yaml namespace
// over their own.
func TestNamespacesResolveAsKustomizeDoes(t *testing.T) {
	root := t.TempDir()
	cm := func(name, ns string) string {
		s := "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: " + name + "\n"
		if ns != "" {
			s += "  namespace: " + ns + "\n"
		}
		return s
	}
	writeFile(t, root, "clusters/one/outer/kustomization.yaml", "namespace: outer\nresources: [../../../bases/inner]\n")
	writeFile(t, root, "bases/inner/kustomization.yaml", "namespace: inner\nresources: [cm.yaml]\nconfigMapGenerator:\n- name: generated\n  literals: [A=1]\n  options: {disableNameSuffixHash: true}\n- name: hashed\n  literals: [B=2]\n")
	writeFile(t, root, "bases/inner/cm.yaml", cm("nested", "own"))
	writeFile(t, root, "clusters/one/plain.yaml", cm("plain", "own"))
	writeFile(t, root, "clusters/one/apps.yaml", "apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata:\n  name: apps\n  namespace: flux-system\nspec:\n  path: ./apps\n  targetNamespace: target\n  sourceRef: {kind: GitRepository, name: flux-system}\n")
	writeFile(t, root, "apps/deep/cm.yaml", cm("targeted", "own"))
	writeFile(t, root, "apps/other/kustomization.yaml", "namespace: ignored\nresources: [cm.yaml]\n")
	writeFile(t, root, "apps/other/cm.yaml", cm("overridden", ""))
	writeFile(t, root, "unreached/cm.yaml", cm("unreached", "own"))

	got := map[string]string{}
	for _, o := range open(t, root).Clusters()[0].Objects {
		got[o.GetName()] = o.Namespace + " by " + o.By
	}
	want := map[string]string{
		"nested": "outer by ", "generated": "outer by ", "plain": "own by ", "apps": "flux-system by ",
		"targeted": "target by flux-system/apps", "overridden": "target by flux-system/apps",
	}
	for name, w := range want {
		if got[name] != w {
			t.Errorf("%s: got %q, want %q", name, got[name], w)
		}
	}
	for _, name := range []string{"hashed", "unreached"} {
		if _, ok := got[name]; ok {
			t.Errorf("%s is among the cluster's objects", name)
		}
	}
}
