package dryrun

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/fluxcd/pkg/ssa"
	ssautils "github.com/fluxcd/pkg/ssa/utils"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/weirhq/weir/internal/apply"
	"github.com/weirhq/weir/internal/install"
)

// Result is what the API server made of one object.
type Result struct {
	// Object names it: Kind/namespace/name, or Kind/name.
	Object string
	// Err is the server's refusal, in its words; nil when it took the
	// object (or when the object was skipped).
	Err error
	// Skipped says why the object could not be dry-run on this cluster:
	// a warning, not a failure.
	Skipped string
}

// Defined is what the repository itself would create that an object may
// need on the cluster first.
type Defined struct {
	// CRDs are the kinds (group and kind) of the repository's
	// CustomResourceDefinitions.
	CRDs map[schema.GroupKind]bool
	// Namespaces are the names of the repository's Namespaces.
	Namespaces map[string]bool
}

// DefinedBy returns the CRDs and Namespaces among objects.
func DefinedBy(objects []*unstructured.Unstructured) Defined {
	d := Defined{CRDs: map[schema.GroupKind]bool{}, Namespaces: map[string]bool{}}
	for _, o := range objects {
		switch {
		case ssautils.IsCRD(o):
			group, _, _ := unstructured.NestedString(o.Object, "spec", "group")
			kind, _, _ := unstructured.NestedString(o.Object, "spec", "names", "kind")
			d.CRDs[schema.GroupKind{Group: group, Kind: kind}] = true
		case ssautils.IsNamespace(o):
			d.Namespaces[o.GetName()] = true
		}
	}
	return d
}

// Checker dry-runs objects on one cluster.
type Checker struct {
	// Client talks to the cluster. Its RESTMapper must see the kinds of
	// CRDs that Establish created: make the client after Establish.
	Client client.Client
	// Defined tells an object the server cannot judge yet from one it
	// refuses.
	Defined Defined
}

// Ordered returns a copy of objects in the order weir's apply takes them:
// CRDs, Namespaces and cluster roles first, then by kind as Flux orders
// them.
func Ordered(objects []*unstructured.Unstructured) []*unstructured.Unstructured {
	out := slices.Clone(objects)
	sort.Stable(ssa.SortableUnstructureds(out))
	return out
}

// DryRun dry-runs every object, in the order of Ordered, and returns a
// result for each, in that order. The error is for what stops the run: the
// context ended or the cluster could not be reached.
func (d *Checker) DryRun(ctx context.Context, objects []*unstructured.Unstructured) ([]Result, error) {
	var out []Result
	for _, o := range Ordered(objects) {
		r := Result{Object: Name(o)}
		err := d.Client.Patch(ctx, o.DeepCopy(), client.Apply, client.DryRunAll, client.ForceOwnership, client.FieldOwner(apply.FieldManager))
		switch {
		case err == nil:
		case meta.IsNoMatchError(err):
			if served := d.servedVersions(o); served != "" {
				r.Err = fmt.Errorf("the cluster serves %s as %s, not as %s", o.GetKind(), served, o.GetAPIVersion())
			} else {
				r.Skipped = d.unknownKind(o)
			}
		case apierrors.IsNotFound(err) && o.GetNamespace() == "" && d.namespaced(o):
			r.Err = fmt.Errorf("it has no namespace, and %s objects live in one: set metadata.namespace or the Kustomization's targetNamespace (%w)", o.GetKind(), err)
		case missingNamespace(err, o.GetNamespace()):
			if d.Defined.Namespaces[o.GetNamespace()] {
				r.Skipped = fmt.Sprintf("its Namespace %s is only in the repository, and the cluster checks nothing in it before it is applied", o.GetNamespace())
			} else {
				r.Err = fmt.Errorf("%w (and no Namespace in the repository creates it)", err)
			}
		case isAPIError(err):
			r.Err = err
		default:
			return out, stopped(ctx, err, "dry-running "+r.Object)
		}
		out = append(out, r)
	}
	return out, nil
}

