package ui_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/weirhq/weir/internal/ui"
)

// drawnNode is a node of the graph as the page draws it.
type drawnNode struct {
	Kind, Namespace, Name, Ready, State string
	X, Y                                float64
}

const readNodes = `[...document.querySelectorAll('g.node')].map(g => ({
	Kind: g.dataset.kind, Namespace: g.dataset.namespace, Name: g.dataset.name,
	Ready: g.dataset.ready, State: g.dataset.state,
	X: g.transform.baseVal[0].matrix.e, Y: g.transform.baseVal[0].matrix.f}))`

const readEdges = `[...document.querySelectorAll('path.edge')].map(p => p.dataset.from + ' -> ' + p.dataset.to + ' (' + p.dataset.type + ')')`

func TestGraphShowsEveryNodeAndDependency(t *testing.T) {
	ns := env.Namespace(t)
	create(t,
		kustomization(ns, "infra"),
		kustomization(ns, "config", "infra"),
		helmRelease(ns, "database", "infra"),              // a HelmRelease on a Kustomization
		kustomization(ns, "apps", "config", "database"),   // a Kustomization on a HelmRelease
		helmRelease(ns, "frontend", "database"),           // a HelmRelease on a HelmRelease
		kustomization(ns, "smoke-tests", "apps", "ghost"), // and on nothing
	)
	srv := serve(t, ui.Options{Namespace: ns})
	b := browser(t)

	b.do("loading the graph",
		chromedp.Navigate(srv.URL()),
		until(`document.querySelectorAll('g.node').length === 7`))
	nodes := value(b, "reading the nodes", chromedp.Evaluate[[]drawnNode](readNodes))
	edges := value(b, "reading the edges", chromedp.Evaluate[[]string](readEdges))
	header := b.text("#counts")

	byName := map[string]drawnNode{}
	for _, n := range nodes {
		byName[n.Name] = n
		if n.Namespace != ns {
			t.Errorf("node %s is in namespace %q, want %q", n.Name, n.Namespace, ns)
		}
	}
	want := map[string]string{
		"infra": "Kustomization", "config": "Kustomization", "apps": "Kustomization", "smoke-tests": "Kustomization",
		"database": "HelmRelease", "frontend": "HelmRelease", "ghost": "Kustomization",
	}
	for name, kind := range want {
		n, ok := byName[name]
		switch {
		case !ok:
			t.Errorf("node %s is not drawn; drawn: %v", name, nodes)
		case n.Kind != kind:
			t.Errorf("node %s is a %s, want %s", name, n.Kind, kind)
		}
	}
	if s := byName["ghost"].State; s != "missing" {
		t.Errorf("the dependency that names nothing is drawn as %q, want missing", s)
	}
	if s := byName["infra"].State; s != "progressing" || byName["infra"].Ready != "Unknown" {
		t.Errorf("an object without status is %q/%q, want progressing/Unknown", s, byName["infra"].Ready)
	}

	id := func(kind, name string) string { return kind + "/" + ns + "/" + name }
	ks, hr := "Kustomization", "HelmRelease"
	wantEdges := []string{
		id(ks, "infra") + " -> " + id(ks, "config"),
		id(ks, "infra") + " -> " + id(hr, "database"),
		id(ks, "config") + " -> " + id(ks, "apps"),
		id(hr, "database") + " -> " + id(ks, "apps"),
		id(hr, "database") + " -> " + id(hr, "frontend"),
		id(ks, "apps") + " -> " + id(ks, "smoke-tests"),
		id(ks, "ghost") + " -> " + id(ks, "smoke-tests"),
	}
	for i := range wantEdges {
		wantEdges[i] += " (dependsOn)"
	}
	slices.Sort(wantEdges)
	slices.Sort(edges)
	if !slices.Equal(edges, wantEdges) {
		t.Errorf("edges:\n%s\nwant:\n%s", strings.Join(edges, "\n"), strings.Join(wantEdges, "\n"))
	}

	// Left to right: each object is drawn right of what it depends on.
	for _, e := range [][2]string{
		{"infra", "config"}, {"config", "apps"}, {"database", "apps"}, {"infra", "database"},
		{"database", "frontend"}, {"apps", "smoke-tests"}, {"ghost", "smoke-tests"},
	} {
		if byName[e[0]].X >= byName[e[1]].X {
			t.Errorf("%s (x=%v) is not left of its dependent %s (x=%v)", e[0], byName[e[0]].X, e[1], byName[e[1]].X)
		}
	}
	if want := fmt.Sprintf("%d progressing", 6); !strings.Contains(strings.Join(strings.Fields(header), " "), want) {
		t.Errorf("header %q does not say %q", header, want)
	}
}

func TestEmptyNamespaceGivesEmptyLists(t *testing.T) {
	srv := serve(t, ui.Options{Namespace: env.Namespace(t)})
	resp, body := request(t, "GET", srv.URL()+"api/snapshot", nil, "")
	if resp.StatusCode != 200 {
		t.Fatalf("GET /api/snapshot: %d %s", resp.StatusCode, body)
	}
	for _, want := range []string{`"nodes":[]`, `"edges":[]`, `"sources":[]`} {
		if !strings.Contains(body, want) {
			t.Errorf("the snapshot of an empty namespace has no %s: %s", want, body)
		}
	}
}
