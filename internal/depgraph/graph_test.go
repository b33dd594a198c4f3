package depgraph

import (
	"fmt"
	"slices"
	"sync"
	"testing"
)

func TestKeyString(t *testing.T) {
	if got, want := ks("apps").String(), "Kustomization/flux-system/apps"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	if got, want := hr("kube-system", "cilium").String(), "HelmRelease/kube-system/cilium"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}

func TestIndex(t *testing.T) {
	a, b, c, d := ks("a"), ks("b"), ks("c"), ks("d")
	type step struct {
		set    *edge // nil: remove
		remove Key
	}
	set := func(node Key, deps ...Key) step { e := on(node, deps...); return step{set: &e} }
	remove := func(node Key) step { return step{remove: node} }

	tests := []struct {
		name           string
		steps          []step
		node           Key
		wantDependsOn  []Key
		wantDependents []Key
		wantMissing    []Key
	}{
		{
			name:          "dependencies keep the order given",
			steps:         []step{set(a, c, b, d)},
			node:          a,
			wantDependsOn: []Key{c, b, d},
			wantMissing:   []Key{c, b, d},
		},
		{
			name:           "dependents are sorted",
			steps:          []step{set(d, a), set(b, a), set(c, a)},
			node:           a,
			wantDependents: []Key{b, c, d},
		},
		{
			name:           "a HelmRelease may depend on a Kustomization",
			steps:          []step{set(hr("default", "echo"), a)},
			node:           a,
			wantDependents: []Key{hr("default", "echo")},
		},
		{
			name:          "a dependency listed twice is kept once",
			steps:         []step{set(a, b, c, b)},
			node:          a,
			wantDependsOn: []Key{b, c},
			wantMissing:   []Key{b, c},
		},
		{
			name:           "set replaces earlier edges",
			steps:          []step{set(a, b), set(a, c)},
			node:           b,
			wantDependents: nil,
		},
		{
			name:          "set replaces earlier dependencies",
			steps:         []step{set(a, b), set(a, c), set(c)},
			node:          a,
			wantDependsOn: []Key{c},
		},
		{
			name:          "set with no dependencies clears them",
			steps:         []step{set(a, b), set(a)},
			node:          a,
			wantDependsOn: nil,
		},
		{
			name:          "remove forgets the node's dependencies",
			steps:         []step{set(a, b), remove(a)},
			node:          a,
			wantDependsOn: nil,
		},
		{
			name:           "remove drops the node from what it depended on",
			steps:          []step{set(a, b), set(c, b), remove(a)},
			node:           b,
			wantDependents: []Key{c},
		},
		{
			name:           "dependents of a removed node still name it",
			steps:          []step{set(b), set(a, b), remove(b)},
			node:           b,
			wantDependents: []Key{a},
		},
		{
			name:          "a removed dependency is missing",
			steps:         []step{set(b), set(c), set(a, b, c), remove(b)},
			node:          a,
			wantDependsOn: []Key{b, c},
			wantMissing:   []Key{b},
		},
		{
			name:  "an unknown node has nothing",
			steps: []step{set(a, b)},
			node:  d,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var g Graph
			for _, s := range tt.steps {
				if s.set != nil {
					g.Set(s.set.node, s.set.deps)
				} else {
					g.Remove(s.remove)
				}
			}
			if got := g.DependsOn(tt.node); !slices.Equal(got, tt.wantDependsOn) {
				t.Errorf("DependsOn(%s) = %v, want %v", tt.node, got, tt.wantDependsOn)
			}
			if got := g.Dependents(tt.node); !slices.Equal(got, tt.wantDependents) {
				t.Errorf("Dependents(%s) = %v, want %v", tt.node, got, tt.wantDependents)
			}
			if got := g.Missing(tt.node); !slices.Equal(got, tt.wantMissing) {
				t.Errorf("Missing(%s) = %v, want %v", tt.node, got, tt.wantMissing)
			}
		})
	}
}

func TestZeroGraphAnswersEmpty(t *testing.T) {
	var g Graph
	a := ks("a")
	g.Remove(a)
	if g.DependsOn(a) != nil || g.Dependents(a) != nil || g.Missing(a) != nil || g.Cycle(a) != nil {
		t.Error("an empty graph answered with something")
	}
	if ordered, blocked := g.Order(); len(ordered) != 0 || len(blocked) != 0 {
		t.Errorf("Order() = %v, %v, want nothing", ordered, blocked)
	}
	if levels := g.Levels(); len(levels) != 0 {
		t.Errorf("Levels() = %v, want none", levels)
	}
}

func TestGraphKeepsNoReferenceToCallersSlices(t *testing.T) {
	var g Graph
	a, b, c := ks("a"), ks("b"), ks("c")
	deps := []Key{b}
	g.Set(a, deps)
	deps[0] = c
	got := g.DependsOn(a)
	if !slices.Equal(got, []Key{b}) {
		t.Fatalf("DependsOn after the caller changed its slice = %v, want [%s]", got, b)
	}
	got[0] = c
	if got := g.DependsOn(a); !slices.Equal(got, []Key{b}) {
		t.Errorf("DependsOn after the caller changed the result = %v, want [%s]", got, b)
	}
}

// TestConcurrentUse is meant for -race: writers keep rewiring a ring of
// nodes while readers ask every question.
func TestConcurrentUse(t *testing.T) {
	const nodes, workers, rounds = 50, 8, 200
	key := func(i int) Key { return ks(fmt.Sprintf("app-%02d", i%nodes)) }

	var g Graph
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for r := range rounds {
				i := w*rounds + r
				switch i % 3 {
				case 0:
					g.Set(key(i), []Key{key(i + 1)})
				case 1:
					g.Set(key(i), []Key{key(i + 1), key(i + 7)})
				default:
					g.Remove(key(i))
				}
			}
		})
		wg.Go(func() {
			for r := range rounds {
				k := key(w*rounds + r)
				if c := g.Cycle(k); c != nil && (c[0] != k || c[len(c)-1] != k) {
					t.Errorf("Cycle(%s) = %v: does not start and end at the node", k, c)
				}
				g.Dependents(k)
				g.DependsOn(k)
				g.Missing(k)
				if r%20 == 0 {
					g.Order()
					g.Levels()
				}
			}
		})
	}
	wg.Wait()

	// After the dust settles the index must still be consistent: every
	// node is among the dependents of each of its dependencies.
	ordered, blocked := g.Order()
	for _, n := range append(ordered, blocked...) {
		for _, d := range g.DependsOn(n) {
			if !slices.Contains(g.Dependents(d), n) {
				t.Errorf("%s depends on %s but is not among its dependents", n, d)
			}
		}
	}
}

// TestForgottenKeysAreReleased checks that a long-running index does not
// grow with every name it has ever seen.
func TestForgottenKeysAreReleased(t *testing.T) {
	var g Graph
	a, b, c := ks("a"), ks("b"), ks("c")
	g.Set(a, []Key{b, c, a})
	g.Set(b, []Key{c})
	g.Set(a, []Key{b})
	g.Remove(b)
	if got := g.Dependents(b); !slices.Equal(got, []Key{a}) {
		t.Fatalf("Dependents(b) = %v, want [a]", got)
	}
	g.Remove(a)
	g.Remove(c)
	if n := len(g.vertices); n != 0 {
		t.Errorf("%d keys kept after every node was removed", n)
	}
}
