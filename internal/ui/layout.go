package ui

import (
	"cmp"
	"strings"

	"github.com/weirhq/weir/internal/graphlayout"
)

// position is a node's place in the drawing: its column, left to right,
// its row in the column, top to bottom, and its indent under the node that
// applied it.
type position struct{ level, row, indent int }

// layout places the dashboard's nodes with graphlayout, Kustomizations and
// HelmReleases of one app side by side.
func layout(ids []string, edges []Edge) map[string]position {
	es := make([]graphlayout.Edge, len(edges))
	for i, e := range edges {
		es[i] = graphlayout.Edge{From: e.From, To: e.To, Applied: e.Type == EdgeApplied}
	}
	out := map[string]position{}
	for id, p := range graphlayout.Layout(ids, es, compareIDs) {
		out[id] = position{level: p.Level, row: p.Row, indent: p.Indent}
	}
	return out
}

// compareIDs orders nodes by namespace, then name, then kind, so that a
// Kustomization and the HelmRelease of the same app sit together.
func compareIDs(a, b string) int {
	ka, na, ma := splitID(a)
	kb, nb, mb := splitID(b)
	return cmp.Or(strings.Compare(na, nb), strings.Compare(ma, mb), strings.Compare(ka, kb))
}
