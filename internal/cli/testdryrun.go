package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	helmv2 "github.com/fluxcd/helm-controller/api/v2"
	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/weirhq/weir/internal/depgraph"
	"github.com/weirhq/weir/internal/dryrun"
	"github.com/weirhq/weir/internal/install"
	"github.com/weirhq/weir/internal/kube"
	"github.com/weirhq/weir/internal/localcluster"
)

// dryRunTally counts the objects of `weir test --server` and `--local`.
type dryRunTally struct{ accepted, refused, skipped int }

// dryRunClusters dry-runs the objects of every built cluster, on the
// cluster of the kubeconfig (--server) or on a local control plane of its
// own per cluster (--local), adding what the API server refused and what
// it could not check to the cases; it prints a line on how it went.
func dryRunClusters(ctx context.Context, out, progress io.Writer, g *globalOptions, local bool, built []builtCluster, cases []*testCase) error {
	if !local && len(built) > 1 {
		names := make([]string, len(built))
		for i, bc := range built {
			names[i] = bc.Name
		}
		return fmt.Errorf("--server checks the objects of one cluster against the cluster of your kubeconfig: name it with --cluster (the repository has %s)", strings.Join(names, ", "))
	}
	for _, bc := range built {
		var t dryRunTally
		var err error
		where := "a local control plane"
		if local {
			t, err = dryRunLocally(ctx, progress, bc, cases)
		} else {
			where, err = dryRunServer(ctx, g, bc, cases, &t)
		}
		if err != nil {
			return fmt.Errorf("cluster %s: %w", bc.Name, err)
		}
		fmt.Fprintf(out, "%s: server dry run on %s: %d accepted, %d refused, %d not checked\n", bc.Name, where, t.accepted, t.refused, t.skipped)
	}
	return nil
}

// dryRunServer dry-runs the objects of bc on the cluster of the
// kubeconfig, and returns its address.
func dryRunServer(ctx context.Context, g *globalOptions, bc builtCluster, cases []*testCase, t *dryRunTally) (string, error) {
	cfg, err := g.restConfig()
	if err != nil {
		return "", err
	}
	c, err := objectClient(g)
	if err != nil {
		return "", err
	}
	*t, err = dryRunCluster(ctx, c, nil, bc, cases)
	return cfg.Host, err
}

// dryRunLocally starts a throwaway control plane, applies Flux's CRDs and
// the cluster's CRDs and Namespaces to it, dry-runs the rest and stops it,
// also when ctx ends (Ctrl-C).
func dryRunLocally(ctx context.Context, progress io.Writer, bc builtCluster, cases []*testCase) (dryRunTally, error) {
	fmt.Fprintf(progress, "starting a local control plane for the dry run…")
	start := time.Now()
	dir, err := os.MkdirTemp("", "weir-test-")
	if err != nil {
		return dryRunTally{}, fmt.Errorf("creating a folder for the local control plane: %w", err)
	}
	defer os.RemoveAll(dir)
	lc, err := localcluster.Start(ctx, localcluster.Options{StateDir: dir, NoNodes: true})
	if err != nil {
		fmt.Fprintln(progress)
		return dryRunTally{}, fmt.Errorf("starting a local control plane for the dry run: %w", err)
	}
	defer lc.Stop()
	connect := func() (client.Client, error) {
		c, err := client.New(lc.RESTConfig(), client.Options{Scheme: kube.Scheme()})
		if err != nil {
			return nil, fmt.Errorf("connecting to the local control plane: %w", err)
		}
		return c, nil
	}
	c, err := connect()
	if err == nil {
		// The Flux objects of the repository meet Flux's schemas.
		err = install.Install(ctx, c)
	}
	if err != nil {
		fmt.Fprintln(progress)
		return dryRunTally{}, err
	}
	fmt.Fprintf(progress, " ready in %s\n", time.Since(start).Round(100*time.Millisecond))
	return dryRunCluster(ctx, c, connect, bc, cases)
}

