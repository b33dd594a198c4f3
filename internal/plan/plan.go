// Package plan compares two renderings of a repository (two commits, or a
// checkout and what a cluster holds) object by object, grouped by the
// Kustomization or HelmRelease that owns each object, and says what a
// reconcile of the second would do: create, update, replace (an immutable
// field changed), prune, or leave behind.
//
// It knows the controllers' rules for what goes away: a Kustomization
// prunes what it no longer renders only with spec.prune, and a deleted
// Kustomization deletes its objects only if it is itself pruned by the
// Kustomization that applied it; Helm deletes what a chart no longer
// renders, and uninstalls a deleted HelmRelease; an owner that fails to
// render prunes nothing.
package plan

import (
	"fmt"
	"reflect"
	"slices"
	"strings"

	"github.com/pmezard/go-difflib/difflib"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

// Kinds of owners.
const (
	KindKustomization = "Kustomization"
	KindHelmRelease   = "HelmRelease"
)

// Owner is a Kustomization or a HelmRelease as one side rendered it.
type Owner struct {
	Cluster   string
	Kind      string
	Namespace string
	Name      string
	// Prune is the Kustomization's spec.prune; HelmReleases always
	// prune (Helm deletes what the chart no longer renders).
	Prune bool
	// Force is the Kustomization's spec.force, or the HelmRelease's
	// upgrade.force: an immutable change is then a replacement, not a
	// failure.
	Force bool
	// Objects are what the owner applies.
	Objects []*unstructured.Unstructured
	// Fingerprints hold, per Secret (namespace/name), a keyed digest of
	// each value, to tell a changed Secret when its values are masked.
	// Digests are comparable only between renderings of one process.
	Fingerprints map[string]map[string]string
	// Error says why the owner did not render; Skipped why it was not
	// rendered (its source is elsewhere, its chart is not at hand).
	Error   string
	Skipped string
}

// ID is Kind/namespace/name.
func (o *Owner) ID() string { return o.Kind + "/" + o.Namespace + "/" + o.Name }

// Action is what a reconcile does to one object.
type Action string

// The actions, in the order a summary lists them.
const (
	Create  Action = "create"
	Update  Action = "update"
	Replace Action = "replace"
	Prune   Action = "prune"
	Orphan  Action = "orphan"
)

// Actions lists every action in summary order.
var Actions = []Action{Create, Update, Replace, Prune, Orphan}

// Change is what happens to one object.
type Change struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Namespace  string `json:"namespace,omitempty"`
	Name       string `json:"name"`
	Action     Action `json:"action"`
	// Diff is a unified diff of the object's YAML, from before to after;
	// Secret values are masked in it.
	Diff string `json:"diff,omitempty"`
	// Immutable names the fields whose change forces a replacement.
	Immutable []string `json:"immutable,omitempty"`
	// Note explains the action: why an object is orphaned, whose object
	// this one was, what an immutable change does.
	Note string `json:"note,omitempty"`
}

// ID is Kind/namespace/name, or Kind/name for a cluster-scoped object.
func (c Change) ID() string {
	if c.Namespace == "" {
		return c.Kind + "/" + c.Name
	}
	return c.Kind + "/" + c.Namespace + "/" + c.Name
}

// OwnerPlan is what happens to one owner's objects.
type OwnerPlan struct {
	Cluster   string `json:"cluster"`
	Kind      string `json:"kind"`
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	// State is added or removed when the owner itself comes or goes.
	State   string   `json:"state,omitempty"`
	Error   string   `json:"error,omitempty"`
	Skipped string   `json:"skipped,omitempty"`
	Changes []Change `json:"changes"`
}

// Count is how many changes have action a.
func (p *OwnerPlan) Count(a Action) int {
	n := 0
	for _, c := range p.Changes {
		if c.Action == a {
			n++
		}
	}
	return n
}

// Plan is the comparison of two renderings.
type Plan struct {
	From string `json:"from"`
	To   string `json:"to"`
	// Owners are those with a change, an error or a skip, clusters in
	// order, Kustomizations before HelmReleases.
	Owners []*OwnerPlan `json:"owners"`
	// Totals count the changes by action.
	Totals map[Action]int `json:"totals"`
	// Unchanged counts the owners whose objects all stay as they are.
	Unchanged int `json:"unchanged"`
}

