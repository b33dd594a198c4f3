// Package graphlayout places a layered drawing of a dependency graph:
// dependencies left of their dependents, in columns by the longest chain
// that leads to each node, rows ordered to keep edges short and crossings
// few. The dashboard and `weir graph --output svg` draw with it.
package graphlayout

import (
	"cmp"
	"slices"
	"strings"
)

// Position is a node's place in the drawing: its column (Level), left to
// right, its Row in the column, top to bottom, and its Indent under the
// node that applied it.
type Position struct{ Level, Row, Indent int }

// Edge is an arrow from From to To. An Applied edge says that From applied
// To (a Kustomization and what its inventory holds): To hangs below From
// in its column instead of to its right.
type Edge struct {
	From, To string
	Applied  bool
}

// Layout places a layered drawing of the graph; order sorts the ids
// where nothing else decides (nil sorts them as strings). Dependencies go left to
// right: a node's column is the length of the longest chain of dependsOn
// edges that leads to it (an edge that closes a cycle is left out, so that
// a cycle still draws). What a Kustomization applied hangs below it, in
// its column and indented, like a tree: an EdgeApplied makes its target a
// child of its source. In each column, the trees are ordered to keep edges
// short and crossings few: a few sweeps that sort them by the mean place of
// their neighbours in the columns before, then after.
func Layout(ids []string, edges []Edge, order func(a, b string) int) map[string]Position {
	if order == nil {
		order = strings.Compare
	}
	ids = slices.Clone(ids)
	slices.SortFunc(ids, order)
	known := map[string]bool{}
	for _, id := range ids {
		known[id] = true
	}
	preds, succs := map[string][]string{}, map[string][]string{}
	parent, children := map[string]string{}, map[string][]string{}
	for _, e := range edges {
		if !known[e.From] || !known[e.To] || e.From == e.To {
			continue
		}
		if e.Applied {
			if _, ok := parent[e.To]; !ok {
				parent[e.To] = e.From
			}
			continue
		}
		preds[e.To] = append(preds[e.To], e.From)
		succs[e.From] = append(succs[e.From], e.To)
	}
	// A chain of parents that loops is cut where it closes.
	for _, id := range ids {
		seen := map[string]bool{id: true}
		for p, ok := parent[id]; ok; p, ok = parent[p] {
			if seen[p] {
				delete(parent, id)
				break
			}
			seen[p] = true
		}
	}
	for _, id := range ids {
		if p, ok := parent[id]; ok {
			children[p] = append(children[p], id)
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
		if p, ok := parent[id]; ok {
			l = max(0, visit(p))
		}
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

	// A tree is a node that no node of its column applied, with what it
	// applied below it, depth first.
	type tree struct {
		members []string
		indent  []int
	}
	var grow func(t *tree, id string, indent int)
	grow = func(t *tree, id string, indent int) {
		t.members = append(t.members, id)
		t.indent = append(t.indent, indent)
		for _, c := range children[id] {
			if level[c] == level[id] {
				grow(t, c, indent+1)
			}
		}
	}
	columns := make([][]*tree, depth+1)
	for _, id := range ids {
		if p, ok := parent[id]; ok && level[p] == level[id] {
			continue
		}
		t := &tree{}
		grow(t, id, 0)
		columns[level[id]] = append(columns[level[id]], t)
	}

	// place is a node's height in its column, centred on 0 as drawn.
	place := map[string]float64{}
	setPlaces := func(col []*tree) {
		n := 0
		for _, t := range col {
			n += len(t.members)
		}
		i := 0
		for _, t := range col {
			for _, id := range t.members {
				place[id] = float64(i) - float64(n-1)/2
				i++
			}
		}
	}
	for _, col := range columns {
		setPlaces(col)
	}
	sortBy := func(col []*tree, neighbours map[string][]string) {
		bary := map[*tree]float64{}
		for _, t := range col {
			sum, n := 0.0, 0
			for _, id := range t.members {
				for _, nb := range neighbours[id] {
					sum += place[nb]
					n++
				}
			}
			if n == 0 {
				bary[t] = place[t.members[0]]
			} else {
				bary[t] = sum / float64(n)
			}
		}
		slices.SortStableFunc(col, func(a, b *tree) int { return cmp.Compare(bary[a], bary[b]) })
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

	pos := make(map[string]Position, len(ids))
	for l, col := range columns {
		row := 0
		for _, t := range col {
			for i, id := range t.members {
				pos[id] = Position{Level: l, Row: row, Indent: t.indent[i]}
				row++
			}
		}
	}
	return pos
}
