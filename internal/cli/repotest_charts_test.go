package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/weirhq/weir/internal/testenv"
)

// configMaps are chart templates of n more ConfigMaps.
func configMaps(n int, extra map[string]string) map[string]string {
	files := map[string]string{}
	for i := 1; i <= n; i++ {
		files[fmt.Sprintf("templates/extra-%d.yaml", i)] = fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-extra-%d\ndata: {}\n", i)
	}
	for p, s := range extra {
		files[p] = s
	}
	return files
}

// serviceMonitorCRD is the CustomResourceDefinition of the Prometheus
// operator's ServiceMonitor, which charts gate their monitoring on.
const serviceMonitorCRD = "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  name: servicemonitors.monitoring.coreos.com\n" +
	"spec:\n  group: monitoring.coreos.com\n  scope: Namespaced\n  names:\n    kind: ServiceMonitor\n    plural: servicemonitors\n    singular: servicemonitor\n    listKind: ServiceMonitorList\n" +
	"  versions:\n    - name: v1\n      served: true\n      storage: true\n      schema:\n        openAPIV3Schema:\n          type: object\n          x-kubernetes-preserve-unknown-fields: true\n"

// chartsRepository writes a repository with one cluster whose
// HelmReleases take their charts from reg and helmRepo, and a
// CustomResourceDefinition of monitoring.coreos.com/v1 ServiceMonitor.
func chartsRepository(t *testing.T, reg *testenv.Registry, helmRepo *testenv.HelmRepo) string {
	t.Helper()
	root := t.TempDir()
	ks := func(name, path string) string {
		return "---\napiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata:\n  name: " + name + "\n  namespace: flux-system\n" +
			"spec:\n  interval: 1h\n  path: " + path + "\n  prune: true\n  sourceRef:\n    kind: GitRepository\n    name: flux-system\n"
	}
	kustomization := func(resources ...string) string {
		return "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - " + strings.Join(resources, "\n  - ") + "\n"
	}
	ociRepo := func(name, url string) string {
		return "---\napiVersion: source.toolkit.fluxcd.io/v1\nkind: OCIRepository\nmetadata:\n  name: " + name + "\n  namespace: flux-system\n" +
			"spec:\n  interval: 1h\n  url: " + url + "\n  ref:\n    tag: 1.0.0\n"
	}
	chartRef := func(name string) string {
		return "---\napiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nmetadata:\n  name: " + name + "\n  namespace: flux-system\n" +
			"spec:\n  interval: 1h\n  chartRef:\n    kind: OCIRepository\n    name: " + name + "\n"
	}
	chartSpec := func(name, repo, version string) string {
		return "---\napiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nmetadata:\n  name: " + name + "\n  namespace: flux-system\n" +
			"spec:\n  interval: 1h\n  chart:\n    spec:\n      chart: " + name + "\n      version: \"" + version + "\"\n      sourceRef:\n        kind: HelmRepository\n        name: " + repo + "\n"
	}
	files := map[string]string{
		"kubernetes/flux/cluster/ks.yaml":           ks("cluster-apps", "./kubernetes/apps"),
		"kubernetes/apps/kustomization.yaml":        kustomization("./ks.yaml"),
		"kubernetes/apps/ks.yaml":                   ks("crds", "./kubernetes/apps/crds") + ks("charts", "./kubernetes/apps/charts"),
		"kubernetes/apps/crds/kustomization.yaml":   kustomization("./servicemonitor.yaml"),
		"kubernetes/apps/crds/servicemonitor.yaml":  serviceMonitorCRD,
		"kubernetes/apps/charts/kustomization.yaml": kustomization("./sources.yaml", "./releases.yaml"),
		"kubernetes/apps/charts/sources.yaml": ociRepo("from-oci", reg.URL("charts/from-oci")) + ociRepo("gated", reg.URL("charts/gated")) + ociRepo("broken", reg.URL("charts/broken")) +
			ociRepo("operator", reg.URL("charts/operator")) + ociRepo("widget-user", reg.URL("charts/widget-user")) +
			"---\napiVersion: source.toolkit.fluxcd.io/v1\nkind: HelmRepository\nmetadata:\n  name: registry\n  namespace: flux-system\nspec:\n  interval: 1h\n  type: oci\n  url: " + reg.URL("helm") + "\n" +
			"---\napiVersion: source.toolkit.fluxcd.io/v1\nkind: HelmRepository\nmetadata:\n  name: index\n  namespace: flux-system\nspec:\n  interval: 1h\n  url: " + helmRepo.URL + "\n",
		"kubernetes/apps/charts/releases.yaml": chartRef("from-oci") + chartRef("gated") + chartRef("broken") + chartRef("operator") + chartRef("widget-user") +
			chartSpec("from-registry", "registry", "1.x") + chartSpec("from-index", "index", ">=2.0.0 <3"),
	}
	for p, s := range files {
		if err := writeTestFile(filepath.Join(root, filepath.FromSlash(p)), s); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// TestTestFetchesCharts checks that weir test renders charts it fetches
// from an OCIRepository, a HelmRepository of type oci and an HTTP
// HelmRepository, keeps them in its cache for runs without the network,
// and gives charts the API versions of the repository's CRDs.
func TestTestFetchesCharts(t *testing.T) {
	t.Setenv("SOPS_AGE_KEY_FILE", "")
	t.Setenv("SOPS_AGE_KEY", "")
	reg := testenv.NewRegistry(t, "", "")
	helmRepo := testenv.NewHelmRepo(t, "", "")
	reg.PushChart(t, "charts/from-oci", "1.0.0", testenv.WriteChart(t, "from-oci", "1.0.0", nil))
	reg.PushChart(t, "helm/from-registry", "1.0.0", testenv.WriteChart(t, "from-registry", "1.0.0", nil))
	reg.PushChart(t, "helm/from-registry", "1.3.0", testenv.WriteChart(t, "from-registry", "1.3.0", configMaps(1, nil)))
	helmRepo.AddChart(t, testenv.WriteChart(t, "from-index", "2.1.0", configMaps(2, nil)))
	helmRepo.AddChart(t, testenv.WriteChart(t, "from-index", "3.0.0", nil))
	// Gated on the ServiceMonitor API, as charts with monitoring are, and
	// on the Kubernetes version.
	reg.PushChart(t, "charts/gated", "1.0.0", testenv.WriteChart(t, "gated", "1.0.0", map[string]string{
		"templates/monitor.yaml": "{{- if .Capabilities.APIVersions.Has \"monitoring.coreos.com/v1/ServiceMonitor\" }}\napiVersion: monitoring.coreos.com/v1\nkind: ServiceMonitor\n" +
			"metadata:\n  name: {{ .Release.Name }}\nspec:\n  endpoints: []\n{{- end }}\n",
		"templates/new.yaml": "{{- if semverCompare \">=1.99.0-0\" .Capabilities.KubeVersion.Version }}\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-new\n{{- end }}\n",
	}))
	// A chart that brings a CRD in crds/, and one that uses it when known.
	reg.PushChart(t, "charts/operator", "1.0.0", testenv.WriteChart(t, "operator", "1.0.0", map[string]string{
		"crds/widget.yaml": strings.NewReplacer("monitoring.coreos.com", "example.com", "servicemonitor", "widget", "ServiceMonitor", "Widget", "name: v1", "name: v1alpha1").Replace(serviceMonitorCRD),
	}))
	reg.PushChart(t, "charts/widget-user", "1.0.0", testenv.WriteChart(t, "widget-user", "1.0.0", map[string]string{
		"templates/widget.yaml": "{{- if .Capabilities.APIVersions.Has \"example.com/v1alpha1/Widget\" }}\napiVersion: example.com/v1alpha1\nkind: Widget\nmetadata:\n  name: {{ .Release.Name }}\n{{- end }}\n",
	}))
	reg.PushChart(t, "charts/broken", "1.0.0", testenv.WriteChart(t, "broken", "1.0.0", map[string]string{
		"templates/broken.yaml": "{{ fail \"broken on purpose\" }}\n",
	}))
	root := chartsRepository(t, reg, helmRepo)
	cache := t.TempDir()

	out, _, err := runSplit(t, "test", root, "--chart-cache", cache)
	if err == nil || !strings.Contains(err.Error(), "1 object failed the checks") {
		t.Errorf("weir test: err = %v, want the broken chart to fail", err)
	}
	rendered := []string{
		"✔ kubernetes: HelmRelease flux-system/from-oci: 1 object\n",
		"✔ kubernetes: HelmRelease flux-system/from-registry: 2 objects\n",
		"✔ kubernetes: HelmRelease flux-system/from-index: 3 objects\n",
		"✔ kubernetes: HelmRelease flux-system/gated: 2 objects\n",
		// The CRD of operator's crds/ folder counts too.
		"✔ kubernetes: HelmRelease flux-system/operator: 2 objects\n",
		"✔ kubernetes: HelmRelease flux-system/widget-user: 2 objects\n",
	}
	wantIn(t, "weir test", out, append(rendered,
		"✗ kubernetes: HelmRelease flux-system/broken\n    ✗ does not render: HelmRelease flux-system/broken: rendering chart broken:",
		"broken on purpose")...)

	// Again: the digests are checked, nothing is downloaded.
	regBefore, repoBefore := reg.Counts(), helmRepo.Counts()
	out, _, _ = runSplit(t, "test", root, "--chart-cache", cache)
	wantIn(t, "weir test again", out, rendered...)
	if c := reg.Counts(); c.ManifestGets != regBefore.ManifestGets || c.BlobGets != regBefore.BlobGets {
		t.Errorf("weir test again pulled from the registry: %+v, then %+v", regBefore, c)
	}
	if c := helmRepo.Counts(); c.ChartGets != repoBefore.ChartGets || c.IndexNotModified != repoBefore.IndexNotModified+1 {
		t.Errorf("weir test again downloaded from the Helm repository: %+v, then %+v", repoBefore, c)
	}

	// --kube-version reaches the charts.
	out, _, _ = runSplit(t, "test", root, "--chart-cache", cache, "--kube-version", "v1.99.0")
	wantIn(t, "weir test --kube-version", out, "✔ kubernetes: HelmRelease flux-system/gated: 3 objects\n")

	// The servers down: the charts come from the cache, said so.
	reg.Stop()
	helmRepo.Stop()
	out, _, _ = runSplit(t, "test", root, "--chart-cache", cache)
	wantIn(t, "weir test with the servers down", out,
		"⚠ kubernetes: HelmRelease flux-system/from-oci: 1 object\n    ⚠ chart rendered from the cache: registry "+reg.Host+" could not be reached",
		"⚠ kubernetes: HelmRelease flux-system/from-registry: 2 objects\n",
		"⚠ kubernetes: HelmRelease flux-system/from-index: 3 objects\n    ⚠ chart rendered from the cache: Helm repository "+helmRepo.URL+"/ could not be reached",
		"⚠ kubernetes: HelmRelease flux-system/gated: 2 objects\n")

	// Offline, the cache alone: no warning.
	out, _, _ = runSplit(t, "test", root, "--chart-cache", cache, "--offline")
	wantIn(t, "weir test --offline", out, rendered...)

	// Offline with an empty cache: warnings naming each chart and its
	// source, no failure (the broken chart is not rendered either).
	out, _, err = runSplit(t, "test", root, "--chart-cache", t.TempDir(), "--offline")
	if err != nil {
		t.Errorf("weir test --offline with an empty cache: %v, want warnings only\n%s", err, out)
	}
	wantIn(t, "weir test --offline with an empty cache", out,
		"⚠ kubernetes: HelmRelease flux-system/from-oci\n    ⚠ chart not rendered: HelmRelease flux-system/from-oci: its chart from-oci comes from OCIRepository flux-system/from-oci ("+reg.URL("charts/from-oci")+
			"): the chart at "+reg.URL("charts/from-oci")+" tag 1.0.0 is not in the chart cache, and --offline forbids fetching it",
		"⚠ kubernetes: HelmRelease flux-system/from-index\n    ⚠ chart not rendered: HelmRelease flux-system/from-index: its chart from-index comes from HelmRepository flux-system/index ("+helmRepo.URL+
			"): the index of "+helmRepo.URL+"/ is not in the chart cache",
		"⚠ kubernetes: HelmRelease flux-system/broken\n",
		"10 checked: 3 passed, 7 with warnings, 0 failed")

	// Without the CRD, the gated object is not rendered.
	if err := os.Remove(filepath.Join(root, "kubernetes", "apps", "crds", "servicemonitor.yaml")); err != nil {
		t.Fatal(err)
	}
	if err := writeTestFile(filepath.Join(root, "kubernetes", "apps", "crds", "kustomization.yaml"), "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: []\n"); err != nil {
		t.Fatal(err)
	}
	out, _, _ = runSplit(t, "test", root, "--chart-cache", cache, "--offline")
	wantIn(t, "weir test without the CRD", out, "✔ kubernetes: HelmRelease flux-system/gated: 1 object\n")
}

// TestBuildHelmReleaseFetchesItsChart renders a HelmRelease whose chart
// has no local copy: fetched, then from the cache.
func TestBuildHelmReleaseFetchesItsChart(t *testing.T) {
	reg := testenv.NewRegistry(t, "", "")
	reg.PushChart(t, "charts/app", "1.0.0", testenv.WriteChart(t, "app", "1.0.0", nil))
	root := t.TempDir()
	files := "apiVersion: source.toolkit.fluxcd.io/v1\nkind: OCIRepository\nmetadata:\n  name: app\n  namespace: default\nspec:\n  interval: 1h\n  url: " + reg.URL("charts/app") + "\n  ref:\n    tag: 1.0.0\n" +
		"---\napiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nmetadata:\n  name: app\n  namespace: default\nspec:\n  interval: 1h\n  chartRef:\n    kind: OCIRepository\n    name: app\n"
	if err := writeTestFile(filepath.Join(root, "app", "hr.yaml"), files); err != nil {
		t.Fatal(err)
	}
	cache := t.TempDir()
	build := func(flags ...string) (string, string, error) {
		return runSplit(t, append([]string{"build", "hr", "app", "--path", filepath.Join(root, "app"), "--repo", root, "--charts", t.TempDir()}, flags...)...)
	}
	out, _, err := build("--chart-cache", cache)
	if err != nil || !strings.Contains(out, "kind: ConfigMap") || !strings.Contains(out, "greeting: hello") {
		t.Fatalf("build hr with the chart in a registry: %v\n%s", err, out)
	}
	reg.Stop()
	out, stderr, err := build("--chart-cache", cache)
	if err != nil || !strings.Contains(out, "greeting: hello") || !strings.Contains(stderr, "⚠ chart rendered from the cache: registry "+reg.Host+" could not be reached") {
		t.Errorf("build hr with the registry down: %v\n%s%s", err, out, stderr)
	}
	_, _, err = build("--chart-cache", t.TempDir(), "--offline")
	if err == nil || !strings.Contains(err.Error(), "is not in the chart cache, and --offline forbids fetching it; pass --chart with a local copy") {
		t.Errorf("build hr --offline with an empty cache: err = %v", err)
	}
}
