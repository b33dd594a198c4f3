package cli

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/weirhq/weir/internal/depgraph"
)

// dryRunApp is one Kustomization of the repository of the dry-run tests:
// its objects in apps/<name>/objects.yaml.
type dryRunApp struct {
	name, dependsOn, objects string
}

// The objects of the dry-run tests: a CRD with a Namespace, a custom
// resource of it, a Deployment the API server takes and one it refuses (a
// named port where containerPort needs a number, which kustomize lets by).
const (
	widgetCRD = `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.dryrun.example.com
spec:
  group: dryrun.example.com
  names: {kind: Widget, listKind: WidgetList, plural: widgets, singular: widget}
  scope: Namespaced
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          properties:
            spec:
              type: object
              properties:
                size: {type: integer}
---
apiVersion: v1
kind: Namespace
metadata:
  name: shop
`
	widget = `apiVersion: dryrun.example.com/v1
kind: Widget
metadata:
  name: w1
  namespace: shop
spec:
  size: 3
`
	goodDeployment = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
spec:
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
        - name: web
          image: nginx:1.27
          ports:
            - containerPort: 8080
---
apiVersion: v1
kind: Secret
metadata:
  name: web
  namespace: shop
stringData:
  password: hunter2
`
	badDeployment = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: bad
  namespace: NAMESPACE
spec:
  selector:
    matchLabels: {app: bad}
  template:
    metadata:
      labels: {app: bad}
    spec:
      containers:
        - name: bad
          image: nginx:1.27
          ports:
            - containerPort: http
`
)

