package repo

import (
	"path"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// Clusters returns the clusters of the repository, one per sync root,
// sorted by path, each walked (see the package documentation). A
// repository with no sync root is one cluster named "repository" whose
// sync root is the repository root.
func (r *Repository) Clusters() []*Cluster {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.walked {
		r.walked = true
		if r.useWalkRecord() {
			return r.clusters
		}
		p := r.startPrefetch()
		p.scan(".", 0)
		r.clusters = r.syncRoots()
		for _, c := range r.clusters {
			p.fluxPath(c.Path, c.Source)
		}
		for _, c := range r.clusters {
			r.walk(c)
		}
		p.wait()
	}
	return r.clusters
}

// syncRoots finds the sync roots: the spec.path of each flux-system
// Kustomization kept in a flux-system folder whose path holds its own
// file (as flux bootstrap writes gotk-sync.yaml), each FluxInstance's
// spec.sync.path there, and weir up's conventional folders.
func (r *Repository) syncRoots() []*Cluster {
	roots := map[string]string{} // path -> source name
	var scan func(dir string, depth int)
	scan = func(dir string, depth int) {
		for _, e := range r.readDir(dir) {
			if !e.IsDir() || strings.HasPrefix(e.Name(), ".") {
				continue
			}
			p := path.Join(dir, e.Name())
			if e.Name() == "flux-system" {
				r.bootstrapRoots(p, roots)
			}
			if depth < 6 {
				scan(p, depth+1)
			}
		}
	}
	scan(".", 0)
	for _, p := range conventionalRoots(r) {
		if _, ok := roots[p]; !ok {
			roots[p] = "flux-system"
		}
	}
	if len(roots) == 0 {
		roots["."] = "flux-system"
	}
	var out []*Cluster
	for p, src := range roots {
		out = append(out, &Cluster{Name: clusterName(p), Path: p, Source: src})
	}
	slices.SortFunc(out, func(a, b *Cluster) int { return strings.Compare(a.Path, b.Path) })
	return out
}

// bootstrapRoots adds the sync roots declared in a flux-system folder.
func (r *Repository) bootstrapRoots(dir string, roots map[string]string) {
	for _, e := range r.readDir(dir) {
		p := path.Join(dir, e.Name())
		if ext := path.Ext(p); e.IsDir() || (ext != ".yaml" && ext != ".yml") {
			continue
		}
		for _, u := range r.objects(p) {
			switch {
			case isFluxKustomization(u):
				sp, _, _ := unstructured.NestedString(u.Object, "spec", "path")
				src, _, _ := unstructured.NestedString(u.Object, "spec", "sourceRef", "name")
				sp = path.Clean(strings.TrimPrefix(sp, "/"))
				if sp == "." || strings.HasPrefix(p, sp+"/") {
					roots[sp] = src
				}
			case u.GetKind() == "FluxInstance":
				sp, _, _ := unstructured.NestedString(u.Object, "spec", "sync", "path")
				if sp != "" && !strings.Contains(sp, "${") {
					roots[path.Clean(strings.TrimPrefix(sp, "/"))] = u.GetNamespace()
				}
			}
		}
	}
	for sp, src := range roots {
		if src == "" {
			roots[sp] = "flux-system"
		}
	}
}

// conventionalRoots are the sync roots weir up finds by convention:
// kubernetes/flux/cluster, and each folder of clusters/ and
// kubernetes/clusters/.
func conventionalRoots(r *Repository) []string {
	var out []string
	if r.isDir("kubernetes/flux/cluster") {
		out = append(out, "kubernetes/flux/cluster")
	}
	for _, parent := range []string{"clusters", "kubernetes/clusters"} {
		for _, e := range r.readDir(parent) {
			if e.IsDir() && !strings.HasPrefix(e.Name(), ".") {
				out = append(out, path.Join(parent, e.Name()))
			}
		}
	}
	return out
}

// ClusterOf returns the cluster whose sync root holds the slash path p,
// the deepest one; nil when none does.
func (r *Repository) ClusterOf(p string) *Cluster {
	var best *Cluster
	for _, c := range r.Clusters() {
		holds := c.Path == "." || p == c.Path || strings.HasPrefix(p, c.Path+"/")
		if holds && (best == nil || len(c.Path) > len(best.Path)) {
			best = c
		}
	}
	return best
}
