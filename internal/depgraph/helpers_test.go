package depgraph

// ks and hr name a Kustomization and a HelmRelease; ks lives in flux-system,
// where the seed keeps all of its Kustomizations.
func ks(name string) Key { return Key{Kind: "Kustomization", Namespace: "flux-system", Name: name} }

func hr(namespace, name string) Key {
	return Key{Kind: "HelmRelease", Namespace: namespace, Name: name}
}

// edge is one Set call of a test graph.
type edge struct {
	node Key
	deps []Key
}

func build(edges ...edge) *Graph {
	var g Graph
	for _, e := range edges {
		g.Set(e.node, e.deps)
	}
	return &g
}

func on(node Key, deps ...Key) edge { return edge{node: node, deps: deps} }
