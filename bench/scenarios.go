package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// The named scenarios of -scenarios. N is a positive number of apps.
//
//	example          the example repository (the seed's 7-level chain)
//	flat-ks-N        N Kustomizations from one GitRepository, each a Deployment,
//	                 a Service and a ConfigMap, wait: true (flux-benchmark's shape)
//	flat-hr-N        N HelmReleases of one chart from one OCIRepository
//	both-N           flat-ks-N and flat-hr-N in one cluster, one engine
//	mixed-home-ops   250 Kustomizations in nested ks.yaml files, dependsOn chains
//	                 7 deep, 250 HelmReleases, substituteFrom a Secret, components
//	restart-N        both-N converged, then the engine restarted: time until every
//	                 object is reconciled again, and the API writes it made
//	idle-N           both-N converged, then left alone for -idle-for: CPU and RSS
//	churn-N          both-N converged, then a commit changing 10% of the apps:
//	                 time until they are applied, and writes to the other 90%
//	after-N          both-N converged once, then idle-N, churn-N and restart-N
//	                 in turn on it (a third of their time at large N)
var scenarioNames = []string{"example", "flat-ks-N", "flat-hr-N", "both-N", "mixed-home-ops", "restart-N", "idle-N", "churn-N", "after-N"}

// parseScenario builds the named scenario, writing its repository under tmp.
func parseScenario(name, example, tmp string, shards int, idleFor time.Duration) (scenario, error) {
	size := func(prefix string) (int, bool) {
		if !strings.HasPrefix(name, prefix) {
			return 0, false
		}
		n, err := strconv.Atoi(strings.TrimPrefix(name, prefix))
		if err != nil || n <= 0 {
			return -1, true
		}
		return n, true
	}
	dir := filepath.Join(tmp, name)
	if name == "example" {
		return scenario{name: "example (seed chain)", repo: example, levels: 7}, nil
	}
	if name == "mixed-home-ops" {
		const namespaces, perNamespace = 25, 10
		if err := generateHomeOps(dir, namespaces, perNamespace); err != nil {
			return scenario{}, err
		}
		return scenario{name: name, repo: dir, levels: 7, helmReleases: namespaces * perNamespace,
			wantKs: namespaces*perNamespace + 2, homeOps: true}, nil
	}
	for _, p := range []string{"flat-ks-", "flat-hr-", "both-", "restart-", "idle-", "churn-", "after-"} {
		n, ok := size(p)
		if !ok {
			continue
		}
		if n < 0 {
			return scenario{}, fmt.Errorf("-scenarios: %q: the size after %q must be a positive number", name, p)
		}
		sc := scenario{name: name, repo: dir, levels: 1}
		switch p {
		case "flat-ks-":
			sc.apps, sc.shards, sc.wantKs = n, shards, n+2
			if err := generate(dir, n, shards); err != nil {
				return sc, err
			}
			if shards > 0 {
				sc.name = fmt.Sprintf("%s over %d shards", name, shards)
			}
			return sc, nil
		case "flat-hr-":
			sc.helmReleases, sc.wantKs = n, 2
			return sc, generateHelmReleases(dir, n)
		}
		sc.apps, sc.helmReleases, sc.wantKs = n, n, n+3
		switch p {
		case "restart-":
			sc.restart = true
		case "idle-":
			sc.idleFor = idleFor
		case "churn-":
			sc.churn = true
		case "after-":
			sc.idleFor, sc.churn, sc.restart = idleFor, true, true
		}
		if err := generate(dir, n, 0); err != nil {
			return sc, err
		}
		return sc, generateHelmReleases(dir, n)
	}
	return scenario{}, fmt.Errorf("-scenarios: unknown scenario %q (known: %s)", name, strings.Join(scenarioNames, ", "))
}