// Failed counts the owners that did not render on the second side.
func (p *Plan) Failed() int {
	n := 0
	for _, o := range p.Owners {
		if o.Error != "" {
			n++
		}
	}
	return n
}

// Changed tells whether anything would change.
func (p *Plan) Changed() bool {
	for _, n := range p.Totals {
		if n > 0 {
			return true
		}
	}
	return false
}

// sided is an object as one side renders it, with its owner.
type sided struct {
	owner *Owner
	obj   *unstructured.Unstructured
}

// Compare plans the reconcile that takes a cluster from what from renders
// to what to renders.
func Compare(from, to []*Owner) *Plan {
	p := &Plan{Totals: map[Action]int{}}
	fromOwners, toOwners := ownerIndex(from), ownerIndex(to)
	fromObjects, toObjects := objectIndex(from), objectIndex(to)
	plans := map[string]*OwnerPlan{}
	planOf := func(o *Owner) *OwnerPlan {
		key := o.Cluster + "|" + o.ID()
		if op := plans[key]; op != nil {
			return op
		}
		op := &OwnerPlan{Cluster: o.Cluster, Kind: o.Kind, Namespace: o.Namespace, Name: o.Name, Changes: []Change{}}
		plans[key] = op
		return op
	}
	// An owner that fails or is skipped on either side hides its objects:
	// nothing of it is compared, and nothing of it is pruned.
	blind := map[string]bool{}
	for key, o := range toOwners {
		f := fromOwners[key]
		switch {
		case o.Error != "":
			planOf(o).Error = o.Error
		case o.Skipped != "":
			planOf(o).Skipped = o.Skipped
		case f != nil && (f.Error != "" || f.Skipped != ""):
			planOf(o).Skipped = "it did not render before: " + orString(f.Error, f.Skipped)
		default:
			continue
		}
		blind[key] = true
	}
	for key, o := range fromOwners {
		if _, ok := toOwners[key]; !ok {
			planOf(o).State = "removed"
		}
		if o.Error != "" || o.Skipped != "" {
			blind[key] = true
		}
	}
	for key, o := range toOwners {
		if _, ok := fromOwners[key]; !ok {
			planOf(o).State = "added"
		}
	}

	for _, key := range sortedKeys(toObjects) {
		after := toObjects[key]
		if blind[ownerKey(after.owner)] {
			continue
		}
		before, ok := fromObjects[key]
		if !ok {
			planOf(after.owner).Changes = append(planOf(after.owner).Changes, change(after.obj, Create, "", nil, ""))
			continue
		}
		var note string
		if ownerKey(before.owner) != ownerKey(after.owner) {
			note = "taken over from " + before.owner.Kind + " " + before.owner.Namespace + "/" + before.owner.Name
		}
		diff := objectDiff(before.obj, after.obj)
		secrets := changedSecretKeys(before, after)
		if diff == "" && len(secrets) == 0 && note == "" {
			continue
		}
		c := change(after.obj, Update, diff, nil, note)
		if len(secrets) > 0 {
			c.Note = joinNotes(c.Note, "values changed (masked): "+strings.Join(secrets, ", "))
		}
		if fields := ImmutableChanges(before.obj, after.obj); len(fields) > 0 {
			c.Action, c.Immutable = Replace, fields
			c.Note = joinNotes(c.Note, replaceNote(after.owner, fields))
		}
		planOf(after.owner).Changes = append(planOf(after.owner).Changes, c)
	}

	removal := &removals{fromOwners: fromOwners, toOwners: toOwners, fromObjects: fromObjects, toObjects: toObjects, blind: blind, memo: map[string]removal{}}
	for _, key := range sortedKeys(fromObjects) {
		if _, ok := toObjects[key]; ok {
			continue
		}
		before := fromObjects[key]
		r := removal.of(key)
		if r.skip {
			continue
		}
		planOf(before.owner).Changes = append(planOf(before.owner).Changes, change(before.obj, r.action, objectDiff(before.obj, nil), nil, r.note))
	}

	keys := make([]string, 0, len(plans))
	for k := range plans {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int { return strings.Compare(ownerSortKey(plans[a]), ownerSortKey(plans[b])) })
	for _, k := range keys {
		op := plans[k]
		if len(op.Changes) == 0 && op.Error == "" && op.Skipped == "" && op.State == "" {
			continue
		}
		for _, c := range op.Changes {
			p.Totals[c.Action]++
		}
		p.Owners = append(p.Owners, op)
	}
	for key := range toOwners {
		if plans[key] == nil {
			p.Unchanged++
		}
	}
	return p
}

