package mcp

import (
	"context"
	"slices"

	helmv2 "github.com/fluxcd/helm-controller/api/v2"
	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"github.com/fluxcd/pkg/apis/meta"

	"github.com/weirhq/weir/internal/control"
	"github.com/weirhq/weir/internal/dependency"
	"github.com/weirhq/weir/internal/depgraph"
)

type graphInput struct {
	Namespace string `json:"namespace,omitempty" jsonschema:"the namespace; empty: every namespace"`
}

type graphNode struct {
	resource
	// DependsOn are the nodes this one waits for, as Kind/namespace/name.
	DependsOn []string `json:"depends_on"`
	// Level is the node's depth: 0 for a node that waits for nothing.
	Level int `json:"level"`
}

type graphOutput struct {
	Nodes []graphNode `json:"nodes"`
	// Missing are dependencies that name no object.
	Missing []string `json:"missing"`
	// Cycles are the dependency cycles, as a -> b -> a.
	Cycles []string `json:"cycles"`
}

func getDependencyGraph(s *Server) {
	addTool(s, tool{
		Name: "get_dependency_graph",
		Description: "Get the dependsOn graph of Kustomizations and HelmReleases: each with its Ready state and what it " +
			"depends on, plus the dependencies that name no object and the dependency cycles. Use it when an object waits " +
			"for a dependency ('dependency not ready') to find the first one in the chain that fails.",
	}, func(ctx context.Context, in graphInput) (any, error) {
		g := &depgraph.Graph{}
		nodes := map[depgraph.Key]*graphNode{}
		for _, kind := range dependency.Kinds {
			k, _ := control.LookupKind(kind)
			objs, err := control.List(ctx, s.opts.Client, k, in.Namespace)
			if err != nil {
				return nil, err
			}
			for _, obj := range objs {
				var deps []meta.DependencyReference
				switch o := obj.(type) {
				case *kustomizev1.Kustomization:
					deps = o.Spec.DependsOn
				case *helmv2.HelmRelease:
					deps = o.Spec.DependsOn
				}
				key := depgraph.Key{Kind: kind, Namespace: obj.GetNamespace(), Name: obj.GetName()}
				keys := dependency.Keys(ctx, s.opts.Client, kind, obj.GetNamespace(), deps)
				g.Set(key, keys)
				n := &graphNode{resource: summarize(k, obj), DependsOn: []string{}}
				for _, d := range keys {
					n.DependsOn = append(n.DependsOn, d.String())
				}
				nodes[key] = n
			}
		}
		out := graphOutput{Nodes: []graphNode{}, Missing: []string{}, Cycles: []string{}}
		levels := g.Levels()
		seen := map[string]bool{}
		for key, n := range nodes {
			n.Level = levels[key]
			out.Nodes = append(out.Nodes, *n)
			for _, m := range g.Missing(key) {
				if _, known := nodes[m]; !known && !seen[m.String()] {
					seen[m.String()] = true
					out.Missing = append(out.Missing, m.String())
				}
			}
			if c := g.Cycle(key); c != nil {
				if f := depgraph.FormatCycle(c); !slices.Contains(out.Cycles, f) {
					out.Cycles = append(out.Cycles, f)
				}
			}
		}
		slices.SortFunc(out.Nodes, func(a, b graphNode) int {
			if a.Level != b.Level {
				return a.Level - b.Level
			}
			return compareResources(a.resource, b.resource)
		})
		slices.Sort(out.Missing)
		slices.Sort(out.Cycles)
		return out, nil
	})
}

func compareResources(a, b resource) int {
	for _, p := range [][2]string{{a.Kind, b.Kind}, {a.Namespace, b.Namespace}, {a.Name, b.Name}} {
		if p[0] != p[1] {
			if p[0] < p[1] {
				return -1
			}
			return 1
		}
	}
	return 0
}