// dryRunCluster dry-runs the objects of each Kustomization of bc on c, the
// Kustomizations in the order of their dependsOn, and records the outcome
// on their cases. With establish (a throwaway cluster), the CRDs and
// Namespaces of every Kustomization are first applied for real, and the
// dry run goes through a client establish makes afterwards, which knows
// the new kinds.
func dryRunCluster(ctx context.Context, c client.Client, establish func() (client.Client, error), bc builtCluster, cases []*testCase) (dryRunTally, error) {
	var all []*unstructured.Unstructured
	for _, k := range bc.Kustomizations {
		all = append(all, k.Objects...)
	}
	var releases []*testCase // the HelmReleases of bc whose charts rendered
	for _, tc := range cases {
		if tc.Cluster == bc.Name && tc.Kind == helmv2.HelmReleaseKind && tc.rendered {
			releases = append(releases, tc)
			all = append(all, tc.chartCRDs...)
		}
	}
	d := &dryrun.Checker{Client: c, Defined: dryrun.DefinedBy(all)}
	order := kustomizationOrder(bc.Kustomizations)
	findCase := func(k builtKustomization) (*testCase, bool) {
		for _, tc := range cases {
			if tc.Cluster == bc.Name && tc.Kind == kustomizev1.KustomizationKind && tc.ID == k.Namespace+"/"+k.Name && tc.File == k.File {
				return tc, true
			}
		}
		return &testCase{}, false // not checked: nowhere to report
	}
	caseOf := func(k builtKustomization) *testCase {
		tc, _ := findCase(k)
		return tc
	}
	var t dryRunTally
	refused := map[string]bool{} // by Establish: its dry run would say it again
	if establish != nil {
		for _, k := range order {
			results, err := d.Establish(ctx, k.Objects)
			if err != nil {
				return t, err
			}
			tc := caseOf(k)
			for _, r := range results {
				if r.Err != nil {
					t.refused++
					refused[r.Object] = true
					tc.Failures = append(tc.Failures, fmt.Sprintf("the API server refuses %s: %v", r.Object, r.Err))
				}
			}
		}
		// The CRDs of the charts, as helm-controller installs them
		// before the release.
		for _, tc := range releases {
			results, err := d.Establish(ctx, tc.chartCRDs)
			if err != nil {
				return t, err
			}
			for _, r := range results {
				if r.Err != nil {
					t.refused++
					refused[r.Object] = true
					tc.Failures = append(tc.Failures, fmt.Sprintf("the API server refuses %s: %v", r.Object, r.Err))
				}
			}
		}
		var err error
		if d.Client, err = establish(); err != nil {
			return t, err
		}
	}
	for _, k := range order {
		tc, checked := findCase(k)
		if !checked {
			continue // not among the cases checked (weir test --since)
		}
		results, err := d.DryRun(ctx, k.Objects)
		if err != nil {
			return t, err
		}
		t.record(tc, results, refused)
	}
	// Then what the HelmReleases' charts install, in their namespaces.
	for _, tc := range releases {
		objects := make([]*unstructured.Unstructured, len(tc.chartObjects))
		for i, o := range tc.chartObjects {
			objects[i] = o.DeepCopy()
		}
		d.SetNamespace(objects, tc.releaseNamespace)
		results, err := d.DryRun(ctx, objects)
		if err != nil {
			return t, err
		}
		t.record(tc, results, refused)
	}
	return t, nil
}

// record counts the results of a dry run and reports them on tc; an
// object already refused when it was established is not reported twice.
func (t *dryRunTally) record(tc *testCase, results []dryrun.Result, refused map[string]bool) {
	skipped := map[string][]string{} // reason -> objects
	var reasons []string
	for _, r := range results {
		switch {
		case refused[r.Object]:
		case r.Err != nil:
			t.refused++
			tc.Failures = append(tc.Failures, fmt.Sprintf("the API server refuses %s: %v", r.Object, r.Err))
		case r.Skipped != "":
			t.skipped++
			if skipped[r.Skipped] == nil {
				reasons = append(reasons, r.Skipped)
			}
			skipped[r.Skipped] = append(skipped[r.Skipped], r.Object)
		default:
			t.accepted++
		}
	}
	for _, why := range reasons {
		tc.Warnings = append(tc.Warnings, fmt.Sprintf("not dry-run: %s: %s", listSome(skipped[why], 5), why))
	}
}

// kustomizationOrder returns the rendered Kustomizations, each after those
// it depends on; those on a cycle come last.
func kustomizationOrder(kss []builtKustomization) []builtKustomization {
	g := &depgraph.Graph{}
	byKey := map[depgraph.Key][]builtKustomization{}
	for _, k := range kss {
		if len(k.Objects) == 0 {
			continue
		}
		key := depgraph.Key{Kind: kustomizev1.KustomizationKind, Namespace: k.Namespace, Name: k.Name}
		byKey[key] = append(byKey[key], k)
		g.Set(key, k.dependsOn)
	}
	ordered, blocked := g.Order()
	var out []builtKustomization
	for _, key := range slices.Concat(ordered, blocked) {
		out = append(out, byKey[key]...)
	}
	return out
}

// listSome joins the first n names and says how many more there are.
func listSome(names []string, n int) string {
	if len(names) <= n {
		return strings.Join(names, ", ")
	}
	return strings.Join(names[:n], ", ") + fmt.Sprintf(" and %d more", len(names)-n)
}

// errDryRunFlags says that --server and --local exclude each other.
var errDryRunFlags = errors.New("--server and --local exclude each other: --server dry-runs on the cluster of your kubeconfig, --local on a throwaway one")
