package depgraph_test

import (
	"fmt"

	"github.com/weirhq/weir/internal/depgraph"
)

// A reconciler records each object's dependsOn, reports cycles in its
// Stalled condition, and queues dependents as soon as an object is Ready.
func Example() {
	ks := func(name string) depgraph.Key {
		return depgraph.Key{Kind: "Kustomization", Namespace: "flux-system", Name: name}
	}
	var graph depgraph.Graph
	graph.Set(ks("cert-manager"), []depgraph.Key{ks("flux-instance")})
	graph.Set(ks("envoy-gateway"), []depgraph.Key{ks("cert-manager")})
	graph.Set(ks("echo"), []depgraph.Key{ks("envoy-gateway")})

	// cert-manager turned Ready: queue what waits for it.
	fmt.Println("queue:", graph.Dependents(ks("cert-manager")))
	// flux-instance has not been seen yet.
	fmt.Println("missing:", graph.Missing(ks("cert-manager")))

	// Someone makes flux-instance wait for echo.
	graph.Set(ks("flux-instance"), []depgraph.Key{ks("echo")})
	if cycle := graph.Cycle(ks("cert-manager")); cycle != nil {
		fmt.Println("dependency cycle:", depgraph.FormatCycle(cycle))
	}
	// Output:
	// queue: [Kustomization/flux-system/envoy-gateway]
	// missing: [Kustomization/flux-system/flux-instance]
	// dependency cycle: cert-manager -> flux-instance -> echo -> envoy-gateway -> cert-manager
}

// Order and Levels lay the graph out for `weir plan` and the dashboard.
func ExampleGraph_Order() {
	ks := func(name string) depgraph.Key {
		return depgraph.Key{Kind: "Kustomization", Namespace: "flux-system", Name: name}
	}
	var graph depgraph.Graph
	graph.Set(ks("cilium"), nil)
	graph.Set(ks("coredns"), []depgraph.Key{ks("cilium")})
	graph.Set(ks("spegel"), []depgraph.Key{ks("coredns"), ks("spegel")})
	graph.Set(ks("echo"), []depgraph.Key{ks("spegel")})

	ordered, blocked := graph.Order()
	levels := graph.Levels()
	for _, k := range ordered {
		fmt.Println(levels[k], k.Name)
	}
	for _, k := range blocked {
		fmt.Println(levels[k], k.Name, "(blocked)")
	}
	// Output:
	// 0 cilium
	// 1 coredns
	// -1 echo (blocked)
	// -1 spegel (blocked)
}