// generateHomeOps writes a repository shaped like the large public
// home-ops ones: a root Kustomization over kubernetes/apps, one folder per
// namespace whose kustomization.yaml sets the namespace and adds a shared
// component (the Namespace and a cluster-secrets Secret), and in it one
// folder per app whose ks.yaml holds the app's Kustomization (wait: true,
// postBuild substitution from cluster-secrets, a component of its own)
// over a HelmRelease and the app's own OCIRepository. The first 7 apps of
// each namespace form a dependsOn chain.
func generateHomeOps(dir string, namespaces, perNamespace int) error {
	write := func(path, text string) error { return writeFile(dir, path, text) }
	root := `apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: cluster-apps
  namespace: flux-system
spec:
  interval: 1h
  path: ./kubernetes/apps
  prune: true
  sourceRef: {kind: GitRepository, name: flux-system}
  postBuild:
    substituteFrom:
    - {kind: ConfigMap, name: weir-up, optional: true}
`
	if err := write("kubernetes/flux/cluster/ks.yaml", root); err != nil {
		return err
	}
	common := map[string]string{
		"kubernetes/components/common/kustomization.yaml": "apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\nresources:\n- ./namespace.yaml\n- ./cluster-secrets.yaml\n",
		"kubernetes/components/common/namespace.yaml":     "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: _ # replaced by the namespace of the kustomization.yaml\n",
		"kubernetes/components/common/cluster-secrets.yaml": "apiVersion: v1\nkind: Secret\nmetadata:\n  name: cluster-secrets\n" +
			"stringData:\n  SECRET_DOMAIN: home.example.invalid\n  SECRET_TIMEZONE: Europe/Paris\n",
		"kubernetes/components/app-settings/kustomization.yaml": "apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\nresources:\n- ./settings.yaml\n",
		"kubernetes/components/app-settings/settings.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ${APP}-settings\n" +
			"data:\n  url: https://${APP}.${SECRET_DOMAIN}\n  tz: ${SECRET_TIMEZONE}\n  region: ${REGION:=eu-west}\n",
	}
	for p, text := range common {
		if err := write(p, text); err != nil {
			return err
		}
	}
	var nsDirs []string
	for n := range namespaces {
		ns := fmt.Sprintf("ns-%02d", n)
		nsDirs = append(nsDirs, "- ./"+ns)
		var apps []string
		for a := range perNamespace {
			app := fmt.Sprintf("app-%d", a)
			apps = append(apps, "- ./"+app+"/ks.yaml")
			depends := ""
			if a > 0 && a < 7 {
				depends = fmt.Sprintf("  dependsOn:\n  - name: app-%d\n", a-1)
			}
			ks := fmt.Sprintf(`---
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: %[1]s
spec:
  interval: 1h
  path: ./kubernetes/apps/%[2]s/%[1]s/app
  components:
  - ../../../../components/app-settings
  prune: true
  wait: true
  timeout: 10m
  targetNamespace: %[2]s
  sourceRef: {kind: GitRepository, name: flux-system, namespace: flux-system}
%[3]s  postBuild:
    substitute:
      APP: %[1]s
      LOCAL_REGISTRY: ${LOCAL_REGISTRY:=ghcr.io}
    substituteFrom:
    - {kind: Secret, name: cluster-secrets}
`, app, ns, depends)
			hr := `apiVersion: source.toolkit.fluxcd.io/v1
kind: OCIRepository
metadata:
  name: ${APP}
spec:
  interval: 12h
  url: oci://${LOCAL_REGISTRY}/charts/app
  ref: {tag: 1.0.0}
  layerSelector: {mediaType: application/vnd.cncf.helm.chart.content.v1.tar+gzip, operation: copy}
---
apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata:
  name: ${APP}
spec:
  interval: 1h
  chartRef:
    kind: OCIRepository
    name: ${APP}
  values:
    config:
      URL: https://${APP}.${SECRET_DOMAIN}
      TZ: ${SECRET_TIMEZONE}
`
			files := map[string]string{
				"kubernetes/apps/" + ns + "/" + app + "/ks.yaml":                ks,
				"kubernetes/apps/" + ns + "/" + app + "/app/kustomization.yaml": "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n- ./helmrelease.yaml\n",
				"kubernetes/apps/" + ns + "/" + app + "/app/helmrelease.yaml":   hr,
			}
			for p, text := range files {
				if err := write(p, text); err != nil {
					return err
				}
			}
		}
		kz := "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nnamespace: " + ns +
			"\ncomponents:\n- ../../components/common\nresources:\n" + strings.Join(apps, "\n") + "\n"
		if err := write("kubernetes/apps/"+ns+"/kustomization.yaml", kz); err != nil {
			return err
		}
	}
	top := "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n" + strings.Join(nsDirs, "\n") + "\n"
	return write("kubernetes/apps/kustomization.yaml", top)
}

