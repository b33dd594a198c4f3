package main

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	chart "helm.sh/helm/v4/pkg/chart/v2"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/weirhq/weir/internal/helm"
)

// chainLevels reads the example's app Kustomizations (the ks.yaml files
// under kubernetes/apps, one HelmRelease each) and returns how many sit
// on each level of their dependsOn graph: level 1 depends on none of
// them, level k+1 on at least one of level k.
func chainLevels(example string) ([]int, error) {
	deps := map[string][]string{}
	err := filepath.WalkDir(filepath.Join(example, "kubernetes", "apps"), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Name() != "ks.yaml" {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		var ks kustomizev1.Kustomization
		if err := yaml.Unmarshal(b, &ks); err != nil {
			return fmt.Errorf("reading %s: %w", p, err)
		}
		for _, d := range ks.Spec.DependsOn {
			deps[ks.Name] = append(deps[ks.Name], d.Name)
		}
		if deps[ks.Name] == nil {
			deps[ks.Name] = []string{}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading the example's Kustomizations: %w", err)
	}
	level := map[string]int{}
	var depth func(name string, seen map[string]bool) (int, error)
	depth = func(name string, seen map[string]bool) (int, error) {
		if l, ok := level[name]; ok {
			return l, nil
		}
		if seen[name] {
			return 0, fmt.Errorf("the example's dependsOn form a cycle through %s", name)
		}
		seen[name] = true
		l := 1
		for _, d := range deps[name] {
			if _, ok := deps[d]; !ok {
				continue // not an app of the example (a root Kustomization)
			}
			dl, err := depth(d, seen)
			if err != nil {
				return 0, err
			}
			l = max(l, dl+1)
		}
		level[name] = l
		return l, nil
	}
	var perLevel []int
	for name := range deps {
		l, err := depth(name, map[string]bool{})
		if err != nil {
			return nil, err
		}
		for len(perLevel) < l {
			perLevel = append(perLevel, 0)
		}
		perLevel[l-1]++
	}
	return perLevel, nil
}

// helmChainFloor installs, level after level, as many releases of the
// chart as the chain has HelmReleases on that level, those of a level at
// once with as many workers as the engines use, each waiting until its
// objects are ready: the least the chain can cost on this control plane
// with the Helm SDK and no controller in between. One SDK connection
// serves every install, as the controllers keep theirs.
func helmChainFloor(ctx context.Context, cfg *rest.Config, c client.Client, ch *chart.Chart, perLevel []int) (time.Duration, error) {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "bench-helm-chain-floor"}}
	if err := c.Create(ctx, ns); err != nil {
		return 0, fmt.Errorf("creating the chain floor's namespace: %w", err)
	}
	sdk := helm.NewSDK(cfg)
	start := time.Now()
	n := 0
	for _, k := range perLevel {
		if err := installAll(ctx, sdk, ns.Name, "chain-", n, k, ch); err != nil {
			return 0, err
		}
		n += k
	}
	return time.Since(start), nil
}
