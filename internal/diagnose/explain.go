package diagnose

import (
	"context"
	"fmt"
	"strings"
	"time"

	helmv2 "github.com/fluxcd/helm-controller/api/v2"
	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"github.com/fluxcd/pkg/apis/meta"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/weirhq/weir/internal/control"
)

// Ref names an object.
type Ref struct {
	Kind, Namespace, Name string
}

// String is "Kind namespace/name", as messages name an object.
func (r Ref) String() string { return r.Kind + " " + r.Namespace + "/" + r.Name }

// RefOf names obj, whose kind is kind.
func RefOf(kind string, obj client.Object) Ref {
	return Ref{Kind: kind, Namespace: obj.GetNamespace(), Name: obj.GetName()}
}

// Graph holds the Flux objects read at one moment, the links between
// them (dependsOn, sourceRef, chartRef and the HelmChart of a HelmRelease)
// and explains from them why an object is not Ready.
type Graph struct {
	objects map[Ref]control.Object
}

// graphKinds are the kinds a Graph reads: what a Kustomization or a
// HelmRelease can wait for.
var graphKinds = []string{
	kustomizev1.KustomizationKind, helmv2.HelmReleaseKind,
	sourcev1.GitRepositoryKind, sourcev1.OCIRepositoryKind, sourcev1.BucketKind, sourcev1.HelmRepositoryKind, sourcev1.HelmChartKind,
}

// Load reads every Kustomization, HelmRelease and source in namespace
// (every namespace when empty). Dependencies and sources in other
// namespaces are then reported as not visible rather than missing.
func Load(ctx context.Context, c client.Reader, namespace string) (*Graph, error) {
	var objs []control.Object
	for _, kind := range graphKinds {
		k, ok := control.LookupKind(kind)
		if !ok {
			continue
		}
		list, err := control.List(ctx, c, k, namespace)
		if err != nil {
			if apimeta.IsNoMatchError(err) {
				continue
			}
			return nil, err
		}
		objs = append(objs, list...)
	}
	return New(objs), nil
}

// New makes a Graph of objects already read.
func New(objs []control.Object) *Graph {
	g := &Graph{objects: map[Ref]control.Object{}}
	for _, o := range objs {
		if kind := kindOf(o); kind != "" {
			g.objects[RefOf(kind, o)] = o
		}
	}
	return g
}

// kindOf is the Flux kind of a typed object, or "" for another.
func kindOf(obj control.Object) string {
	switch obj.(type) {
	case *kustomizev1.Kustomization:
		return kustomizev1.KustomizationKind
	case *helmv2.HelmRelease:
		return helmv2.HelmReleaseKind
	case *sourcev1.GitRepository:
		return sourcev1.GitRepositoryKind
	case *sourcev1.OCIRepository:
		return sourcev1.OCIRepositoryKind
	case *sourcev1.Bucket:
		return sourcev1.BucketKind
	case *sourcev1.HelmRepository:
		return sourcev1.HelmRepositoryKind
	case *sourcev1.HelmChart:
		return sourcev1.HelmChartKind
	}
	return ""
}

// Get returns the object ref names, if the graph holds it.
func (g *Graph) Get(ref Ref) (control.Object, bool) {
	o, ok := g.objects[ref]
	return o, ok
}

// All lists the objects of kind, sorted by namespace and name.
func (g *Graph) All(kind string) []Ref {
	var refs []Ref
	for ref := range g.objects {
		if ref.Kind == kind {
			refs = append(refs, ref)
		}
	}
	sortRefs(refs)
	return refs
}

// NotReady lists every object of the graph that is not Ready (suspended
// ones included), Kustomizations and HelmReleases first, then sources,
// each sorted by namespace and name.
func (g *Graph) NotReady() []Ref {
	var out []Ref
	for _, kind := range graphKinds {
		var refs []Ref
		for ref, o := range g.objects {
			if ref.Kind != kind {
				continue
			}
			if s, _ := Classify(o); s != Ready {
				refs = append(refs, ref)
			}
		}
		sortRefs(refs)
		out = append(out, refs...)
	}
	return out
}

