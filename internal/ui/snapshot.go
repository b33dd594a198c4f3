package ui

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/fluxcd/cli-utils/pkg/object"
	helmv2 "github.com/fluxcd/helm-controller/api/v2"
	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"github.com/fluxcd/pkg/apis/meta"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/weirhq/weir/internal/control"
	"github.com/weirhq/weir/internal/dependency"
	"github.com/weirhq/weir/internal/diagnose"
)

// Snapshot is what the page shows at one moment: the graph, the sources
// and the counts of the header.
type Snapshot struct {
	// Nodes are the Kustomizations and HelmReleases, plus a node of state
	// "missing" for each dependency that names no object.
	Nodes []Node `json:"nodes"`
	// Edges are the arrows of the graph.
	Edges []Edge `json:"edges"`
	// Sources are the GitRepositories, OCIRepositories, HelmRepositories
	// and HelmCharts.
	Sources []Node `json:"sources"`
	// Counts sum up the nodes by state.
	Counts Counts `json:"counts"`
	// Namespace is the one namespace shown, or empty for all.
	Namespace string `json:"namespace,omitempty"`
	// ActingAs is the user actions impersonate, empty when none.
	ActingAs string `json:"actingAs,omitempty"`
}

// States of a node, which the page draws in colours: diagnose's states.
const (
	StateReady       = string(diagnose.Ready)       // Ready=True for the current generation: green
	StateFailed      = string(diagnose.Failed)      // Ready=False, or Stalled: red
	StateWaiting     = string(diagnose.Waiting)     // Ready=False because a dependency is not Ready: amber
	StateProgressing = string(diagnose.Progressing) // Ready=Unknown, not reconciled yet, or a new generation: amber
	StateSuspended   = string(diagnose.Suspended)   // spec.suspend: grey
	StateMissing     = string(diagnose.Missing)     // named by a dependsOn but does not exist
)

// Node is one object: a node of the graph, or a source.
type Node struct {
	// ID is "Kind/namespace/name".
	ID        string `json:"id"`
	Kind      string `json:"kind"`
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	// State is one of the State constants.
	State string `json:"state"`
	// Ready is the status of the Ready condition: True, False or Unknown.
	Ready   string `json:"ready"`
	Reason  string `json:"reason,omitempty"`
	Message string `json:"message,omitempty"`
	// Since is when the Ready condition last changed.
	Since     *time.Time `json:"since,omitempty"`
	Suspended bool       `json:"suspended,omitempty"`
	// Revision is the last applied (or fetched) revision.
	Revision string `json:"revision,omitempty"`
	// Why says in plain words what holds the object when it is not Ready.
	Why string `json:"why,omitempty"`
	// AppliedBy is the ID of the Kustomization whose inventory holds it.
	AppliedBy string `json:"appliedBy,omitempty"`
	// URL is where a source fetches from.
	URL string `json:"url,omitempty"`
	// Level is the column of a graph node, left to right, Row its place in
	// the column, top to bottom, and Indent its depth under the
	// Kustomization that applied it, drawn in the same column.
	Level  int `json:"level"`
	Row    int `json:"row"`
	Indent int `json:"indent,omitempty"`
}

// Edge kinds.
const (
	// EdgeDependsOn goes from a dependency to its dependent.
	EdgeDependsOn = "dependsOn"
	// EdgeApplied goes from a Kustomization to an object it applied that
	// has no dependsOn of its own (which would place it already): the
	// object is drawn below it, in its column.
	EdgeApplied = "applied"
)

// Edge is an arrow of the graph, drawn left to right from From to To.
type Edge struct {
	From string `json:"from"`
	To   string `json:"to"`
	Type string `json:"type"`
}

// Counts sum up the graph's nodes by state; waiting ones count as
// progressing, and missing ones not at all.
type Counts struct {
	Total       int `json:"total"`
	Ready       int `json:"ready"`
	Failed      int `json:"failed"`
	Progressing int `json:"progressing"`
	Suspended   int `json:"suspended"`
}

func nodeID(kind, namespace, name string) string { return kind + "/" + namespace + "/" + name }

// graphObject is a Kustomization or HelmRelease with what the graph needs
// of its spec.
type graphObject struct {
	obj  control.Object
	kind string
	deps []meta.DependencyReference
}

// build reads every watched object from the cache and makes a snapshot.
func (s *Server) build(ctx context.Context) (*Snapshot, error) {
	objs, sources, raw, err := s.readAll(ctx)
	if err != nil {
		return nil, err
	}
	nodes, deps := s.graphNodes(ctx, objs)
	markApplied(nodes, objs)
	edges := graphEdges(nodes, deps)
	// What holds a waiting object is said as `weir why` says it.
	g, now := diagnose.New(raw), time.Now()
	for _, n := range nodes {
		if n.State == StateWaiting {
			n.Why = g.Explain(diagnose.Ref{Kind: n.Kind, Namespace: n.Namespace, Name: n.Name}).WaitingText(now)
		}
	}
	snap := &Snapshot{Nodes: []Node{}, Edges: edges, Sources: sources, Namespace: s.opts.Namespace, ActingAs: s.actingAs}
	ids := make([]string, 0, len(nodes))
	for id := range nodes {
		ids = append(ids, id)
	}
	pos := layout(ids, edges)
	for _, id := range ids {
		n := nodes[id]
		n.Level, n.Row, n.Indent = pos[id].level, pos[id].row, pos[id].indent
		snap.Nodes = append(snap.Nodes, *n)
		snap.Counts.add(n.State)
	}
	slices.SortFunc(snap.Nodes, func(a, b Node) int { return strings.Compare(a.ID, b.ID) })
	return snap, nil
}

