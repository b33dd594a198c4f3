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

// weir test on the example, then on the example with each kind of mistake
// added: a missing dependency, a cycle, a source that is not defined, an
// object applied by two Kustomizations, and a substituteFrom Secret that is
// not in Git (a warning, a failure with --strict); each is reported on its
// object, in the JUnit file too, and the run exits 1.
func TestTestChecksTheRepository(t *testing.T) {
	t.Setenv("SOPS_AGE_KEY_FILE", "")
	t.Setenv("SOPS_AGE_KEY", "")
	work := t.TempDir()
	root := filepath.Join(work, "cluster")
	for _, d := range []string{"cluster", "charts"} {
		if err := os.CopyFS(filepath.Join(work, d), os.DirFS(filepath.Join("..", "..", "examples", d))); err != nil {
			t.Fatal(err)
		}
	}
	out, stderr, err := runSplit(t, "test", root)
	if err != nil {
		t.Fatalf("weir test on the example: %v\n%s%s", err, out, stderr)
	}
	// The charts come from examples/charts, beside the repository, as
	// weir up finds them.
	wantIn(t, "weir test on the example", out, "27 checked: 27 passed, 0 with warnings, 0 failed", "✔ kubernetes: HelmRelease default/echo: 3 objects")

	ks := func(name, path, extra string) string {
		return "---\napiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata:\n  name: " + name + "\n  namespace: flux-system\n" +
			"spec:\n  interval: 1h\n  path: " + path + "\n  prune: true\n  sourceRef:\n    kind: GitRepository\n    name: flux-system\n" + extra
	}
	cm := "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: shared\n  namespace: testing\ndata:\n  host: ${HOST}\n"
	files := map[string]string{
		"kubernetes/apps/testing/kustomization.yaml": "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - ./ks.yaml\n",
		"kubernetes/apps/testing/ks.yaml": ks("needs-ghost", "./kubernetes/apps/testing/app", "  dependsOn:\n    - name: ghost\n") +
			ks("loop-a", "./kubernetes/apps/testing/empty", "  dependsOn:\n    - name: loop-b\n") +
			ks("loop-b", "./kubernetes/apps/testing/empty", "  dependsOn:\n    - name: loop-a\n") +
			ks("elsewhere", "./kubernetes/apps/testing/empty", "") +
			ks("shared-one", "./kubernetes/apps/testing/shared", "") +
			ks("shared-two", "./kubernetes/apps/testing/shared", "") +
			ks("external", "./kubernetes/apps/testing/shared", "  postBuild:\n    substituteFrom:\n      - kind: Secret\n        name: made-by-external-secrets\n"),
		"kubernetes/apps/testing/shared/kustomization.yaml": "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - ./cm.yaml\n",
		"kubernetes/apps/testing/shared/cm.yaml":            cm,
		"kubernetes/apps/testing/empty/kustomization.yaml":  "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: []\n",
		// A chart no folder holds: not rendered offline, a warning.
		"kubernetes/apps/testing/app/kustomization.yaml": "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - ./hr.yaml\n",
		"kubernetes/apps/testing/app/hr.yaml": "apiVersion: source.toolkit.fluxcd.io/v1\nkind: OCIRepository\nmetadata:\n  name: remote\n  namespace: flux-system\nspec:\n  interval: 1h\n  url: oci://ghcr.io/example/charts/remote\n  ref:\n    tag: 1.0.0\n" +
			"---\napiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nmetadata:\n  name: remote\n  namespace: flux-system\nspec:\n  interval: 1h\n  chartRef:\n    kind: OCIRepository\n    name: remote\n",
	}
	// elsewhere's source is a GitRepository nobody defines.
	files["kubernetes/apps/testing/ks.yaml"] = strings.Replace(files["kubernetes/apps/testing/ks.yaml"],
		"name: elsewhere\n  namespace: flux-system\nspec:\n  interval: 1h\n  path: ./kubernetes/apps/testing/empty\n  prune: true\n  sourceRef:\n    kind: GitRepository\n    name: flux-system\n",
		"name: elsewhere\n  namespace: flux-system\nspec:\n  interval: 1h\n  path: ./kubernetes/apps/testing/empty\n  prune: true\n  sourceRef:\n    kind: OCIRepository\n    name: nowhere\n", 1)
	for p, s := range files {
		if err := writeTestFile(filepath.Join(root, filepath.FromSlash(p)), s); err != nil {
			t.Fatal(err)
		}
	}
	junit := filepath.Join(t.TempDir(), "report.xml")
	out, _, err = runSplit(t, "test", root, "--junit", junit, "--offline")
	if err == nil || !strings.Contains(err.Error(), "failed the checks") {
		t.Errorf("weir test with mistakes: err = %v, want a failure", err)
	}
	wantIn(t, "weir test with mistakes", out,
		"✗ kubernetes: Kustomization flux-system/needs-ghost\n    ✗ dependsOn flux-system/ghost, which this cluster does not define",
		"✗ kubernetes: Kustomization flux-system/loop-a\n    ✗ dependency cycle: flux-system/loop-a -> flux-system/loop-b -> flux-system/loop-a",
		"    ✗ its source OCIRepository flux-system/nowhere is not defined in this cluster",
		"✗ kubernetes: Kustomization flux-system/shared-one\n    ✗ ConfigMap/testing/shared is also applied by Kustomization flux-system/external, flux-system/shared-two",
		"✗ kubernetes: Kustomization flux-system/external\n    ✗ ConfigMap/testing/shared is also applied by Kustomization flux-system/shared-one, flux-system/shared-two",
		"    ⚠ variables left as written (their substituteFrom source is not in the repository): HOST",
		"✔ kubernetes: Kustomization flux-system/echo: 2 objects",
		"⚠ kubernetes: HelmRelease flux-system/remote\n    ⚠ chart not rendered: HelmRelease flux-system/remote: its chart remote comes from",
	)
	b, err := os.ReadFile(junit)
	if err != nil {
		t.Fatal(err)
	}
	wantIn(t, "the JUnit report", string(b), `<testsuite name="kubernetes" tests="35" failures="`, `<testcase name="Kustomization flux-system/needs-ghost"`, `<failure message="dependsOn flux-system/ghost, which this cluster does not define">`)

	out, _, _ = runSplit(t, "test", root, "--strict", "--offline")
	wantIn(t, "weir test --strict", out, "✗ kubernetes: Kustomization flux-system/external")
}