// Dependencies resolves the dependsOn entries of a Kustomization or a
// HelmRelease as the controllers do: each names an object of the
// dependent's own kind when one exists (or when neither kind has one),
// else one of the other kind.
func (g *Graph) Dependencies(ref Ref) []Ref {
	var deps []meta.DependencyReference
	switch o := g.objects[ref].(type) {
	case *kustomizev1.Kustomization:
		deps = o.Spec.DependsOn
	case *helmv2.HelmRelease:
		deps = o.Spec.DependsOn
	default:
		return nil
	}
	other := helmv2.HelmReleaseKind
	if ref.Kind == helmv2.HelmReleaseKind {
		other = kustomizev1.KustomizationKind
	}
	out := make([]Ref, 0, len(deps))
	for _, d := range deps {
		ns := d.Namespace
		if ns == "" {
			ns = ref.Namespace
		}
		r := Ref{Kind: ref.Kind, Namespace: ns, Name: d.Name}
		if _, ok := g.objects[r]; !ok {
			if alt := (Ref{Kind: other, Namespace: ns, Name: d.Name}); g.objects[alt] != nil {
				r = alt
			}
		}
		out = append(out, r)
	}
	return out
}

// Source is where ref gets what it applies: a Kustomization's sourceRef, a
// HelmRelease's chartRef or the HelmChart made for its chart, a HelmChart's
// sourceRef. The relation says which field links them.
func (g *Graph) Source(ref Ref) (Ref, string, bool) {
	switch o := g.objects[ref].(type) {
	case *kustomizev1.Kustomization:
		ns := o.Spec.SourceRef.Namespace
		if ns == "" {
			ns = o.Namespace
		}
		return Ref{Kind: o.Spec.SourceRef.Kind, Namespace: ns, Name: o.Spec.SourceRef.Name}, "its source", true
	case *helmv2.HelmRelease:
		if r := o.Spec.ChartRef; r != nil {
			ns := r.Namespace
			if ns == "" {
				ns = o.Namespace
			}
			return Ref{Kind: r.Kind, Namespace: ns, Name: r.Name}, "its chart (spec.chartRef)", true
		}
		if o.Spec.Chart == nil {
			return Ref{}, "", false
		}
		if ns, name, ok := strings.Cut(o.Status.HelmChart, "/"); ok {
			return Ref{Kind: sourcev1.HelmChartKind, Namespace: ns, Name: name}, "its HelmChart", true
		}
		ns := o.Spec.Chart.Spec.SourceRef.Namespace
		if ns == "" {
			ns = o.Namespace
		}
		return Ref{Kind: sourcev1.HelmChartKind, Namespace: ns, Name: o.Namespace + "-" + o.Name}, "its HelmChart", true
	case *sourcev1.HelmChart:
		return Ref{Kind: o.Spec.SourceRef.Kind, Namespace: o.Namespace, Name: o.Spec.SourceRef.Name}, "its source", true
	}
	return Ref{}, "", false
}

// Step is one object on the way from the object asked about to what holds
// it.
type Step struct {
	Ref
	// Relation is how the previous step links to this one: "depends on",
	// "its source", "its HelmChart"; empty for the object asked about.
	Relation string
	State    State
	// Reason and Message are those of the Ready (or Stalled) condition;
	// Summary is Classify's sentence.
	Reason, Message, Summary string
	// Since is when the Ready condition last changed; zero when unknown.
	Since time.Time
	// Revision is the last applied or fetched revision.
	Revision string
}

// Explanation says why an object is not Ready.
type Explanation struct {
	// Subject is the object asked about.
	Subject Step
	// Path leads from the Subject to the Cause, the Cause last; empty
	// when the Subject is its own cause or is Ready.
	Path []Step
	// Cycle is set when the Subject waits on a dependency cycle: the
	// objects on it, the first repeated last.
	Cycle []Ref
	// Fix says what to do, when there is something to say.
	Fix string
}