// readAll lists the Kustomizations and HelmReleases, and the sources in
// the order the page lists them: by kind (Git repositories first), then by
// namespace and name.
func (s *Server) readAll(ctx context.Context) ([]graphObject, []Node, []control.Object, error) {
	var objs []graphObject
	var raw []control.Object
	sources := []Node{}
	for _, w := range watched {
		if !s.present[w.kind] {
			continue
		}
		items, err := s.list(ctx, w.kind, w.newList)
		if err != nil {
			return nil, nil, nil, err
		}
		raw = append(raw, items...)
		for _, o := range items {
			switch o := o.(type) {
			case *kustomizev1.Kustomization:
				objs = append(objs, graphObject{o, w.kind, o.Spec.DependsOn})
			case *helmv2.HelmRelease:
				objs = append(objs, graphObject{o, w.kind, o.Spec.DependsOn})
			default:
				sources = append(sources, summarizeSource(w.kind, o))
			}
		}
	}
	rank := map[string]int{}
	for i, w := range watched {
		rank[w.kind] = i
	}
	slices.SortFunc(sources, func(a, b Node) int {
		return cmp.Or(cmp.Compare(rank[a.Kind], rank[b.Kind]), strings.Compare(a.Namespace, b.Namespace), strings.Compare(a.Name, b.Name))
	})
	return objs, sources, raw, nil
}

// graphNodes makes a node of each object, and resolves its dependencies
// as the controllers do. A dependency that names nothing gets a node of
// its own, of state missing, so that the arrow shows what is waited for.
func (s *Server) graphNodes(ctx context.Context, objs []graphObject) (map[string]*Node, map[string][]string) {
	nodes := map[string]*Node{}
	deps := map[string][]string{}
	for _, g := range objs {
		n := summarize(g.kind, g.obj)
		nodes[n.ID] = &n
		for _, k := range dependency.Keys(ctx, s.reader, g.kind, g.obj.GetNamespace(), g.deps) {
			deps[n.ID] = append(deps[n.ID], nodeID(k.Kind, k.Namespace, k.Name))
		}
	}
	for _, ds := range deps {
		for _, d := range ds {
			if nodes[d] != nil {
				continue
			}
			kind, namespace, name := splitID(d)
			why := "No " + kind + " of this name exists."
			if s.opts.Namespace != "" && namespace != s.opts.Namespace {
				why = "It is in namespace " + namespace + ", which this dashboard does not show."
			}
			nodes[d] = &Node{ID: d, Kind: kind, Namespace: namespace, Name: name, State: StateMissing, Ready: "Unknown", Why: why}
		}
	}
	return nodes, deps
}

// markApplied sets AppliedBy on each Kustomization and HelmRelease that a
// Kustomization's inventory holds.
func markApplied(nodes map[string]*Node, objs []graphObject) {
	ksKind := kustomizev1.GroupVersion.WithKind(kustomizev1.KustomizationKind).GroupKind()
	hrKind := helmv2.GroupVersion.WithKind(helmv2.HelmReleaseKind).GroupKind()
	for _, g := range objs {
		ks, ok := g.obj.(*kustomizev1.Kustomization)
		if !ok || ks.Status.Inventory == nil {
			continue
		}
		owner := nodeID(kustomizev1.KustomizationKind, ks.Namespace, ks.Name)
		for _, e := range ks.Status.Inventory.Entries {
			m, err := object.ParseObjMetadata(e.ID)
			if err != nil || (m.GroupKind != ksKind && m.GroupKind != hrKind) {
				continue
			}
			if n := nodes[nodeID(m.GroupKind.Kind, m.Namespace, m.Name)]; n != nil && n.ID != owner {
				n.AppliedBy = owner
			}
		}
	}
}

// graphEdges are the dependsOn arrows, and the applied ones of the nodes
// that no dependsOn places.
func graphEdges(nodes map[string]*Node, deps map[string][]string) []Edge {
	edges := []Edge{}
	for id, ds := range deps {
		for _, d := range ds {
			edges = append(edges, Edge{From: d, To: id, Type: EdgeDependsOn})
		}
	}
	for id, n := range nodes {
		if n.AppliedBy != "" && len(deps[id]) == 0 {
			edges = append(edges, Edge{From: n.AppliedBy, To: id, Type: EdgeApplied})
		}
	}
	slices.SortFunc(edges, func(a, b Edge) int {
		return cmp.Or(strings.Compare(a.To, b.To), strings.Compare(a.From, b.From))
	})
	return edges
}

