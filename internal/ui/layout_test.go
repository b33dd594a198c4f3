package ui

import (
	"testing"
)

func ks(name string) string { return nodeID("Kustomization", "flux-system", name) }
func hr(name string) string { return nodeID("HelmRelease", "apps", name) }

func dep(from, to string) Edge     { return Edge{From: from, To: to, Type: EdgeDependsOn} }
func applied(from, to string) Edge { return Edge{From: from, To: to, Type: EdgeApplied} }

func TestLayoutPlacesDependentsRightOfTheirDependencies(t *testing.T) {
	ids := []string{ks("cilium"), ks("coredns"), hr("db"), ks("apps"), ks("lonely")}
	pos := layout(ids, []Edge{
		dep(ks("cilium"), ks("coredns")),
		dep(ks("coredns"), ks("apps")),
		dep(ks("cilium"), hr("db")),
		dep(hr("db"), ks("apps")),
	})
	want := map[string]int{ks("cilium"): 0, ks("lonely"): 0, ks("coredns"): 1, hr("db"): 1, ks("apps"): 2}
	for id, level := range want {
		if pos[id].level != level {
			t.Errorf("%s is in column %d, want %d (the longest chain of dependencies before it)", id, pos[id].level, level)
		}
	}
	rows := map[[2]int]string{}
	for id, p := range pos {
		if other, ok := rows[[2]int{p.level, p.row}]; ok {
			t.Errorf("%s and %s share column %d row %d", id, other, p.level, p.row)
		}
		rows[[2]int{p.level, p.row}] = id
	}
}

func TestLayoutDrawsACycle(t *testing.T) {
	ids := []string{ks("a"), ks("b"), ks("c")}
	pos := layout(ids, []Edge{dep(ks("a"), ks("b")), dep(ks("b"), ks("c")), dep(ks("c"), ks("a"))})
	if len(pos) != 3 {
		t.Fatalf("placed %d nodes of 3: %v", len(pos), pos)
	}
	levels := map[int]bool{}
	for _, p := range pos {
		levels[p.level] = true
	}
	if len(levels) != 3 {
		t.Errorf("a cycle of three is drawn in %d columns, want 3 (one edge left out): %v", len(levels), pos)
	}
}

func TestLayoutHangsWhatAKustomizationAppliedBelowIt(t *testing.T) {
	ids := []string{ks("flux-system"), ks("cluster-apps"), ks("cilium"), hr("cilium"), ks("coredns"), hr("coredns")}
	pos := layout(ids, []Edge{
		applied(ks("flux-system"), ks("cluster-apps")),
		applied(ks("cluster-apps"), ks("cilium")),
		applied(ks("cilium"), hr("cilium")),
		dep(ks("cilium"), ks("coredns")),
		applied(ks("coredns"), hr("coredns")),
	})
	for _, c := range []struct {
		id                 string
		level, row, indent int
	}{
		{ks("flux-system"), 0, 0, 0},
		{ks("cluster-apps"), 0, 1, 1},
		{ks("cilium"), 0, 2, 2},
		{hr("cilium"), 0, 3, 3},
		{ks("coredns"), 1, 0, 0},
		{hr("coredns"), 1, 1, 1},
	} {
		if got := pos[c.id]; got != (position{c.level, c.row, c.indent}) {
			t.Errorf("%s is at %+v, want column %d row %d indent %d", c.id, got, c.level, c.row, c.indent)
		}
	}
}

func TestLayoutOrdersColumnsToAvoidCrossings(t *testing.T) {
	// a1 -> b1 and a2 -> b2: whatever the names, b1 and b2 follow the
	// order of what they depend on.
	ids := []string{ks("a1"), ks("a2"), ks("z-b1"), ks("b2")}
	pos := layout(ids, []Edge{dep(ks("a1"), ks("z-b1")), dep(ks("a2"), ks("b2"))})
	if (pos[ks("a1")].row < pos[ks("a2")].row) != (pos[ks("z-b1")].row < pos[ks("b2")].row) {
		t.Errorf("the edges cross: %v", pos)
	}
}

func TestLayoutIsStable(t *testing.T) {
	ids := []string{ks("a"), ks("b"), ks("c"), hr("d"), hr("e")}
	edges := []Edge{dep(ks("a"), ks("b")), dep(ks("a"), hr("d")), dep(hr("d"), ks("c")), applied(ks("c"), hr("e"))}
	first := layout(ids, edges)
	for range 20 {
		shuffled := []string{ids[3], ids[1], ids[4], ids[0], ids[2]}
		if got := layout(shuffled, edges); len(got) != len(first) {
			t.Fatal("a different number of nodes")
		} else {
			for id, p := range first {
				if got[id] != p {
					t.Fatalf("%s moved from %+v to %+v with the same graph", id, p, got[id])
				}
			}
		}
	}
}