// Cause is the object that holds the Subject: the last step of the path,
// or the Subject itself.
func (e *Explanation) Cause() Step {
	if len(e.Path) > 0 {
		return e.Path[len(e.Path)-1]
	}
	return e.Subject
}

// Explain walks from ref through its not-Ready dependencies and sources
// to the object that holds it, and says what to do about it.
func (g *Graph) Explain(ref Ref) *Explanation {
	e := &Explanation{Subject: g.step(ref, "")}
	if e.Subject.State == Ready || e.Subject.State == Missing {
		e.Fix = fixFor(e.Subject, true)
		return e
	}
	seen := map[Ref]bool{ref: true}
	cur := e.Subject
	for {
		next, ok := g.holder(cur)
		if !ok {
			break
		}
		if seen[next.Ref] {
			e.Cycle = g.cycleFrom(next.Ref)
			break
		}
		seen[next.Ref] = true
		e.Path = append(e.Path, next)
		cur = next
		if next.State == Missing || next.State == Suspended {
			break
		}
	}
	e.Fix = fixFor(e.Cause(), len(e.Path) == 0)
	if e.Cycle != nil {
		e.Fix = "Remove one of the dependsOn entries of the cycle (" + cycleText(e.Cycle) + "); weir reports the cycle instead of waiting on it."
	}
	return e
}

// holder is what holds cur when it is not Ready: its first dependency
// that is not Ready, else its source when that is not Ready.
func (g *Graph) holder(cur Step) (Step, bool) {
	if cur.State == Ready || cur.State == Suspended || cur.State == Missing {
		return Step{}, false
	}
	for _, d := range g.Dependencies(cur.Ref) {
		if s := g.step(d, "depends on"); s.State != Ready {
			return s, true
		}
	}
	// An object that failed for a reason of its own (a build, an apply, a
	// health check) is its own cause even when its source is not Ready
	// now; one that waits, or failed for want of an artifact, is held by
	// its source. A HelmChart is always held by a repository that fails.
	if cur.State == Failed && cur.Reason != meta.ArtifactFailedReason && cur.Kind != sourcev1.HelmChartKind {
		return Step{}, false
	}
	if src, rel, ok := g.Source(cur.Ref); ok {
		if s := g.step(src, rel); s.State != Ready {
			return s, true
		}
	}
	return Step{}, false
}

// cycleFrom follows not-Ready dependencies from start until it comes back.
func (g *Graph) cycleFrom(start Ref) []Ref {
	path := []Ref{start}
	seen := map[Ref]bool{start: true}
	cur := start
	for range len(g.objects) + 1 {
		var next *Ref
		for _, d := range g.Dependencies(cur) {
			if o, ok := g.objects[d]; ok {
				if s, _ := Classify(o); s != Ready {
					next = &d
					break
				}
			}
		}
		if next == nil {
			return path
		}
		path = append(path, *next)
		if seen[*next] {
			return path
		}
		seen[*next] = true
		cur = *next
	}
	return path
}

// step reads what an Explanation says of one object.
func (g *Graph) step(ref Ref, relation string) Step {
	s := Step{Ref: ref, Relation: relation}
	o, ok := g.objects[ref]
	if !ok {
		s.State = Missing
		s.Summary = "It does not exist."
		return s
	}
	s.State, s.Summary = Classify(o)
	conds := control.Conditions(o)
	if c := apimeta.FindStatusCondition(conds, meta.ReadyCondition); c != nil {
		s.Reason, s.Message, s.Since = c.Reason, c.Message, c.LastTransitionTime.Time
	}
	if c := apimeta.FindStatusCondition(conds, meta.StalledCondition); c != nil && c.Status == "True" && c.Message != "" {
		s.Reason, s.Message = c.Reason, c.Message
	}
	s.Revision = control.StatusOf(o).Revision
	return s
}