// dryRunRepo writes a repository of one cluster, dev, whose
// Kustomizations are apps.
func dryRunRepo(t *testing.T, apps ...dryRunApp) string {
	t.Helper()
	root := t.TempDir()
	ks := func(name, path, extra string) string {
		return "---\napiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata:\n  name: " + name + "\n  namespace: flux-system\n" +
			"spec:\n  interval: 1h\n  path: " + path + "\n  prune: true\n  sourceRef:\n    kind: GitRepository\n    name: flux-system\n" + extra
	}
	files := map[string]string{
		"clusters/dev/flux-system/gotk-sync.yaml": "apiVersion: source.toolkit.fluxcd.io/v1\nkind: GitRepository\nmetadata:\n  name: flux-system\n  namespace: flux-system\n" +
			"spec:\n  interval: 1m\n  ref:\n    branch: main\n  url: https://example.com/dev.git\n" + ks("flux-system", "./clusters/dev", ""),
		"clusters/dev/flux-system/kustomization.yaml": "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - gotk-sync.yaml\n",
	}
	var list string
	for _, a := range apps {
		extra := ""
		if a.dependsOn != "" {
			extra = "  dependsOn:\n    - name: " + a.dependsOn + "\n"
		}
		list += ks(a.name, "./apps/"+a.name, extra)
		files["apps/"+a.name+"/kustomization.yaml"] = "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - objects.yaml\n"
		files["apps/"+a.name+"/objects.yaml"] = a.objects
	}
	files["clusters/dev/apps.yaml"] = list
	for p, s := range files {
		if err := writeTestFile(filepath.Join(root, filepath.FromSlash(p)), s); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// weir test --local checks a repository on a throwaway control plane: a
// valid one passes whole, its custom resources checked against the CRD
// the repository brings; a Deployment the API server refuses fails on its
// Kustomization, naming the object and the server's reason, where plain
// weir test lets it by.
func TestTestLocalDryRunsOnAThrowawayControlPlane(t *testing.T) {
	apps := []dryRunApp{
		{name: "widgets", dependsOn: "crds", objects: widget},
		{name: "crds", objects: widgetCRD},
		{name: "web", dependsOn: "crds", objects: goodDeployment},
	}
	root := dryRunRepo(t, apps...)
	out, stderr, err := runSplit(t, "test", root, "--local")
	if err != nil {
		t.Fatalf("weir test --local on a valid repository: %v\n%s%s", err, out, stderr)
	}
	wantIn(t, "weir test --local", stderr, "starting a local control plane for the dry run… ready in ")
	wantIn(t, "weir test --local", out,
		"dev: server dry run on a local control plane: 10 accepted, 0 refused, 0 not checked",
		"✔ dev: Kustomization flux-system/widgets: 1 object",
		// flux-system's Kustomizations and GitRepository meet Flux's CRDs.
		"✔ dev: Kustomization flux-system/flux-system: 5 objects",
		"4 checked: 4 passed, 0 with warnings, 0 failed")
	wantNotIn(t, "weir test --local", out+stderr, "hunter2")

	// A CRD the API server refuses is reported once, though it is both
	// applied and dry-run.
	badCRD := strings.NewReplacer("widgets", "gadgets", "Widget", "Gadget", "widget", "gadget", "Namespaced", "Galaxy").Replace(strings.Split(widgetCRD, "---")[0])
	root = dryRunRepo(t, append(apps, dryRunApp{name: "bad", dependsOn: "crds", objects: strings.Replace(badDeployment, "NAMESPACE", "shop", 1) + "---\n" + badCRD})...)
	out, stderr, err = runSplit(t, "test", root)
	if err != nil {
		t.Fatalf("weir test without a dry run: %v\n%s%s", err, out, stderr)
	}
	wantIn(t, "weir test", out, "✔ dev: Kustomization flux-system/bad: 2 objects")
	out, stderr, err = runSplit(t, "test", root, "--local")
	if err == nil || !strings.Contains(err.Error(), "1 object failed the checks") {
		t.Errorf("weir test --local with a bad Deployment: err = %v, want a failure\n%s%s", err, out, stderr)
	}
	wantIn(t, "weir test --local", out,
		"✗ dev: Kustomization flux-system/bad\n    ✗ the API server refuses CustomResourceDefinition/gadgets.dryrun.example.com: ",
		"spec.scope: Unsupported value: \"Galaxy\"",
		"    ✗ the API server refuses Deployment/shop/bad: ",
		"containerPort: expected numeric",
		"✔ dev: Kustomization flux-system/web: 2 objects")
	if n := strings.Count(out, "refuses CustomResourceDefinition/gadgets"); n != 1 {
		t.Errorf("the refused CRD is reported %d times, want once:\n%s", n, out)
	}
}

// weir test --server dry-runs on the cluster of the kubeconfig: what
// it cannot check there yet, a custom resource whose CRD and a Deployment
// whose Namespace is only in the repository, is a warning that says why;
// what the API server refuses fails, as does a namespaced object with no
// namespace.
func TestTestServerDryRunsOnTheCluster(t *testing.T) {
	root := dryRunRepo(t,
		dryRunApp{name: "crds", objects: widgetCRD},
		dryRunApp{name: "widgets", dependsOn: "crds", objects: widget},
		dryRunApp{name: "web", dependsOn: "crds", objects: goodDeployment},
		dryRunApp{name: "bad", objects: strings.Replace(badDeployment, "NAMESPACE", "default", 1) +
			"---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: loose\ndata:\n  a: b\n"},
	)
	out, stderr, err := runSplit(t, "test", root, "--server", "--kubeconfig", env.Cluster.Kubeconfig)
	if err == nil || !strings.Contains(err.Error(), "1 object failed the checks") {
		t.Errorf("weir test --server: err = %v, want a failure\n%s%s", err, out, stderr)
	}
	wantIn(t, "weir test --server", out,
		"dev: server dry run on "+env.Cluster.Server+": 8 accepted, 2 refused, 3 not checked",
		"✔ dev: Kustomization flux-system/crds: 2 objects",
		"⚠ dev: Kustomization flux-system/widgets: 1 object\n    ⚠ not dry-run: Widget/shop/w1: the cluster does not serve Widget (dryrun.example.com/v1) yet: its CustomResourceDefinition is only in the repository",
		"⚠ dev: Kustomization flux-system/web: 2 objects\n    ⚠ not dry-run: Secret/shop/web, Deployment/shop/web: its Namespace shop is only in the repository, and the cluster checks nothing in it before it is applied",
		"✗ dev: Kustomization flux-system/bad\n    ✗ the API server refuses ConfigMap/loose: it has no namespace, and ConfigMap objects live in one: set metadata.namespace or the Kustomization's targetNamespace (",
		"    ✗ the API server refuses Deployment/default/bad: ",
		"containerPort: expected numeric",
		"5 checked: 2 passed, 2 with warnings, 1 failed")
	wantNotIn(t, "weir test --server", out+stderr, "hunter2")

	// One cluster of the kubeconfig checks one cluster of the repository.
	multi, _ := multicluster(t)
	_, _, err = runSplit(t, "test", multi, "--server", "--kubeconfig", env.Cluster.Kubeconfig)
	if err == nil || !strings.Contains(err.Error(), "--server checks the objects of one cluster against the cluster of your kubeconfig: name it with --cluster") {
		t.Errorf("weir test --server on a repository of several clusters: err = %v", err)
	}
}

// cancelOn is a writer that cancels a context once what was written to it
// holds a word.
type cancelOn struct {
	word   string
	cancel context.CancelFunc
	text   strings.Builder
}

func (w *cancelOn) Write(p []byte) (int, error) {
	w.text.Write(p)
	if strings.Contains(w.text.String(), w.word) {
		w.cancel()
	}
	return len(p), nil
}

// Ctrl-C while weir test --local starts its control plane, or while it
// dry-runs, stops the control plane: no process of it is left, and its
// folder is removed.
func TestTestLocalStopsItsControlPlaneOnCtrlC(t *testing.T) {
	root := dryRunRepo(t, dryRunApp{name: "crds", objects: widgetCRD})
	for _, when := range []string{"starting a local control plane", "ready in"} {
		t.Run(when, func(t *testing.T) {
			tmp := t.TempDir()
			t.Setenv("TMPDIR", tmp)
			t.Setenv("KUBECONFIG", filepath.Join(tmp, "none"))
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			progress := &cancelOn{word: when, cancel: cancel}
			cmd := newRootCommand()
			cmd.SetOut(io.Discard)
			cmd.SetErr(progress)
			cmd.SetArgs([]string{"test", root, "--local"})
			err := cmd.ExecuteContext(ctx)
			if !errors.Is(err, context.Canceled) {
				t.Errorf("weir test --local stopped by Ctrl-C: err = %v, want context.Canceled\n%s", err, progress.text.String())
			}
			if left, _ := os.ReadDir(tmp); len(left) > 0 {
				t.Errorf("the control plane's folder is left behind: %v", left)
			}
			procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
			for _, p := range procs {
				if b, err := os.ReadFile(p); err == nil && bytes.Contains(b, []byte(tmp)) {
					t.Errorf("a process of the control plane still runs: %s", bytes.ReplaceAll(b, []byte{0}, []byte{' '}))
				}
			}
		})
	}
}

// The Kustomizations are dry-run each after those it depends on, those on
// a cycle last; those with nothing rendered are left out.
func TestDryRunOrderFollowsDependsOn(t *testing.T) {
	obj := []*unstructured.Unstructured{{Object: map[string]any{}}}
	dep := func(name string) []depgraph.Key {
		return []depgraph.Key{{Kind: "Kustomization", Namespace: "flux-system", Name: name}}
	}
	kss := []builtKustomization{
		{Name: "apps", Namespace: "flux-system", Objects: obj, dependsOn: dep("infra")},
		{Name: "crds", Namespace: "flux-system", Objects: obj},
		{Name: "empty", Namespace: "flux-system"},
		{Name: "infra", Namespace: "flux-system", Objects: obj, dependsOn: dep("crds")},
		{Name: "loop-a", Namespace: "flux-system", Objects: obj, dependsOn: dep("loop-b")},
		{Name: "loop-b", Namespace: "flux-system", Objects: obj, dependsOn: dep("loop-a")},
	}
	var got []string
	for _, k := range kustomizationOrder(kss) {
		got = append(got, k.Name)
	}
	if want := []string{"crds", "infra", "apps", "loop-a", "loop-b"}; !slices.Equal(got, want) {
		t.Errorf("dry-run order = %v, want %v", got, want)
	}
}

// weir test --local dry-runs what a HelmRelease's chart installs too, in
// the release's namespace: a chart whose Deployment the API server
// refuses fails its HelmRelease.
func TestTestLocalDryRunsChartObjects(t *testing.T) {
	release := `apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata:
  name: store
  namespace: shop
spec:
  interval: 1h
  chart:
    spec:
      chart: ./charts/store
      sourceRef: {kind: GitRepository, name: flux-system, namespace: flux-system}
`
	root := dryRunRepo(t,
		dryRunApp{name: "crds", objects: widgetCRD},
		dryRunApp{name: "store", dependsOn: "crds", objects: release},
	)
	chart := map[string]string{
		"charts/store/Chart.yaml":            "apiVersion: v2\nname: store\nversion: 1.0.0\n",
		"charts/store/templates/config.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}\ndata: {a: b}\n",
		"charts/store/templates/deploy.yaml": strings.Replace(strings.Replace(badDeployment, "  namespace: NAMESPACE\n", "", 1), "name: bad\n", "name: {{ .Release.Name }}-bad\n", 1),
	}
	for p, s := range chart {
		if err := writeTestFile(filepath.Join(root, filepath.FromSlash(p)), s); err != nil {
			t.Fatal(err)
		}
	}
	out, stderr, err := runSplit(t, "test", root, "--offline")
	if err != nil {
		t.Fatalf("weir test without a dry run: %v\n%s%s", err, out, stderr)
	}
	wantIn(t, "weir test", out, "✔ dev: HelmRelease shop/store: 2 objects")
	out, stderr, err = runSplit(t, "test", root, "--offline", "--local")
	if err == nil {
		t.Fatalf("weir test --local with a chart the API server refuses passed\n%s%s", out, stderr)
	}
	wantIn(t, "weir test --local", out,
		"✗ dev: HelmRelease shop/store\n    ✗ the API server refuses Deployment/shop/store-bad: ",
		"containerPort: expected numeric")
	wantNotIn(t, "weir test --local", out, "ConfigMap/shop/store")
}
