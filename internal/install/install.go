// Package install puts Flux's CustomResourceDefinitions and the flux-system
// namespace into a cluster, and takes them out again, with server-side apply
// so that installing twice changes nothing.
package install

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/weirhq/weir/config/crd"
	"github.com/weirhq/weir/internal/version"
)

// FieldManager is the server-side apply field manager of weir's installer.
const FieldManager = "weir"

// Namespace is where Flux's (and weir's) own objects live by default.
const Namespace = "flux-system"

// Objects returns everything Install applies, in apply order: the CRDs, then
// the flux-system namespace.
func Objects() ([]*unstructured.Unstructured, error) {
	crds, err := crd.All()
	if err != nil {
		return nil, err
	}
	objs := make([]*unstructured.Unstructured, 0, len(crds)+1)
	for _, c := range crds {
		m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(c)
		if err != nil {
			return nil, fmt.Errorf("converting CRD %s: %w", c.Name, err)
		}
		u := &unstructured.Unstructured{Object: m}
		unstructured.RemoveNestedField(u.Object, "status")
		unstructured.RemoveNestedField(u.Object, "metadata", "creationTimestamp")
		u.SetLabels(crdLabels(c.Spec.Group))
		objs = append(objs, u)
	}
	return append(objs, namespaceObject(Namespace)), nil
}

// crdLabels are the labels Flux's installation sets on its CRDs, by which
// the flux CLI finds them (`flux check`): part of flux, the instance, and
// the controller that serves the group.
func crdLabels(group string) map[string]string {
	component := strings.SplitN(group, ".", 2)[0] + "-controller"
	if group == "fluxcd.controlplane.io" {
		component = "flux-operator"
	}
	v := version.Version
	if v == "" {
		v = "dev"
	}
	// `flux check` and `flux version` print part-of-version of the
	// GitRepository CRD as the distribution: flux-<weir's version>.
	return map[string]string{
		"app.kubernetes.io/part-of":   "flux",
		"app.kubernetes.io/instance":  Namespace,
		"app.kubernetes.io/component": component,
		"app.kubernetes.io/version":   v,
	}
}

// Export writes every object Install applies as a multi-document YAML
// stream, followed, when o is not nil, by the in-cluster objects that run
// weir (Components), as `weir install --export` prints them.
func Export(w io.Writer, o *Options) error {
	objs, err := Objects()
	if err != nil {
		return err
	}
	if o != nil {
		if ns := o.namespace(); ns != Namespace {
			objs = append(objs, namespaceObject(ns))
		}
		comps, err := Components(*o)
		if err != nil {
			return err
		}
		objs = append(objs, comps...)
	}
	for _, o := range objs {
		b, err := yaml.Marshal(o.Object)
		if err != nil {
			return fmt.Errorf("encoding %s: %w", o.GetName(), err)
		}
		if _, err := fmt.Fprintf(w, "---\n%s", b); err != nil {
			return err
		}
	}
	return nil
}

// namespaceObject is a namespace of weir's installation.
func namespaceObject(name string) *unstructured.Unstructured {
	ns := &unstructured.Unstructured{}
	ns.SetAPIVersion("v1")
	ns.SetKind("Namespace")
	ns.SetName(name)
	ns.SetLabels(map[string]string{"app.kubernetes.io/part-of": "weir"})
	return ns
}

// Install applies the CRDs and the namespace and waits until every CRD is
// Established, so that objects of these kinds can be created right after.
func Install(ctx context.Context, c client.Client) error {
	_, err := installCRDs(ctx, c)
	return err
}

// InstallAll applies what Install applies and, when o is not nil, what
// InstallComponents applies for it, and returns the objects that changed
// ("Kind namespace/name": created, updated or, for an earlier install's
// cluster-admin binding, deleted); none on a second run with the same
// options.
func InstallAll(ctx context.Context, c client.Client, o *Options, wait time.Duration) ([]string, error) {
	changed, err := installCRDs(ctx, c)
	if err != nil || o == nil {
		return changed, err
	}
	more, err := installComponents(ctx, c, *o, wait)
	return append(changed, more...), err
}

func installCRDs(ctx context.Context, c client.Client) ([]string, error) {
	objs, err := Objects()
	if err != nil {
		return nil, err
	}
	changed, err := applyTracked(ctx, c, objs)
	if err != nil {
		return changed, err
	}
	for _, o := range objs {
		if o.GetKind() != "CustomResourceDefinition" {
			continue
		}
		if err := WaitEstablished(ctx, c, o.GetName()); err != nil {
			return changed, err
		}
	}
	return changed, nil
}

// applyTracked applies objs with server-side apply and returns those whose
// resourceVersion changed.
func applyTracked(ctx context.Context, c client.Client, objs []*unstructured.Unstructured) ([]string, error) {
	return ApplyTracked(ctx, c, FieldManager, objs)
}

// ApplyTracked applies objs with server-side apply as fieldManager, taking
// ownership of their fields, and returns the names ("Kind namespace/name")
// of those whose spec (or, without a generation, whose content) changed:
// what `weir install` and `weir bootstrap` report as changed.
func ApplyTracked(ctx context.Context, c client.Client, fieldManager string, objs []*unstructured.Unstructured) ([]string, error) {
	var changed []string
	for _, o := range objs {
		before := liveVersion(ctx, c, o)
		err := c.Apply(ctx, client.ApplyConfigurationFromUnstructured(o), client.FieldOwner(fieldManager), client.ForceOwnership)
		if err != nil {
			return changed, fmt.Errorf("applying %s %s: %w", o.GetKind(), o.GetName(), err)
		}
		if after := liveVersion(ctx, c, o); after != before {
			changed = append(changed, describeObject(o))
		}
	}
	return changed, nil
}

