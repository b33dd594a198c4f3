package depgraph

import (
	"fmt"
	"slices"
	"testing"
)

func TestCycle(t *testing.T) {
	a, b, c, d, e := ks("a"), ks("b"), ks("c"), ks("d"), ks("e")
	triangle := []edge{on(a, b), on(b, c), on(c, a)}

	tests := []struct {
		name  string
		graph []edge
		node  Key
		want  []Key
	}{
		{"a self-dependency is a cycle", []edge{on(a, a)}, a, []Key{a, a}},
		{"a 3-cycle from its first member", triangle, a, []Key{a, b, c, a}},
		{"a 3-cycle from its second member", triangle, b, []Key{b, c, a, b}},
		{"a 3-cycle from its third member", triangle, c, []Key{c, a, b, c}},
		{
			name:  "a node behind a cycle is not on it",
			graph: append([]edge{on(d, a)}, triangle...),
			node:  d,
			want:  nil,
		},
		{
			name:  "a chain is no cycle",
			graph: []edge{on(a, b), on(b, c), on(c)},
			node:  a,
			want:  nil,
		},
		{
			name:  "a diamond is no cycle",
			graph: []edge{on(a, b, c), on(b, d), on(c, d), on(d)},
			node:  a,
			want:  nil,
		},
		{
			name:  "a missing dependency is no cycle",
			graph: []edge{on(a, b)},
			node:  a,
			want:  nil,
		},
		{
			name:  "a node not in the graph has no cycle",
			graph: triangle,
			node:  e,
			want:  nil,
		},
		{
			name:  "dependencies are followed in the order given",
			graph: []edge{on(a, c, b), on(b, a), on(c, d), on(d, a)},
			node:  a,
			want:  []Key{a, c, d, a},
		},
		{
			name:  "a dead end is passed over",
			graph: []edge{on(a, e, b), on(e, d), on(d), on(b, a)},
			node:  a,
			want:  []Key{a, b, a},
		},
		{
			name:  "a cycle elsewhere on the path is not the node's",
			graph: []edge{on(a, b), on(b, c), on(c, b)},
			node:  a,
			want:  nil,
		},
		{
			name:  "a cycle across kinds and namespaces",
			graph: []edge{on(a, hr("kube-system", "cilium")), on(hr("kube-system", "cilium"), a)},
			node:  hr("kube-system", "cilium"),
			want:  []Key{hr("kube-system", "cilium"), a, hr("kube-system", "cilium")},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := build(tt.graph...)
			if got := g.Cycle(tt.node); !slices.Equal(got, tt.want) {
				t.Errorf("Cycle(%s) = %v, want %v", tt.node.Name, got, tt.want)
			}
		})
	}
}

func TestCycleFollowsChanges(t *testing.T) {
	a, b := ks("a"), ks("b")
	g := build(on(a, b), on(b, a))
	if g.Cycle(a) == nil {
		t.Fatal("no cycle reported for a -> b -> a")
	}
	g.Set(b, nil)
	if got := g.Cycle(a); got != nil {
		t.Errorf("Cycle(a) = %v after b dropped its dependency, want nil", got)
	}
	g.Set(b, []Key{a})
	g.Remove(b)
	if got := g.Cycle(a); got != nil {
		t.Errorf("Cycle(a) = %v after b was removed, want nil", got)
	}
}

func TestFormatCycle(t *testing.T) {
	tests := []struct {
		name  string
		cycle []Key
		want  string
	}{
		{"empty", nil, ""},
		{"self-dependency", []Key{ks("a"), ks("a")}, "a -> a"},
		{"one namespace: names only", []Key{ks("a"), ks("b"), ks("c"), ks("a")}, "a -> b -> c -> a"},
		{
			name: "across namespaces: namespace/name",
			cycle: []Key{
				{Kind: "Kustomization", Namespace: "apps", Name: "a"},
				{Kind: "Kustomization", Namespace: "infra", Name: "b"},
				{Kind: "Kustomization", Namespace: "apps", Name: "a"},
			},
			want: "apps/a -> infra/b -> apps/a",
		},
		{
			name: "across kinds: Kind/name",
			cycle: []Key{
				hr("flux-system", "cilium"), ks("coredns"), hr("flux-system", "cilium"),
			},
			want: "HelmRelease/cilium -> Kustomization/coredns -> HelmRelease/cilium",
		},
		{
			name: "across kinds and namespaces: Kind/namespace/name",
			cycle: []Key{
				hr("kube-system", "cilium"), ks("coredns"), hr("kube-system", "cilium"),
			},
			want: "HelmRelease/kube-system/cilium -> Kustomization/flux-system/coredns -> HelmRelease/kube-system/cilium",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := FormatCycle(tt.cycle); got != tt.want {
				t.Errorf("FormatCycle() = %q, want %q", got, tt.want)
			}
		})
	}
}

// BenchmarkCycle asks for the cycle of one node in a 2,000-node graph where
// every node depends on up to three earlier ones: "acyclic" searches the
// whole graph and finds nothing, "ring" closes the graph into one cycle
// through every node, "self" is a node depending on itself in front of it.
func BenchmarkCycle(b *testing.B) {
	const n = 2000
	key := func(i int) Key { return ks(fmt.Sprintf("app-%04d", i)) }
	layered := func() *Graph {
		var g Graph
		for i := range n {
			var deps []Key
			for _, j := range []int{i - 1, i / 2, i - 10} {
				if j >= 0 && j < i {
					deps = append(deps, key(j))
				}
			}
			g.Set(key(i), deps)
		}
		return &g
	}

	b.Run("acyclic", func(b *testing.B) {
		g := layered()
		for b.Loop() {
			if g.Cycle(key(n-1)) != nil {
				b.Fatal("cycle in an acyclic graph")
			}
		}
	})
	b.Run("ring", func(b *testing.B) {
		g := layered()
		g.Set(key(0), []Key{key(n - 1)})
		for b.Loop() {
			if g.Cycle(key(n/2)) == nil {
				b.Fatal("no cycle in a ring")
			}
		}
	})
	b.Run("self", func(b *testing.B) {
		g := layered()
		g.Set(key(n-1), []Key{key(n - 1), key(n - 2)})
		for b.Loop() {
			if len(g.Cycle(key(n-1))) != 2 {
				b.Fatal("self-dependency not found")
			}
		}
	})
}
