// Package repotest writes cluster repositories for tests and benchmarks
// of the offline commands.
package repotest

import (
	"fmt"
	"os"
	"path/filepath"
)

// HomeOps writes, under dir, a repository shaped like the large home-ops
// ones made from onedr0p's cluster-template: kubernetes/flux/cluster
// applies kubernetes/apps, one folder per namespace whose
// kustomization.yaml sets the namespace and adds the common component (a
// cluster-settings ConfigMap in each namespace), holding one folder per
// app: ks.yaml (a Flux Kustomization without metadata.namespace), and
// app/ with a kustomization.yaml, a HelmRelease, an OCIRepository and a
// values ConfigMap. With namespaces × apps apps: 5 YAML files an app, 2 a
// namespace, 6 more. Every app's Kustomization substitutes from
// cluster-settings. App a of namespace n is called app-n-a; Path gives
// its folder.
func HomeOps(dir string, namespaces, apps int) error {
	return HomeOpsWith(dir, namespaces, apps, Options{})
}

// Options change what HomeOpsWith writes.
type Options struct {
	// Chart gives, for app a of namespace n, the OCI repository of its
	// chart (oci://host/repo, tag 1.0.0); nil gives every app
	// oci://ghcr.io/charts/app.
	Chart func(n, a int) string
	// Insecure sets insecure: true on the OCIRepositories (a registry
	// served over plain HTTP).
	Insecure bool
}

// HomeOpsWith is HomeOps with the charts opts gives.
func HomeOpsWith(dir string, namespaces, apps int, opts Options) error {
	chart := opts.Chart
	if chart == nil {
		chart = func(int, int) string { return "oci://ghcr.io/charts/app" }
	}
	insecure := ""
	if opts.Insecure {
		insecure = "  insecure: true\n"
	}
	files := map[string]string{
		"kubernetes/flux/cluster/ks.yaml": `apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: cluster-apps
  namespace: flux-system
spec:
  interval: 30m
  path: ./kubernetes/apps
  prune: true
  sourceRef:
    kind: GitRepository
    name: flux-system
  postBuild:
    substituteFrom:
      - kind: ConfigMap
        name: cluster-settings
`,
		"kubernetes/flux/cluster/cluster-settings.yaml": `apiVersion: v1
kind: ConfigMap
metadata:
  name: cluster-settings
  namespace: flux-system
data:
  CLUSTER_DOMAIN: home.example
  TIMEZONE: Europe/Paris
`,
		"kubernetes/flux/meta/kustomization.yaml":            "resources: [repositories.yaml]\n",
		"kubernetes/components/common/kustomization.yaml":    "apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\nresources: [cluster-settings.yaml]\n",
		"kubernetes/components/common/cluster-settings.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cluster-settings\ndata:\n  CLUSTER_DOMAIN: home.example\n  TIMEZONE: Europe/Paris\n",
		"kubernetes/flux/meta/repositories.yaml":             "apiVersion: source.toolkit.fluxcd.io/v1\nkind: HelmRepository\nmetadata:\n  name: charts\n  namespace: flux-system\nspec:\n  interval: 1h\n  url: https://charts.example\n",
	}
	for n := 0; n < namespaces; n++ {
		ns := fmt.Sprintf("ns-%d", n)
		resources := "  - ./namespace.yaml\n"
		for a := 0; a < apps; a++ {
			app := fmt.Sprintf("app-%d-%d", n, a)
			resources += "  - ./" + app + "/ks.yaml\n"
			base := "kubernetes/apps/" + ns + "/" + app
			files[base+"/ks.yaml"] = fmt.Sprintf(`---
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: %[1]s
spec:
  targetNamespace: %[2]s
  path: ./%[3]s/app
  prune: true
  interval: 30m
  sourceRef:
    kind: GitRepository
    name: flux-system
    namespace: flux-system
  postBuild:
    substitute:
      APP: %[1]s
    substituteFrom:
      - kind: ConfigMap
        name: cluster-settings
`, app, ns, base)
			files[base+"/app/kustomization.yaml"] = "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - ./ocirepository.yaml\n  - ./helmrelease.yaml\n  - ./values.yaml\n"
			files[base+"/app/ocirepository.yaml"] = fmt.Sprintf("apiVersion: source.toolkit.fluxcd.io/v1\nkind: OCIRepository\nmetadata:\n  name: %s\nspec:\n  interval: 12h\n  url: %s\n%s  ref:\n    tag: 1.0.0\n", app, chart(n, a), insecure)
			files[base+"/app/helmrelease.yaml"] = fmt.Sprintf(`apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata:
  name: %[1]s
spec:
  interval: 1h
  chartRef:
    kind: OCIRepository
    name: %[1]s
  valuesFrom:
    - kind: ConfigMap
      name: %[1]s-values
  values:
    ingress:
      host: %[1]s.${CLUSTER_DOMAIN}
    env:
      TZ: ${TIMEZONE}
`, app)
			files[base+"/app/values.yaml"] = fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: %s-values\ndata:\n  values.yaml: |\n    replicas: 1\n", app)
		}
		files["kubernetes/apps/"+ns+"/kustomization.yaml"] = "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nnamespace: " + ns + "\ncomponents:\n  - ../../components/common\nresources:\n" + resources
		files["kubernetes/apps/"+ns+"/namespace.yaml"] = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: " + ns + "\n"
	}
	for p, text := range files {
		full := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(full, []byte(text), 0o644); err != nil {
			return err
		}
	}
	return os.MkdirAll(filepath.Join(dir, ".git"), 0o755)
}

// Name is the name of app a of namespace n.
func Name(n, a int) string { return fmt.Sprintf("app-%d-%d", n, a) }

// Path is the folder (relative to the root) of app a of namespace n.
func Path(n, a int) string { return fmt.Sprintf("kubernetes/apps/ns-%d/app-%d-%d/app", n, n, a) }

// KsFile is the file (relative to the root) declaring app a's
// Kustomization.
func KsFile(n, a int) string { return fmt.Sprintf("kubernetes/apps/ns-%d/app-%d-%d/ks.yaml", n, n, a) }