// Text says the explanation in one paragraph, times relative to now.
func (e *Explanation) Text(now time.Time) string {
	sub := e.Subject
	switch sub.State {
	case Ready:
		rev := ""
		if sub.Revision != "" {
			rev = " at revision " + sub.Revision
		}
		return fmt.Sprintf("%s is Ready%s.", sub.Ref, rev)
	case Missing:
		return fmt.Sprintf("%s does not exist.", sub.Ref)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s is not Ready", sub.Ref)
	if !sub.Since.IsZero() {
		fmt.Fprintf(&b, " (since %s)", ago(now, sub.Since))
	}
	b.WriteString(". ")
	if len(e.Path) == 0 {
		b.WriteString(sub.Summary)
	} else {
		b.WriteString("It")
		for i, s := range e.Path {
			if i > 0 {
				b.WriteString(", which")
			}
			switch s.Relation {
			case "depends on":
				fmt.Fprintf(&b, " waits for %s", s.Ref)
			default:
				fmt.Fprintf(&b, " waits for %s, %s", s.Ref, s.Relation)
			}
		}
		if e.Cycle != nil {
			fmt.Fprintf(&b, "; the dependencies form a cycle: %s.", cycleText(e.Cycle))
		} else {
			b.WriteString(", which " + stateText(e.Cause(), now) + ".")
		}
	}
	if e.Fix != "" {
		b.WriteString(" Fix: " + e.Fix)
	}
	return strings.TrimSpace(b.String())
}

// WaitingText is the dashboard's sentence for a waiting object: which
// dependency it waits for and what holds the chain.
func (e *Explanation) WaitingText(now time.Time) string {
	if len(e.Path) == 0 {
		return e.Subject.Summary
	}
	first := e.Path[0]
	if first.State == Missing {
		return fmt.Sprintf("Waiting for %s, which does not exist.", first.Ref)
	}
	why := fmt.Sprintf("Waiting for %s to be Ready", first.Ref)
	if first.Relation != "depends on" {
		why = fmt.Sprintf("Waiting for %s, %s, to be Ready", first.Ref, first.Relation)
	}
	if e.Cycle != nil {
		return why + "; the dependencies form a cycle: " + cycleText(e.Cycle) + "."
	}
	if len(e.Path) == 1 {
		if first.State == Failed || first.State == Suspended {
			return why + "; it " + stateText(first, now) + "."
		}
		return why + "."
	}
	c := e.Cause()
	return fmt.Sprintf("%s; the chain is held by %s, which %s.", why, c.Ref, stateText(c, now))
}

// stateText says how a holding object stands, after "which".
func stateText(s Step, now time.Time) string {
	since := ""
	if !s.Since.IsZero() {
		since = " " + ago(now, s.Since)
	}
	reason := ""
	if s.Reason != "" {
		reason = " (" + s.Reason + ")"
	}
	switch s.State {
	case Missing:
		return "does not exist"
	case Suspended:
		return "is suspended"
	case Failed:
		if strings.HasPrefix(s.Summary, "Stalled") {
			return fmt.Sprintf("stalled%s%s: %s", since, reason, s.Message)
		}
		return fmt.Sprintf("failed%s%s: %s", since, reason, s.Message)
	case Waiting:
		return "waits for its dependencies: " + s.Message
	}
	if s.Message != "" {
		return "is reconciling: " + s.Message
	}
	return "is not reconciled yet"
}

func cycleText(refs []Ref) string {
	names := make([]string, len(refs))
	for i, r := range refs {
		names[i] = r.Namespace + "/" + r.Name
	}
	return strings.Join(names, " -> ")
}

// ago says how long before now t was, to the second for the first
// minutes and coarser after.
func ago(now, t time.Time) string {
	d := now.Sub(t)
	switch {
	case d < 0:
		return "just now"
	case d < time.Minute:
		return fmt.Sprintf("%ds ago", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm%ds ago", int(d.Minutes()), int(d.Seconds())%60)
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%dm ago", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd ago", int(d.Hours()/24))
}
