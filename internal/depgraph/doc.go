// Package depgraph is weir's in-memory index of dependsOn edges between
// Kustomizations and HelmReleases across a cluster.
//
// Both kinds share one Graph, and every node is named by a Key that includes
// its Kind, so a HelmRelease may depend on a Kustomization and the other way
// round. The package is pure: it never reads the cluster. The reconcilers keep
// it current from their informers (Set on every add or update, Remove on
// delete) and ask it three questions:
//
//   - Dependents: who to queue the moment an object turns Ready, so that a
//     dependent starts at once instead of after a requeue period;
//   - Cycle and FormatCycle: whether an object can never become ready because
//     it is on a dependency cycle, spelled out for its Stalled condition as
//     "a -> b -> c -> a";
//   - Missing: which dependencies name objects that the index does not hold.
//
// Order and Levels serve `weir plan` and the dashboard: an order in which
// dependencies come first, and a depth per node for drawing the graph left to
// right.
//
// A typical use from a reconciler:
//
//	key := depgraph.Key{Kind: "Kustomization", Namespace: ks.Namespace, Name: ks.Name}
//	graph.Set(key, deps)
//	if cycle := graph.Cycle(key); cycle != nil {
//		// Stalled: "dependency cycle: " + depgraph.FormatCycle(cycle)
//	}
//	// ... once Ready:
//	for _, d := range graph.Dependents(key) {
//		queue.Add(d)
//	}
//
// A Graph is safe for use by many goroutines at once.
package depgraph
