package ui

import (
	"cmp"
	"slices"
	"strings"
)

// position is a node's place in the drawing: its column, left to right,
// and its row in the column, top to bottom.
type position struct{ level, row int }

// layout places a layered drawing of the graph, left to right. A node's
// column is the length of the longest chain of edges that leads to it (an
// edge that closes a cycle is left out, so that a cycle still draws). In
// each column, nodes are ordered to keep edges short and crossings few: a
// few sweeps that sort each column by the mean place of its neighbours in
// the columns before it, then after it.
func layout(ids []string, edges []Edge) map[string]position {
	ids = slices.Clone(ids)
	slices.SortFunc(ids, compareIDs)
	preds := map[string][]string{}
	succs := map[string][]string{}
	known := map[string]bool{}
	for _, id := range ids {
		known[id] = true
	}
	for _, e := range edges {
		if known[e.From] && known[e.To] && e.From != e.To {
			preds[e.To] = append(preds[e.To], e.From)
			succs[e.From] = append(succs[e.From], e.To)
		}
	}

	const (
		unseen = iota
		onPath
		done
	)
	mark := map[string]int{}
	level := map[string]int{}
	var visit func(id string) int
	visit = func(id string) int {
		switch mark[id] {
		case done:
			return level[id]
		case onPath:
			return -1 // the edge closes a cycle
		}
		mark[id] = onPath
		l := 0
		for _, p := range preds[id] {
			if pl := visit(p); pl >= 0 {
				l = max(l, pl+1)
			}
		}
		mark[id], level[id] = done, l
		return l
	}
	depth := 0
	for _, id := range ids {
		depth = max(depth, visit(id))
	}

	columns := make([][]string, depth+1)
	for _, id := range ids {
		columns[level[id]] = append(columns[level[id]], id)
	}
	// place is a node's height in its column, centred on 0 as drawn.
	place := map[string]float64{}
	setPlaces := func(col []string) {
		for i, id := range col {
			place[id] = float64(i) - float64(len(col)-1)/2
		}
	}
	for _, col := range columns {
		setPlaces(col)
	}
	sortBy := func(col []string, neighbours map[string][]string) {
		bary := map[string]float64{}
		for _, id := range col {
			bary[id] = place[id]
			if ns := neighbours[id]; len(ns) > 0 {
				sum := 0.0
				for _, n := range ns {
					sum += place[n]
				}
				bary[id] = sum / float64(len(ns))
			}
		}
		slices.SortStableFunc(col, func(a, b string) int { return cmp.Compare(bary[a], bary[b]) })
		setPlaces(col)
	}
	for range 4 {
		for l := 1; l < len(columns); l++ {
			sortBy(columns[l], preds)
		}
		for l := len(columns) - 2; l >= 0; l-- {
			sortBy(columns[l], succs)
		}
	}
	// End with a sweep to the right, so that dependents line up with what
	// they depend on.
	for l := 1; l < len(columns); l++ {
		sortBy(columns[l], preds)
	}

	pos := make(map[string]position, len(ids))
	for l, col := range columns {
		for r, id := range col {
			pos[id] = position{level: l, row: r}
		}
	}
	return pos
}

// compareIDs orders nodes by namespace, then name, then kind, so that a
// Kustomization and the HelmRelease of the same app sit together.
func compareIDs(a, b string) int {
	ka, na, ma := splitID(a)
	kb, nb, mb := splitID(b)
	return cmp.Or(strings.Compare(na, nb), strings.Compare(ma, mb), strings.Compare(ka, kb))
}