func ownerSortKey(o *OwnerPlan) string {
	kind := "0"
	if o.Kind == KindHelmRelease {
		kind = "1"
	}
	return o.Cluster + "\x00" + kind + "\x00" + o.Namespace + "\x00" + o.Name
}

// removal is what happens to an object a side no longer renders.
type removal struct {
	action Action
	note   string
	skip   bool // its owner did not render: unknown, nothing is pruned
}

// removals decides, with the controllers' rules, whether objects that
// are no longer rendered are deleted.
type removals struct {
	fromOwners, toOwners   map[string]*Owner
	fromObjects, toObjects map[string]sided
	blind                  map[string]bool
	memo                   map[string]removal
}

// of is what happens to the object key, rendered before and not after.
func (r *removals) of(key string) removal {
	if v, ok := r.memo[key]; ok {
		return v
	}
	r.memo[key] = removal{skip: true} // a cycle of owners: decide nothing
	v := r.decide(key)
	r.memo[key] = v
	return v
}

func (r *removals) decide(key string) removal {
	before := r.fromObjects[key]
	ok := ownerKey(before.owner)
	if r.blind[ok] {
		return removal{skip: true}
	}
	kept := func(note string) removal {
		return removal{action: Orphan, note: note}
	}
	if after, still := r.toOwners[ok]; still {
		// The owner reconciles its new render.
		if after.Kind == KindHelmRelease {
			if keepPolicy(before.obj) {
				return kept("helm.sh/resource-policy: keep: Helm leaves it in the cluster")
			}
			return removal{action: Prune, note: "the chart no longer renders it: Helm deletes it"}
		}
		if !after.Prune {
			return kept("Kustomization " + after.Namespace + "/" + after.Name + " has prune: false: it stays in the cluster, no longer managed")
		}
		if pruneDisabled(before.obj) {
			return kept("kustomize.toolkit.fluxcd.io/prune: disabled: it stays in the cluster")
		}
		return removal{action: Prune}
	}
	// The owner itself is gone: its objects go only if it is deleted.
	self := ownerObjectKey(before.owner)
	gone := removal{action: Prune, note: "its " + before.owner.Kind + " is deleted"}
	if _, applied := r.fromObjects[self]; !applied {
		return kept("its " + before.owner.Kind + " is no longer rendered, but nothing rendered applied it: nothing deletes it, and it keeps its objects")
	}
	if _, still := r.toObjects[self]; still {
		return removal{skip: true} // applied, yet not rendered: unknown
	}
	switch parent := r.of(self); {
	case parent.skip:
		return parent
	case parent.action != Prune:
		return kept("its " + before.owner.Kind + " is no longer in the repository but stays in the cluster (not pruned), and keeps it")
	}
	switch {
	case before.owner.Kind == KindHelmRelease && keepPolicy(before.obj):
		return kept("helm.sh/resource-policy: keep: the uninstall leaves it in the cluster")
	case before.owner.Kind == KindHelmRelease:
		gone.note = "its HelmRelease is deleted: Helm uninstalls the release"
		return gone
	case !before.owner.Prune:
		return kept("its Kustomization is deleted, and had prune: false: it stays in the cluster")
	case pruneDisabled(before.obj):
		return kept("kustomize.toolkit.fluxcd.io/prune: disabled: it stays in the cluster")
	}
	return gone
}

func keepPolicy(u *unstructured.Unstructured) bool {
	return u.GetAnnotations()["helm.sh/resource-policy"] == "keep"
}

func pruneDisabled(u *unstructured.Unstructured) bool {
	return strings.EqualFold(u.GetAnnotations()["kustomize.toolkit.fluxcd.io/prune"], "disabled")
}