// unknownKind says why an object of a kind the server does not serve was
// skipped.
func (d *Checker) unknownKind(o *unstructured.Unstructured) string {
	gvk := o.GroupVersionKind()
	if d.Defined.CRDs[gvk.GroupKind()] {
		return fmt.Sprintf("the cluster does not serve %s (%s) yet: its CustomResourceDefinition is only in the repository", gvk.Kind, gvk.GroupVersion())
	}
	return fmt.Sprintf("the cluster does not serve %s (%s) and no CustomResourceDefinition in the repository defines it: a HelmRelease's chart may install it", gvk.Kind, gvk.GroupVersion())
}

// servedVersions lists the versions in which the cluster serves the
// object's kind, "" when it serves the kind in none.
func (d *Checker) servedVersions(o *unstructured.Unstructured) string {
	mappings, err := d.Client.RESTMapper().RESTMappings(o.GroupVersionKind().GroupKind())
	if err != nil {
		return ""
	}
	var versions []string
	for _, m := range mappings {
		versions = append(versions, m.GroupVersionKind.GroupVersion().String())
	}
	return strings.Join(versions, ", ")
}

// SetNamespace puts in namespace each object of a namespaced kind that
// has none, as Helm installs a chart's objects into the release's
// namespace; objects of a kind the cluster does not serve are left as
// they are.
func (d *Checker) SetNamespace(objects []*unstructured.Unstructured, namespace string) {
	for _, o := range objects {
		if o.GetNamespace() == "" && d.namespaced(o) {
			o.SetNamespace(namespace)
		}
	}
}

// namespaced tells whether the object's kind lives in namespaces.
func (d *Checker) namespaced(o *unstructured.Unstructured) bool {
	gvk := o.GroupVersionKind()
	m, err := d.Client.RESTMapper().RESTMapping(gvk.GroupKind(), gvk.Version)
	return err == nil && m.Scope.Name() == meta.RESTScopeNameNamespace
}

// missingNamespace tells whether err says that namespace does not exist.
func missingNamespace(err error, namespace string) bool {
	var status apierrors.APIStatus
	if namespace == "" || !apierrors.IsNotFound(err) || !errors.As(err, &status) {
		return false
	}
	details := status.Status().Details
	return details != nil && details.Kind == "namespaces" && details.Name == namespace
}

// isAPIError tells whether the API server answered err (a refusal of the
// object), as opposed to a failure to reach it.
func isAPIError(err error) bool {
	var status apierrors.APIStatus
	return errors.As(err, &status) && status.Status().Code != 0 && !apierrors.IsServiceUnavailable(err) && !apierrors.IsTimeout(err) && !apierrors.IsUnauthorized(err)
}

// Establish applies the CRDs and Namespaces among objects for real and
// waits until the CRDs are Established, so that a dry run of the rest
// skips nothing: for a throwaway cluster only. It returns a result per
// object it applied. The error is for what stops the run, as for DryRun.
func (d *Checker) Establish(ctx context.Context, objects []*unstructured.Unstructured) ([]Result, error) {
	var out []Result
	var crds []string
	for _, o := range Ordered(objects) {
		if !ssautils.IsCRD(o) && !ssautils.IsNamespace(o) {
			continue
		}
		r := Result{Object: Name(o)}
		err := d.Client.Patch(ctx, o.DeepCopy(), client.Apply, client.ForceOwnership, client.FieldOwner(apply.FieldManager))
		switch {
		case err == nil:
			if ssautils.IsCRD(o) {
				crds = append(crds, o.GetName())
			}
		case isAPIError(err):
			r.Err = err
		default:
			return out, stopped(ctx, err, "applying "+r.Object)
		}
		out = append(out, r)
	}
	for _, name := range crds {
		if err := install.WaitEstablished(ctx, d.Client, name); err != nil {
			return out, err
		}
	}
	return out, nil
}

// stopped is the error that ends a run on err, which the API server did
// not answer: the context's own when it ended.
func stopped(ctx context.Context, err error, doing string) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return fmt.Errorf("%s: %w", doing, err)
}

// Name names an object as results do: Kind/namespace/name, or Kind/name.
func Name(o *unstructured.Unstructured) string {
	parts := []string{o.GetKind(), o.GetNamespace(), o.GetName()}
	if parts[1] == "" {
		parts = slices.Delete(parts, 1, 2)
	}
	return strings.Join(parts, "/")
}
