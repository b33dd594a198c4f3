package cli

import (
	"fmt"
	"path"
	"path/filepath"
	"strings"

	helmv2 "github.com/fluxcd/helm-controller/api/v2"
	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/weirhq/weir/internal/gitrev"
	"github.com/weirhq/weir/internal/repo"
	"github.com/weirhq/weir/internal/up"
)

// changedSince lists the files that differ between the revision since and
// the working tree of the repository at root, as slash paths relative to
// root ("../charts/app/values.yaml" for a file beside it).
func changedSince(root, since string) ([]string, error) {
	git, rel, err := gitrev.OpenAt(root)
	if err != nil {
		return nil, fmt.Errorf("--since: %w", err)
	}
	c, err := git.Resolve(since)
	if err != nil {
		return nil, fmt.Errorf("--since: %w", err)
	}
	files, err := git.Changed(c)
	if err != nil {
		return nil, fmt.Errorf("--since: %w", err)
	}
	out := make([]string, 0, len(files))
	for _, f := range files {
		p, err := filepath.Rel(filepath.FromSlash(rel), filepath.FromSlash(f))
		if err != nil {
			continue
		}
		out = append(out, filepath.ToSlash(p))
	}
	return out, nil
}

// affectedBy is the set (by refKey) of the cluster's Kustomizations and
// HelmReleases that the changed files (slash paths from the repository
// root) can alter, and everything that depends on them:
//   - a Kustomization whose render read a changed file (or listed the
//     folder a file was added to), whose own declaration changed, or
//     whose substituteFrom names a ConfigMap or Secret declared in a
//     changed file; one that failed before its render could say what it
//     read counts as altered;
//   - a HelmRelease applied by an altered Kustomization, or whose chart
//     is local (in the repository, or the charts folder) when a file of
//     that folder changed;
//   - then, transitively, whatever dependsOn an altered one.
func affectedBy(cluster *repo.Cluster, bc builtCluster, cases []*testCase, changed []string, chartDirs []string) map[string]bool {
	hit := map[string]bool{}
	declares := map[string]bool{} // "Kind/namespace/name" of ConfigMaps and Secrets in changed files
	changedSet := map[string]bool{}
	for _, f := range changed {
		changedSet[path.Clean(f)] = true
	}
	if cluster != nil {
		for _, o := range cluster.Objects {
			if changedSet[o.File] && (o.GetKind() == "ConfigMap" || o.GetKind() == "Secret") {
				declares[o.GetKind()+"/"+orDefault(o.Namespace, o.GetNamespace())+"/"+o.GetName()] = true
			}
		}
	}
	declObject := map[string]map[string]any{} // Kustomization refKey -> its object as declared
	if cluster != nil {
		for _, o := range cluster.Objects {
			if o.GetKind() == kustomizev1.KustomizationKind {
				declObject[o.File+"|"+o.GetName()] = o.Object
			}
		}
	}
	localChart := false
	for _, f := range changed {
		for _, d := range chartDirs {
			if d != "" && (f == d || strings.HasPrefix(f, d+"/")) {
				localChart = true
			}
		}
	}
	for _, k := range bc.Kustomizations {
		key := refKey(kustomizev1.KustomizationKind, k.Namespace, k.Name)
		touched := changedSet[k.File] || (k.Error != "" && len(k.reads.Paths) == 0)
		for f := range changedSet {
			touched = touched || k.reads.Touches(f)
		}
		if obj := declObject[k.File+"|"+k.Name]; obj != nil && !touched {
			list, _, _ := unstructured.NestedSlice(obj, "spec", "postBuild", "substituteFrom")
			for _, e := range list {
				m, _ := e.(map[string]any)
				kind, _ := m["kind"].(string)
				name, _ := m["name"].(string)
				touched = touched || declares[kind+"/"+k.Namespace+"/"+name]
			}
		}
		if !touched {
			continue
		}
		hit[key] = true
		for _, o := range k.Objects {
			if o.GetKind() == helmv2.HelmReleaseKind {
				hit[refKey(helmv2.HelmReleaseKind, o.GetNamespace(), o.GetName())] = true
			}
		}
	}
	if localChart {
		for _, tc := range cases {
			if tc.Kind == helmv2.HelmReleaseKind {
				ns, name, _ := strings.Cut(tc.ID, "/")
				hit[refKey(tc.Kind, ns, name)] = true
			}
		}
	}
	// Dependents, until nothing more is added.
	for grew := true; grew; {
		grew = false
		for _, tc := range cases {
			ns, name, _ := strings.Cut(tc.ID, "/")
			key := refKey(tc.Kind, ns, name)
			if hit[key] {
				continue
			}
			for _, d := range tc.dependsOn {
				if hit[d] {
					hit[key], grew = true, true
					break
				}
			}
		}
	}
	return hit
}

// onlyAffected keeps the cases of bc that the changed files can alter, or
// that depend on one that can (see affectedBy).
func onlyAffected(r *repo.Repository, bc builtCluster, cases []*testCase, changed []string, charts string) []*testCase {
	var cluster *repo.Cluster
	for _, c := range r.Clusters() {
		if c.Name == bc.Name && c.Path == bc.Path {
			cluster = c
		}
	}
	if charts == "" {
		charts = up.FindCharts(r.Root())
	}
	var chartDirs []string
	if charts != "" {
		if rel, err := filepath.Rel(r.Root(), charts); err == nil {
			chartDirs = append(chartDirs, filepath.ToSlash(rel))
		}
	}
	for _, k := range bc.Kustomizations {
		for _, o := range k.Objects {
			if o.GetKind() != helmv2.HelmReleaseKind {
				continue
			}
			kind, _, _ := unstructured.NestedString(o.Object, "spec", "chart", "spec", "sourceRef", "kind")
			chart, _, _ := unstructured.NestedString(o.Object, "spec", "chart", "spec", "chart")
			if kind == "GitRepository" && chart != "" {
				chartDirs = append(chartDirs, path.Clean(strings.TrimPrefix(chart, "./")))
			}
		}
	}
	hit := affectedBy(cluster, bc, cases, changed, chartDirs)
	var out []*testCase
	for _, tc := range cases {
		ns, name, _ := strings.Cut(tc.ID, "/")
		if hit[refKey(tc.Kind, ns, name)] {
			out = append(out, tc)
		}
	}
	return out
}