// A Kustomization applied by another is built as that one renders it, as
// the cluster holds it: the parent's postBuild variables substituted in
// its spec.path and dependsOn, the parent's patches applied to it (as the
// large home-ops repositories write ./kubernetes/apps/${CLUSTER}/... and
// inject defaults into every child).
func TestChildKustomizationsAreBuiltAsTheirParentRendersThem(t *testing.T) {
	root := t.TempDir()
	ks := func(name, path, extra string) string {
		return "---\napiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata:\n  name: " + name + "\n  namespace: flux-system\n" +
			"spec:\n  interval: 1h\n  path: " + path + "\n  prune: true\n  sourceRef:\n    kind: GitRepository\n    name: flux-system\n" + extra
	}
	for p, text := range map[string]string{
		"kubernetes/flux/cluster/apps.yaml": ks("cluster-apps", "./kubernetes/apps/main",
			"  postBuild:\n    substitute:\n      CLUSTER: main\n      STORAGE: storage\n"+
				"  patches:\n    - target:\n        kind: Kustomization\n      patch: |-\n"+
				"        apiVersion: kustomize.toolkit.fluxcd.io/v1\n        kind: Kustomization\n        metadata:\n          name: not-used\n"+
				"        spec:\n          postBuild:\n            substitute:\n              GREETING: hello-from-the-parent\n"),
		"kubernetes/apps/main/kustomization.yaml": "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - ./ks.yaml\n",
		"kubernetes/apps/main/ks.yaml": ks("app", "./kubernetes/apps/${CLUSTER}/app", "  dependsOn:\n    - name: ${STORAGE}\n") +
			ks("storage", "./kubernetes/apps/main/storage", ""),
		"kubernetes/apps/main/app/cm.yaml":     "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\n  namespace: default\ndata:\n  greeting: ${GREETING}\n",
		"kubernetes/apps/main/storage/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: storage\n  namespace: default\ndata:\n  size: 1Gi\n",
	} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(root, p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, p), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out, stderr, err := runSplit(t, "build", "all", root, "--repo", root)
	if err != nil {
		t.Fatalf("weir build all: %v\n%s%s", err, out, stderr)
	}
	wantIn(t, "weir build all", out,
		"# Kustomization flux-system/app (kubernetes/apps/main/ks.yaml, path ./kubernetes/apps/main/app): 1 object",
		"greeting: hello-from-the-parent")
	wantNotIn(t, "weir build all", out, "${GREETING}")

	out, stderr, err = runSplit(t, "test", root)
	if err != nil {
		t.Fatalf("weir test: %v\n%s%s", err, out, stderr)
	}
	wantIn(t, "weir test", out, "0 failed")
	wantNotIn(t, "weir test", out, "${STORAGE}", "does not define")
}

// weir test on a folder where no cluster applies anything fails: a pull
// request check that checks nothing must not pass.
func TestTestRefusesAFolderWithNothingToCheck(t *testing.T) {
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "README.md"), []byte("not a cluster repository\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, stderr, err := runSplit(t, "test", root)
	if err == nil || !strings.Contains(err.Error(), "nothing to check in") {
		t.Fatalf("weir test on a folder with no Flux object: err = %v, want nothing to check\n%s%s", err, out, stderr)
	}
}
