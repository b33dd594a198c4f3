// Package graphview draws the dependency graph of Kustomizations and
// HelmReleases (and, on request, their sources) as Graphviz DOT, as a
// Mermaid flowchart, and as a standalone SVG laid out by graphlayout, so
// that no external program is needed.
package graphview

import (
	"cmp"
	"fmt"
	"html"
	"io"
	"slices"
	"strings"

	helmv2 "github.com/fluxcd/helm-controller/api/v2"
	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"

	"github.com/weirhq/weir/internal/diagnose"
	"github.com/weirhq/weir/internal/graphlayout"
)

// Node is one object of the drawing.
type Node struct {
	ID    string // "Kind/namespace/name"
	Ref   diagnose.Ref
	State diagnose.State
}

// Edge goes from a dependency (or a source) to what needs it.
type Edge struct {
	From, To string
	// Source marks the edge from a source to what renders from it.
	Source bool
}

// Graph is what is drawn.
type Graph struct {
	Nodes []Node
	Edges []Edge
}

// Build makes the drawing of g: every Kustomization and HelmRelease, a
// node for each dependency that does not exist, and with sources, the
// sources they render from.
func Build(g *diagnose.Graph, sources bool) *Graph {
	out := &Graph{}
	nodes := map[string]bool{}
	add := func(ref diagnose.Ref) string {
		id := ref.Kind + "/" + ref.Namespace + "/" + ref.Name
		if !nodes[id] {
			nodes[id] = true
			state := diagnose.Missing
			if o, ok := g.Get(ref); ok {
				state, _ = diagnose.Classify(o)
			}
			out.Nodes = append(out.Nodes, Node{ID: id, Ref: ref, State: state})
		}
		return id
	}
	for _, kind := range []string{kustomizev1.KustomizationKind, helmv2.HelmReleaseKind} {
		for _, ref := range g.All(kind) {
			to := add(ref)
			for _, d := range g.Dependencies(ref) {
				out.Edges = append(out.Edges, Edge{From: add(d), To: to})
			}
			if !sources {
				continue
			}
			if src, _, ok := g.Source(ref); ok {
				out.Edges = append(out.Edges, Edge{From: add(src), To: to, Source: true})
				// A HelmChart hangs from its own repository.
				if up, _, ok := g.Source(src); ok && src.Kind != up.Kind {
					out.Edges = append(out.Edges, Edge{From: add(up), To: add(src), Source: true})
				}
			}
		}
	}
	slices.SortFunc(out.Nodes, func(a, b Node) int { return strings.Compare(a.ID, b.ID) })
	slices.SortFunc(out.Edges, func(a, b Edge) int { return cmp.Or(strings.Compare(a.To, b.To), strings.Compare(a.From, b.From)) })
	out.Edges = slices.Compact(out.Edges)
	return out
}

// label is a node's text: "ks flux-system/apps".
func label(n Node) string {
	short := map[string]string{kustomizev1.KustomizationKind: "ks", helmv2.HelmReleaseKind: "hr"}[n.Ref.Kind]
	if short == "" {
		short = n.Ref.Kind
	}
	return short + " " + n.Ref.Namespace + "/" + n.Ref.Name
}

// colours of the states, as the dashboard draws them.
var colours = map[diagnose.State]string{
	diagnose.Ready:       "#1a7f37",
	diagnose.Failed:      "#cf222e",
	diagnose.Waiting:     "#bf8700",
	diagnose.Progressing: "#bf8700",
	diagnose.Suspended:   "#6e7781",
	diagnose.Missing:     "#6e7781",
}