// generate writes a repository of n apps, each a Kustomization with
// wait: true over a Deployment, a Service and a ConfigMap. With shards > 0
// the apps are spread over that many shards (label sharding.fluxcd.io/key:
// shard<k>), each shard with its own GitRepository of the same repository,
// whose URL the harness hands over in the ConfigMap bench-git.
func generate(dir string, n, shards int) error {
	write := func(path, text string) error { return writeFile(dir, path, text) }
	root := "apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata:\n  name: apps\n  namespace: flux-system\nspec:\n  interval: 1h\n  path: ./apps\n  prune: true\n  sourceRef: {kind: GitRepository, name: flux-system}\n"
	if shards > 0 {
		root += "  postBuild:\n    substituteFrom:\n    - {kind: ConfigMap, name: bench-git}\n"
		var srcs []string
		for k := range shards {
			srcs = append(srcs, fmt.Sprintf("apiVersion: source.toolkit.fluxcd.io/v1\nkind: GitRepository\nmetadata:\n  name: flux-system-shard%d\n  namespace: flux-system\n  labels: {sharding.fluxcd.io/key: shard%d}\nspec:\n  interval: 1h\n  url: ${BENCH_GIT_URL}\n  ref: {branch: main}\n", k, k))
		}
		if err := write("apps/sources.yaml", strings.Join(srcs, "---\n")); err != nil {
			return err
		}
	}
	if err := write("kubernetes/flux/cluster/ks.yaml", root); err != nil {
		return err
	}
	for i := range n {
		app := "app-" + strconv.Itoa(i)
		labels, source := "", "flux-system"
		if shards > 0 {
			labels = fmt.Sprintf("  labels: {sharding.fluxcd.io/key: shard%d}\n", i%shards)
			source = fmt.Sprintf("flux-system-shard%d", i%shards)
		}
		ks := strings.NewReplacer("APP", app, "LABELS", labels, "SOURCE", source).Replace("apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata:\n  name: APP\n  namespace: flux-system\nLABELS" +
			"spec:\n  interval: 1h\n  path: ./src/APP\n  prune: true\n  wait: true\n  targetNamespace: default\n  sourceRef: {kind: GitRepository, name: SOURCE}\n")
		if err := write("apps/"+app+".yaml", ks); err != nil {
			return err
		}
		if err := write("src/"+app+"/all.yaml", appManifests(app, "v")); err != nil {
			return err
		}
	}
	return nil
}

// appManifests are the objects of one app of the flat variant; value is
// its ConfigMap's data, which the churn scenario changes.
func appManifests(app, value string) string {
	return strings.NewReplacer("APP", app, "VALUE", value).Replace("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: APP}\ndata: {k: VALUE}\n---\napiVersion: v1\nkind: Service\nmetadata: {name: APP}\nspec:\n  selector: {app: APP}\n  ports: [{port: 80}]\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: APP}\nspec:\n  replicas: 1\n  selector: {matchLabels: {app: APP}}\n  template:\n    metadata: {labels: {app: APP}}\n    spec: {containers: [{name: app, image: example.invalid/app:1}]}\n")
}

// writeFile writes text to path under dir, making its folders.
func writeFile(dir, path, text string) error {
	if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, path)), 0o755); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, path), []byte(text), 0o644)
}
