package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"helm.sh/helm/v4/pkg/action"
	chart "helm.sh/helm/v4/pkg/chart/v2"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	"helm.sh/helm/v4/pkg/kube"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/weirhq/weir/internal/helm"
)

// helmFloor installs n releases of the chart with the Helm SDK, with as
// many workers as the engines use, each waiting until its objects are
// ready as helm-controller's installs do: the least n HelmReleases can
// cost on this control plane, with no controller in between.
func helmFloor(ctx context.Context, cfg *rest.Config, c client.Client, ch *chart.Chart, n int) (time.Duration, error) {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "bench-helm-floor"}}
	if err := c.Create(ctx, ns); err != nil {
		return 0, fmt.Errorf("creating the floor namespace: %w", err)
	}
	// One connection for every install, as the controllers share
	// discovery and validation between releases.
	sdk := helm.NewSDK(cfg)
	start := time.Now()
	if err := installAll(ctx, sdk, ns.Name, "floor-", 0, n, ch); err != nil {
		return 0, err
	}
	return time.Since(start), nil
}

// installAll installs the releases prefix<from> … prefix<from+n-1> of ch
// in ns with as many workers as the engines use, and returns the first
// failure. A worker that fails keeps taking names without installing
// them, so that the names are always all handed out.
func installAll(ctx context.Context, sdk *helm.SDK, ns, prefix string, from, n int, ch *chart.Chart) error {
	names := make(chan string)
	errs := make(chan error, workers)
	var wg sync.WaitGroup
	for range min(workers, n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var failed error
			for name := range names {
				if failed == nil {
					failed = helmInstall(ctx, sdk, ns, name, ch)
				}
			}
			errs <- failed
		}()
	}
	for i := range n {
		names <- prefix + strconv.Itoa(from+i)
	}
	close(names)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// helmInstall installs one release of ch as weir's and Flux's controllers
// do: server-side apply, waiting with kstatus.
func helmInstall(ctx context.Context, sdk *helm.SDK, ns, name string, ch *chart.Chart) error {
	ac, err := sdk.ActionConfig(ns, ns)
	if err != nil {
		return err
	}
	a := action.NewInstall(ac)
	a.ReleaseName, a.Namespace = name, ns
	a.Timeout = 5 * time.Minute
	a.WaitStrategy = kube.StatusWatcherStrategy
	a.ServerSideApply, a.ForceConflicts = true, true
	if _, err := a.RunWithContext(ctx, ch, map[string]any{}); err != nil {
		return fmt.Errorf("installing floor release %s: %w", name, err)
	}
	return nil
}

// loadAppChart loads the example's app chart, which the HelmRelease
// variants install.
func loadAppChart(chartsDir string) (*chart.Chart, error) {
	ch, err := loader.Load(filepath.Join(chartsDir, "app"))
	if err != nil {
		return nil, fmt.Errorf("loading the app chart from %s: %w", chartsDir, err)
	}
	return ch, nil
}

// generateHelmReleases writes n independent HelmReleases (rel-0 ...) of
// the app chart, from one OCIRepository, applied by one Kustomization
// (helm-apps, over ./helm) that substitutes the local registry's address,
// as the example's are. It leaves the rest of dir alone, so that it can
// sit beside the flat apps of generate.
func generateHelmReleases(dir string, n int) error {
	write := func(path, text string) error { return writeFile(dir, path, text) }
	root := `apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: helm-apps
  namespace: flux-system
spec:
  interval: 1h
  path: ./helm
  prune: true
  sourceRef: {kind: GitRepository, name: flux-system}
  postBuild:
    substituteFrom:
    - {kind: ConfigMap, name: weir-up, optional: true}
`
	if err := write("kubernetes/flux/cluster/helm.yaml", root); err != nil {
		return err
	}
	src := `apiVersion: source.toolkit.fluxcd.io/v1
kind: OCIRepository
metadata:
  name: app
  namespace: flux-system
spec:
  interval: 12h
  url: oci://${LOCAL_REGISTRY:=ghcr.io}/charts/app
  ref: {tag: 1.0.0}
  layerSelector: {mediaType: application/vnd.cncf.helm.chart.content.v1.tar+gzip, operation: copy}
`
	if err := write("helm/ocirepository.yaml", src); err != nil {
		return err
	}
	for i := range n {
		name := "rel-" + strconv.Itoa(i)
		if err := write("helm/"+name+".yaml", helmReleaseManifest(name, "")); err != nil {
			return err
		}
	}
	return nil
}

// helmReleaseManifest is one HelmRelease of generateHelmReleases; a
// revision other than "" is added to its values, as a change the churn
// scenario commits.
func helmReleaseManifest(name, revision string) string {
	values := "    config: {name: " + name + "}\n"
	if revision != "" {
		values = "    config: {name: " + name + ", revision: \"" + revision + "\"}\n"
	}
	return strings.ReplaceAll(`apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata:
  name: APP
  namespace: default
spec:
  interval: 1h
  chartRef: {kind: OCIRepository, name: app, namespace: flux-system}
  values:
`, "APP", name) + values
}