func (c *Counts) add(state string) {
	switch state {
	case StateMissing:
		return
	case StateReady:
		c.Ready++
	case StateFailed:
		c.Failed++
	case StateSuspended:
		c.Suspended++
	default:
		c.Progressing++
	}
	c.Total++
}

func splitID(id string) (kind, namespace, name string) {
	kind, rest, _ := strings.Cut(id, "/")
	namespace, name, _ = strings.Cut(rest, "/")
	return kind, namespace, name
}

// summarize reads an object's state from its status.
func summarize(kind string, obj control.Object) Node {
	st := control.StatusOf(obj)
	n := Node{
		ID: nodeID(kind, obj.GetNamespace(), obj.GetName()), Kind: kind,
		Namespace: obj.GetNamespace(), Name: obj.GetName(),
		Ready: st.Ready, Suspended: st.Suspended, Revision: st.Revision,
	}
	ready := apimeta.FindStatusCondition(control.Conditions(obj), meta.ReadyCondition)
	if ready != nil {
		n.Reason, n.Message = ready.Reason, ready.Message
		if !ready.LastTransitionTime.IsZero() {
			t := ready.LastTransitionTime.UTC()
			n.Since = &t
		}
	}
	state, why := diagnose.Classify(obj)
	n.State, n.Why = string(state), why
	return n
}

// watched are the kinds the dashboard watches, in the order it lists them.
var watched = []struct {
	kind    string
	source  bool
	newList func() client.ObjectList
}{
	{kustomizev1.KustomizationKind, false, func() client.ObjectList { return &kustomizev1.KustomizationList{} }},
	{helmv2.HelmReleaseKind, false, func() client.ObjectList { return &helmv2.HelmReleaseList{} }},
	{sourcev1.GitRepositoryKind, true, func() client.ObjectList { return &sourcev1.GitRepositoryList{} }},
	{sourcev1.OCIRepositoryKind, true, func() client.ObjectList { return &sourcev1.OCIRepositoryList{} }},
	{sourcev1.BucketKind, true, func() client.ObjectList { return &sourcev1.BucketList{} }},
	{sourcev1.HelmRepositoryKind, true, func() client.ObjectList { return &sourcev1.HelmRepositoryList{} }},
	{sourcev1.HelmChartKind, true, func() client.ObjectList { return &sourcev1.HelmChartList{} }},
}

// list reads every object of a watched kind from the cache.
func (s *Server) list(ctx context.Context, kind string, newList func() client.ObjectList) ([]control.Object, error) {
	l := newList()
	if err := s.reader.List(ctx, l); err != nil {
		return nil, fmt.Errorf("listing %ss: %w", kind, err)
	}
	items, err := apimeta.ExtractList(l)
	if err != nil {
		return nil, fmt.Errorf("listing %ss: %w", kind, err)
	}
	objs := make([]control.Object, 0, len(items))
	for _, it := range items {
		if o, ok := it.(control.Object); ok {
			objs = append(objs, o)
		}
	}
	return objs, nil
}

// summarizeSource reads a source's state and where it fetches from.
func summarizeSource(kind string, obj control.Object) Node {
	n := summarize(kind, obj)
	switch o := obj.(type) {
	case *sourcev1.GitRepository:
		n.URL = o.Spec.URL
		if r := o.Spec.Reference; r != nil {
			switch {
			case r.Name != "":
				n.URL += " (" + r.Name + ")"
			case r.Commit != "":
				n.URL += " (commit " + r.Commit + ")"
			case r.SemVer != "":
				n.URL += " (semver " + r.SemVer + ")"
			case r.Tag != "":
				n.URL += " (tag " + r.Tag + ")"
			case r.Branch != "":
				n.URL += " (branch " + r.Branch + ")"
			}
		}
	case *sourcev1.OCIRepository:
		n.URL = o.Spec.URL
		if r := o.Spec.Reference; r != nil {
			switch {
			case r.Digest != "":
				n.URL += "@" + r.Digest
			case r.SemVer != "":
				n.URL += " (semver " + r.SemVer + ")"
			case r.Tag != "":
				n.URL += ":" + r.Tag
			}
		}
	case *sourcev1.Bucket:
		n.URL = o.Spec.Endpoint + "/" + o.Spec.BucketName
		if o.Spec.Prefix != "" {
			n.URL += " (prefix " + o.Spec.Prefix + ")"
		}
	case *sourcev1.HelmRepository:
		n.URL = o.Spec.URL
	case *sourcev1.HelmChart:
		n.URL = o.Spec.Chart
		if o.Spec.Version != "" {
			n.URL += "@" + o.Spec.Version
		}
		n.URL += " from " + o.Spec.SourceRef.Kind + " " + o.Spec.SourceRef.Name
	}
	return n
}
