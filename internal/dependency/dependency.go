// Package dependency resolves and checks the dependsOn entries of
// Kustomizations and HelmReleases against the cluster. Flux lets a
// Kustomization depend on Kustomizations and a HelmRelease on HelmReleases;
// weir also lets either depend on the other kind: an entry names an object
// of the dependent's own kind when one exists, else one of the other kind.
package dependency

import (
	"context"
	"fmt"

	helmv2 "github.com/fluxcd/helm-controller/api/v2"
	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"github.com/fluxcd/pkg/apis/meta"
	"github.com/fluxcd/pkg/runtime/conditions"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/weirhq/weir/internal/depgraph"
)

// Object is a Kustomization or a HelmRelease as a dependency.
type Object interface {
	client.Object
	GetConditions() []metav1.Condition
}

// Kinds are the kinds that take part in dependsOn.
var Kinds = []string{kustomizev1.KustomizationKind, helmv2.HelmReleaseKind}

func newObject(kind string) Object {
	if kind == helmv2.HelmReleaseKind {
		return &helmv2.HelmRelease{}
	}
	return &kustomizev1.Kustomization{}
}

func other(kind string) string {
	if kind == helmv2.HelmReleaseKind {
		return kustomizev1.KustomizationKind
	}
	return helmv2.HelmReleaseKind
}

// Keys resolves the dependsOn entries of an object of selfKind in
// namespace: each names an object of selfKind when one exists or when
// neither kind has one (a missing dependency), else one of the other kind.
func Keys(ctx context.Context, r client.Reader, selfKind, namespace string, deps []meta.DependencyReference) []depgraph.Key {
	keys := make([]depgraph.Key, 0, len(deps))
	for _, d := range deps {
		ns := d.Namespace
		if ns == "" {
			ns = namespace
		}
		key := depgraph.Key{Kind: selfKind, Namespace: ns, Name: d.Name}
		if err := r.Get(ctx, client.ObjectKey{Namespace: ns, Name: d.Name}, newObject(selfKind)); apierrors.IsNotFound(err) {
			alt := other(selfKind)
			if err := r.Get(ctx, client.ObjectKey{Namespace: ns, Name: d.Name}, newObject(alt)); err == nil {
				key.Kind = alt
			}
		}
		keys = append(keys, key)
	}
	return keys
}

// Get reads the dependency key names; a NotFound error means it is missing.
func Get(ctx context.Context, r client.Reader, key depgraph.Key) (Object, error) {
	obj := newObject(key.Kind)
	if err := r.Get(ctx, client.ObjectKey{Namespace: key.Namespace, Name: key.Name}, obj); err != nil {
		return nil, err
	}
	return obj, nil
}

// Ready reports whether a dependency is Ready for its current generation,
// and says why not in Flux's words otherwise.
func Ready(obj Object) (bool, string) {
	name := obj.GetNamespace() + "/" + obj.GetName()
	observed := int64(0)
	switch o := obj.(type) {
	case *kustomizev1.Kustomization:
		observed = o.Status.ObservedGeneration
	case *helmv2.HelmRelease:
		observed = o.Status.ObservedGeneration
	}
	if obj.GetGeneration() != observed || !conditions.IsReady(obj) {
		return false, fmt.Sprintf("dependency '%s' is not ready", name)
	}
	return true, ""
}

// Label names a dependency in messages: "namespace/name", prefixed with
// its kind when it is not selfKind.
func Label(selfKind string, key depgraph.Key) string {
	if key.Kind == selfKind {
		return key.Namespace + "/" + key.Name
	}
	return key.Kind + "/" + key.Namespace + "/" + key.Name
}

// Dependents maps a Kustomization or HelmRelease that changed to the
// objects of kind that depend on it. Entries recorded before the
// dependency existed name it with the dependent's kind, so both keys are
// looked up.
func Dependents(g *depgraph.Graph, kind string, changed client.Object) []reconcile.Request {
	var reqs []reconcile.Request
	seen := map[depgraph.Key]bool{}
	for _, k := range Kinds {
		for _, d := range g.Dependents(depgraph.Key{Kind: k, Namespace: changed.GetNamespace(), Name: changed.GetName()}) {
			if d.Kind != kind || seen[d] {
				continue
			}
			seen[d] = true
			reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKey{Namespace: d.Namespace, Name: d.Name}})
		}
	}
	return reqs
}

// ReadyChanged passes the changes of Kustomizations and HelmReleases that
// may let their dependents go on or must reach them: turning Ready,
// applying a new revision or generation while Ready, stalling or
// recovering (so that a cycle is reported by each member in turn),
// creation and deletion (a missing dependency appears or goes).
type ReadyChanged struct{ predicate.Funcs }

// Create passes every creation.
func (ReadyChanged) Create(event.CreateEvent) bool { return true }

// Delete passes every deletion.
func (ReadyChanged) Delete(event.DeleteEvent) bool { return true }

// Generic passes nothing.
func (ReadyChanged) Generic(event.GenericEvent) bool { return false }

// Update passes the changes listed on the type.
func (ReadyChanged) Update(e event.UpdateEvent) bool {
	o, ok1 := e.ObjectOld.(Object)
	n, ok2 := e.ObjectNew.(Object)
	if !ok1 || !ok2 {
		return false
	}
	if conditions.IsStalled(n) != conditions.IsStalled(o) {
		return true
	}
	if !conditions.IsReady(n) {
		return false
	}
	return !conditions.IsReady(o) || applied(o) != applied(n)
}

// applied is what a Ready object has applied: its revision and generation.
func applied(obj Object) string {
	switch o := obj.(type) {
	case *kustomizev1.Kustomization:
		return fmt.Sprintf("%s@%d", o.Status.LastAppliedRevision, o.Status.ObservedGeneration)
	case *helmv2.HelmRelease:
		return fmt.Sprintf("%s/%s@%d", o.Status.LastAttemptedRevision, o.Status.LastAttemptedConfigDigest, o.Status.ObservedGeneration)
	}
	return ""
}