func replaceNote(owner *Owner, fields []string) string {
	what := strings.Join(fields, ", ")
	if owner.Force {
		return what + " cannot change in place: the object is deleted and created again (force is set)"
	}
	if owner.Kind == KindHelmRelease {
		return what + " cannot change in place: the Helm upgrade fails unless the HelmRelease sets upgrade.force"
	}
	return what + " cannot change in place: the apply fails unless the Kustomization sets spec.force: true (or the object the kustomize.toolkit.fluxcd.io/force: enabled annotation)"
}

func change(u *unstructured.Unstructured, a Action, diff string, immutable []string, note string) Change {
	return Change{APIVersion: u.GetAPIVersion(), Kind: u.GetKind(), Namespace: u.GetNamespace(), Name: u.GetName(), Action: a, Diff: diff, Immutable: immutable, Note: note}
}

func joinNotes(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}

func orString(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func ownerKey(o *Owner) string { return o.Cluster + "|" + o.ID() }

// ownerObjectKey is the object key of the owner itself, as its parent
// applies it.
func ownerObjectKey(o *Owner) string {
	group := "kustomize.toolkit.fluxcd.io"
	if o.Kind == KindHelmRelease {
		group = "helm.toolkit.fluxcd.io"
	}
	return o.Cluster + "|" + group + "|" + o.Kind + "|" + o.Namespace + "|" + o.Name
}

func objectKey(cluster string, u *unstructured.Unstructured) string {
	gvk := u.GroupVersionKind()
	return cluster + "|" + gvk.Group + "|" + gvk.Kind + "|" + u.GetNamespace() + "|" + u.GetName()
}

func ownerIndex(owners []*Owner) map[string]*Owner {
	m := make(map[string]*Owner, len(owners))
	for _, o := range owners {
		if _, dup := m[ownerKey(o)]; !dup {
			m[ownerKey(o)] = o
		}
	}
	return m
}

// objectIndex keys every object of every owner; an object two owners
// apply counts for the first.
func objectIndex(owners []*Owner) map[string]sided {
	m := map[string]sided{}
	for _, o := range owners {
		if o.Error != "" || o.Skipped != "" {
			continue
		}
		for _, u := range o.Objects {
			k := objectKey(o.Cluster, u)
			if _, dup := m[k]; !dup {
				m[k] = sided{owner: o, obj: u}
			}
		}
	}
	return m
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// changedSecretKeys lists the keys of a Secret whose fingerprints differ
// between the sides (its values masked in both).
func changedSecretKeys(before, after sided) []string {
	if after.obj.GetKind() != "Secret" {
		return nil
	}
	id := after.obj.GetNamespace() + "/" + after.obj.GetName()
	b, a := before.owner.Fingerprints[id], after.owner.Fingerprints[id]
	if b == nil || a == nil {
		return nil
	}
	var keys []string
	for k, v := range a {
		if old, ok := b[k]; ok && old != v {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys
}

// objectDiff is a unified diff of the objects' YAML; "" when they are
// equal. A nil side is an empty document.
func objectDiff(before, after *unstructured.Unstructured) string {
	if before != nil && after != nil && reflect.DeepEqual(before.Object, after.Object) {
		return ""
	}
	text := func(u *unstructured.Unstructured) string {
		if u == nil {
			return ""
		}
		b, err := yaml.Marshal(u.Object)
		if err != nil {
			return fmt.Sprintf("# cannot print the object: %v\n", err)
		}
		return string(b)
	}
	d, err := difflib.GetUnifiedDiffString(difflib.UnifiedDiff{
		A: lines(text(before)), B: lines(text(after)),
		FromFile: "before", ToFile: "after", Context: 3,
	})
	if err != nil {
		return fmt.Sprintf("# cannot compare the objects: %v\n", err)
	}
	return d
}

// lines splits text after each newline, with no empty last line.
func lines(text string) []string {
	if text == "" {
		return nil
	}
	return strings.SplitAfter(strings.TrimSuffix(text, "\n")+"\n", "\n")[:strings.Count(strings.TrimSuffix(text, "\n"), "\n")+1]
}