// liveVersion says which version of the live object is there, "" when
// absent or unreadable: its generation when it has one, so that a status
// written meanwhile by a controller (a Deployment rolling out) is not
// taken for a change, else its resourceVersion.
func liveVersion(ctx context.Context, c client.Client, o *unstructured.Unstructured) string {
	live := &unstructured.Unstructured{}
	live.SetGroupVersionKind(o.GroupVersionKind())
	if err := c.Get(ctx, client.ObjectKeyFromObject(o), live); err != nil {
		return ""
	}
	return SpecVersion(live)
}

// SpecVersion is an object's generation when it has one, else its
// resourceVersion: what changes when its spec or, for objects without a
// generation, its content changes.
func SpecVersion(o client.Object) string {
	if g := o.GetGeneration(); g > 0 {
		return "generation " + strconv.FormatInt(g, 10)
	}
	return o.GetResourceVersion()
}

// describeObject names an object as Kind namespace/name or Kind name.
func describeObject(o client.Object) string {
	kind := o.GetObjectKind().GroupVersionKind().Kind
	if o.GetNamespace() == "" {
		return kind + " " + o.GetName()
	}
	return kind + " " + o.GetNamespace() + "/" + o.GetName()
}

// WaitEstablished waits, a minute at most, until the CRD name is
// Established: objects of its kind can be created.
func WaitEstablished(ctx context.Context, c client.Client, name string) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for {
		var got apiextensionsv1.CustomResourceDefinition
		if err := c.Get(ctx, client.ObjectKey{Name: name}, &got); err == nil {
			for _, cond := range got.Status.Conditions {
				if cond.Type == apiextensionsv1.Established && cond.Status == apiextensionsv1.ConditionTrue {
					return nil
				}
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("CRD %s was not Established within a minute: %w", name, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// ErrInUse is returned by Uninstall when custom resources still exist and
// force was not given.
var ErrInUse = errors.New("custom resources still exist")

// Uninstall removes what Install and InstallComponents applied: weir's
// in-cluster objects of o (see UninstallComponents), then the CRDs (and
// with them every object of their kinds) and, unless keepNamespace, the
// flux-system namespace. It refuses, before removing anything, while
// objects of these kinds exist unless force is set; with force it first
// removes their finalizers so that deletion cannot hang without a running
// controller.
func Uninstall(ctx context.Context, c client.Client, o Options, force, keepNamespace bool) error {
	crds, err := crd.All()
	if err != nil {
		return err
	}
	inUse, err := customResources(ctx, c, crds)
	if err != nil {
		return err
	}
	if len(inUse) > 0 && !force {
		return fmt.Errorf("%w: %s; delete them first or pass --force", ErrInUse, summarize(inUse))
	}
	if err := UninstallComponents(ctx, c, o); err != nil {
		return err
	}
	for _, o := range inUse {
		if len(o.GetFinalizers()) == 0 {
			continue
		}
		patch := client.MergeFrom(o.DeepCopy())
		o.SetFinalizers(nil)
		if err := c.Patch(ctx, o, patch); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("removing the finalizers of %s %s/%s: %w", o.GetKind(), o.GetNamespace(), o.GetName(), err)
		}
	}
	for _, cr := range crds {
		obj := &apiextensionsv1.CustomResourceDefinition{ObjectMeta: metav1.ObjectMeta{Name: cr.Name}}
		if err := c.Delete(ctx, obj); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("deleting CRD %s: %w", cr.Name, err)
		}
	}
	if !keepNamespace {
		if err := c.Delete(ctx, namespaceObject(Namespace)); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("deleting namespace %s: %w", Namespace, err)
		}
	}
	return nil
}

// customResources lists every object of the CRDs' served kinds.
func customResources(ctx context.Context, c client.Client, crds []*apiextensionsv1.CustomResourceDefinition) ([]*unstructured.Unstructured, error) {
	var out []*unstructured.Unstructured
	for _, cr := range crds {
		version := storageVersion(cr)
		list := &unstructured.UnstructuredList{}
		list.SetGroupVersionKind(schema.GroupVersionKind{Group: cr.Spec.Group, Version: version, Kind: cr.Spec.Names.ListKind})
		err := c.List(ctx, list)
		if apierrors.IsNotFound(err) || meta.IsNoMatchError(err) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("listing %s: %w", cr.Spec.Names.Plural, err)
		}
		for i := range list.Items {
			out = append(out, &list.Items[i])
		}
	}
	return out, nil
}

func storageVersion(cr *apiextensionsv1.CustomResourceDefinition) string {
	for _, v := range cr.Spec.Versions {
		if v.Storage {
			return v.Name
		}
	}
	return cr.Spec.Versions[0].Name
}

func summarize(objs []*unstructured.Unstructured) string {
	count := map[string]int{}
	for _, o := range objs {
		count[o.GetKind()]++
	}
	kinds := make([]string, 0, len(count))
	for k := range count {
		kinds = append(kinds, k)
	}
	// By kind, not by the text with its count: "2 GitRepository, 1 Kustomization".
	sort.Strings(kinds)
	for i, k := range kinds {
		kinds[i] = fmt.Sprintf("%d %s", count[k], k)
	}
	return strings.Join(kinds, ", ")
}