// WriteDOT writes the graph in Graphviz's language, left to right.
func WriteDOT(w io.Writer, g *Graph) error {
	var b strings.Builder
	b.WriteString("digraph flux {\n  rankdir=LR;\n  node [shape=box, style=\"rounded,filled\", fillcolor=white, fontname=\"Helvetica\"];\n")
	for _, n := range g.Nodes {
		style := ""
		if n.State == diagnose.Missing {
			style = ", style=\"rounded,dashed\""
		}
		fmt.Fprintf(&b, "  %q [label=%q, color=%q, tooltip=%q%s];\n", n.ID, label(n), colours[n.State], string(n.State), style)
	}
	for _, e := range g.Edges {
		style := ""
		if e.Source {
			style = " [style=dashed]"
		}
		fmt.Fprintf(&b, "  %q -> %q%s;\n", e.From, e.To, style)
	}
	b.WriteString("}\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteMermaid writes a Mermaid flowchart, left to right, with a class per
// state.
func WriteMermaid(w io.Writer, g *Graph) error {
	var b strings.Builder
	b.WriteString("flowchart LR\n")
	ids := map[string]string{}
	for i, n := range g.Nodes {
		ids[n.ID] = fmt.Sprintf("n%d", i)
		text := strings.ReplaceAll(label(n), `"`, "#quot;")
		fmt.Fprintf(&b, "  %s[\"%s\"]:::%s\n", ids[n.ID], text, n.State)
	}
	for _, e := range g.Edges {
		arrow := "-->"
		if e.Source {
			arrow = "-.->"
		}
		fmt.Fprintf(&b, "  %s %s %s\n", ids[e.From], arrow, ids[e.To])
	}
	for _, s := range []diagnose.State{diagnose.Ready, diagnose.Failed, diagnose.Waiting, diagnose.Progressing, diagnose.Suspended, diagnose.Missing} {
		fmt.Fprintf(&b, "  classDef %s stroke:%s,stroke-width:2px\n", s, colours[s])
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// Sizes of the SVG drawing, in pixels.
const (
	boxWidth  = 240
	boxHeight = 34
	colGap    = 80
	rowGap    = 16
	margin    = 20
	indentPx  = 16
)

// WriteSVG writes a standalone SVG: boxes in columns by dependency depth,
// a coloured bar for each state, curved arrows from dependencies to
// dependents.
func WriteSVG(w io.Writer, g *Graph) error {
	ids := make([]string, len(g.Nodes))
	for i, n := range g.Nodes {
		ids[i] = n.ID
	}
	edges := make([]graphlayout.Edge, len(g.Edges))
	for i, e := range g.Edges {
		edges[i] = graphlayout.Edge{From: e.From, To: e.To}
	}
	pos := graphlayout.Layout(ids, edges, nil)
	x := func(id string) int {
		return margin + pos[id].Level*(boxWidth+colGap) + pos[id].Indent*indentPx
	}
	y := func(id string) int { return margin + pos[id].Row*(boxHeight+rowGap) }
	width, height := 2*margin, 2*margin
	for _, id := range ids {
		width = max(width, x(id)+boxWidth+margin)
		height = max(height, y(id)+boxHeight+margin)
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="Helvetica, Arial, sans-serif" font-size="12">`+"\n", width, height, width, height)
	b.WriteString(`<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="8" markerHeight="8" orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="#57606a"/></marker></defs>` + "\n")
	for _, e := range g.Edges {
		x1, y1 := x(e.From)+boxWidth, y(e.From)+boxHeight/2
		x2, y2 := x(e.To), y(e.To)+boxHeight/2
		dash := ""
		if e.Source {
			dash = ` stroke-dasharray="4 3"`
		}
		mid := (x1 + x2) / 2
		fmt.Fprintf(&b, `<path d="M %d %d C %d %d, %d %d, %d %d" fill="none" stroke="#57606a" stroke-width="1.5"%s marker-end="url(#arrow)"/>`+"\n", x1, y1, mid, y1, mid, y2, x2, y2, dash)
	}
	for _, n := range g.Nodes {
		dash := ""
		if n.State == diagnose.Missing {
			dash = ` stroke-dasharray="4 3"`
		}
		fmt.Fprintf(&b, `<g class="node %s"><title>%s: %s</title><rect x="%d" y="%d" width="%d" height="%d" rx="6" fill="white" stroke="%s"%s/><rect x="%d" y="%d" width="6" height="%d" rx="2" fill="%s"/><text x="%d" y="%d">%s</text></g>`+"\n",
			n.State, html.EscapeString(n.ID), n.State, x(n.ID), y(n.ID), boxWidth, boxHeight, colours[n.State], dash,
			x(n.ID), y(n.ID), boxHeight, colours[n.State], x(n.ID)+14, y(n.ID)+boxHeight/2+4, html.EscapeString(truncate(label(n), 34)))
	}
	b.WriteString("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// truncate cuts s to n runes with an ellipsis.
func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
