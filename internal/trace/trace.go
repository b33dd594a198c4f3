// Package trace finds what manages a Kubernetes object, as `flux trace`
// does: the Kustomization or HelmRelease whose ownership labels it carries
// (and whose inventory lists it), the Kustomization that applied that
// HelmRelease, and the sources down to the revision, the Git commit or the
// OCI digest the object came from.
package trace

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/fluxcd/cli-utils/pkg/object"
	helmv2 "github.com/fluxcd/helm-controller/api/v2"
	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"github.com/fluxcd/pkg/apis/meta"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/weirhq/weir/internal/control"
)

// The labels Flux's controllers, and weir, put on what they apply.
const (
	kustomizeName      = "kustomize.toolkit.fluxcd.io/name"
	kustomizeNamespace = "kustomize.toolkit.fluxcd.io/namespace"
	helmName           = "helm.toolkit.fluxcd.io/name"
	helmNamespace      = "helm.toolkit.fluxcd.io/namespace"
)

// ErrNotManaged is returned for an object that no Kustomization or
// HelmRelease manages.
var ErrNotManaged = errors.New("not managed by Flux")

// Field is one line of a link: a name and its value.
type Field struct {
	Name, Value string
}

// Link is one object of the chain, from the object traced to its last
// source.
type Link struct {
	Kind, Namespace, Name string
	// Fields are what `flux trace` prints of the object, in order.
	Fields []Field
}

// Result is the chain that manages an object.
type Result struct {
	// Links start with the object traced and end with its source.
	Links []Link
	// Warnings say where the chain is not what its labels claim: an
	// inventory that does not list the object, a manager that is gone.
	Warnings []string
}

// Resolve finds the object kindOrResource/name in namespace: kind is a
// kind or a resource as kubectl takes it ("Deployment", "deployment",
// "deploy", "deployments.apps"), apiVersion optional.
func Resolve(ctx context.Context, c client.Client, kind, apiVersion, namespace, name string) (*unstructured.Unstructured, error) {
	gvk, err := resolveKind(c.RESTMapper(), kind, apiVersion)
	if err != nil {
		return nil, err
	}
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(gvk)
	key := client.ObjectKey{Namespace: namespace, Name: name}
	if m, err := c.RESTMapper().RESTMapping(gvk.GroupKind(), gvk.Version); err == nil && m.Scope.Name() == apimeta.RESTScopeNameRoot {
		key.Namespace = ""
	}
	if err := c.Get(ctx, key, u); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("%s %s not found", gvk.Kind, describeKey(key))
		}
		return nil, fmt.Errorf("reading %s %s: %w", gvk.Kind, describeKey(key), err)
	}
	return u, nil
}

// resolveKind reads a kind or a resource name into a GroupVersionKind.
func resolveKind(m apimeta.RESTMapper, kind, apiVersion string) (schema.GroupVersionKind, error) {
	if apiVersion != "" {
		gv, err := schema.ParseGroupVersion(apiVersion)
		if err != nil {
			return schema.GroupVersionKind{}, fmt.Errorf("--api-version %q: %w", apiVersion, err)
		}
		if gvk, err := m.KindFor(gv.WithResource(strings.ToLower(kind))); err == nil {
			return gvk, nil
		}
		return gv.WithKind(kind), nil
	}
	resource, group, _ := strings.Cut(strings.ToLower(kind), ".")
	gvk, err := m.KindFor(schema.GroupVersionResource{Group: group, Resource: resource})
	if err != nil {
		return schema.GroupVersionKind{}, fmt.Errorf("unknown kind %q: %w", kind, err)
	}
	return gvk, nil
}

// Trace follows obj to what manages it and that manager's sources.
func Trace(ctx context.Context, c client.Client, obj *unstructured.Unstructured) (*Result, error) {
	r := &Result{}
	gvk := obj.GroupVersionKind()
	r.Links = append(r.Links, Link{Kind: gvk.Kind, Namespace: obj.GetNamespace(), Name: obj.GetName(), Fields: []Field{
		{gvk.Kind, obj.GetName()}, {"Namespace", obj.GetNamespace()}, {"Status", "Managed by Flux"},
	}})
	labels := obj.GetLabels()
	id := objectID(obj)
	switch {
	case labels[helmName] != "":
		hr := &helmv2.HelmRelease{}
		if err := r.follow(ctx, c, hr, labels[helmNamespace], labels[helmName], ""); err != nil {
			return nil, err
		}
		if err := r.helmRelease(ctx, c, hr); err != nil {
			return nil, err
		}
	case labels[kustomizeName] != "":
		ks := &kustomizev1.Kustomization{}
		if err := r.follow(ctx, c, ks, labels[kustomizeNamespace], labels[kustomizeName], id); err != nil {
			return nil, err
		}
		if err := r.kustomization(ctx, c, ks); err != nil {
			return nil, err
		}
	default:
		// No labels: an inventory that lists the object still says who
		// applied it (labels can be removed by hand).
		ks, err := inventoryOwner(ctx, c, id)
		if err != nil {
			return nil, err
		}
		if ks == nil {
			r.Links[0].Fields[2].Value = "Not managed by Flux"
			return r, fmt.Errorf("%s %s: %w", gvk.Kind, describeKey(client.ObjectKeyFromObject(obj)), ErrNotManaged)
		}
		r.Warnings = append(r.Warnings, fmt.Sprintf("the object carries no %s labels, but Kustomization %s/%s lists it in its inventory", kustomizeName, ks.Namespace, ks.Name))
		if err := r.kustomization(ctx, c, ks); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// follow reads the manager named by labels into obj; inventoryID, when
// set, is checked against a Kustomization's inventory.
func (r *Result) follow(ctx context.Context, c client.Client, obj client.Object, namespace, name, inventoryID string) error {
	if err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, obj); err != nil {
		if apierrors.IsNotFound(err) {
			return fmt.Errorf("the object's labels name %T %s/%s, which does not exist: it was deleted and left its objects behind (prune disabled or deletionPolicy Orphan)", obj, namespace, name)
		}
		return fmt.Errorf("reading %s/%s: %w", namespace, name, err)
	}
	if ks, ok := obj.(*kustomizev1.Kustomization); ok && inventoryID != "" && !inInventory(ks, inventoryID) {
		r.Warnings = append(r.Warnings, fmt.Sprintf("Kustomization %s/%s does not list the object in its inventory: it no longer applies it, and will not prune it", namespace, name))
	}
	return nil
}

// kustomization adds a Kustomization and its source to the chain.
func (r *Result) kustomization(ctx context.Context, c client.Client, ks *kustomizev1.Kustomization) error {
	fields := []Field{{"Kustomization", ks.Name}, {"Namespace", ks.Namespace}}
	if ks.Spec.TargetNamespace != "" {
		fields = append(fields, Field{"Target", ks.Spec.TargetNamespace})
	}
	fields = append(fields, Field{"Path", ks.Spec.Path}, Field{"Revision", ks.Status.LastAppliedRevision})
	fields = append(fields, statusFields(ks)...)
	r.Links = append(r.Links, Link{Kind: kustomizev1.KustomizationKind, Namespace: ks.Namespace, Name: ks.Name, Fields: fields})
	ns := ks.Spec.SourceRef.Namespace
	if ns == "" {
		ns = ks.Namespace
	}
	return r.source(ctx, c, ks.Spec.SourceRef.Kind, ns, ks.Spec.SourceRef.Name)
}

// helmRelease adds a HelmRelease, its chart and source, and when a
// Kustomization applied the HelmRelease, that Kustomization too.
func (r *Result) helmRelease(ctx context.Context, c client.Client, hr *helmv2.HelmRelease) error {
	fields := []Field{{"HelmRelease", hr.Name}, {"Namespace", hr.Namespace}}
	if hr.Spec.TargetNamespace != "" {
		fields = append(fields, Field{"Target", hr.Spec.TargetNamespace})
	}
	rev := hr.Status.LastAttemptedRevision
	if h := hr.Status.History.Latest(); h != nil {
		rev = h.ChartVersion
		if h.OCIDigest != "" {
			rev += "@" + h.OCIDigest
		}
	}
	fields = append(fields, Field{"Revision", rev})
	fields = append(fields, statusFields(hr)...)
	r.Links = append(r.Links, Link{Kind: helmv2.HelmReleaseKind, Namespace: hr.Namespace, Name: hr.Name, Fields: fields})

	switch {
	case hr.Spec.ChartRef != nil:
		ns := hr.Spec.ChartRef.Namespace
		if ns == "" {
			ns = hr.Namespace
		}
		if err := r.source(ctx, c, hr.Spec.ChartRef.Kind, ns, hr.Spec.ChartRef.Name); err != nil {
			return err
		}
	case hr.Spec.Chart != nil:
		ns, name, ok := strings.Cut(hr.Status.HelmChart, "/")
		if !ok {
			ns = hr.Spec.Chart.Spec.SourceRef.Namespace
			if ns == "" {
				ns = hr.Namespace
			}
			name = hr.Namespace + "-" + hr.Name
		}
		if err := r.source(ctx, c, sourcev1.HelmChartKind, ns, name); err != nil {
			return err
		}
	}
	// The Kustomization that applied the HelmRelease, as `flux trace`
	// shows it above the release's sources.
	if l := hr.GetLabels(); l[kustomizeName] != "" {
		ks := &kustomizev1.Kustomization{}
		if err := c.Get(ctx, client.ObjectKey{Namespace: l[kustomizeNamespace], Name: l[kustomizeName]}, ks); err == nil {
			return r.kustomization(ctx, c, ks)
		}
	}
	return nil
}

// source adds a source object to the chain, and a HelmChart's own source.
func (r *Result) source(ctx context.Context, c client.Client, kind, namespace, name string) error {
	k, ok := control.LookupKind(kind)
	if !ok {
		r.Warnings = append(r.Warnings, fmt.Sprintf("the source is a %s, which weir does not trace", kind))
		return nil
	}
	obj, err := control.Get(ctx, c, k, client.ObjectKey{Namespace: namespace, Name: name})
	if err != nil {
		if apierrors.IsNotFound(err) {
			r.Warnings = append(r.Warnings, fmt.Sprintf("its source %s %s/%s does not exist", kind, namespace, name))
			return nil
		}
		return err
	}
	fields := []Field{{k.Name, name}, {"Namespace", namespace}}
	var next func() error
	switch o := obj.(type) {
	case *sourcev1.GitRepository:
		fields = append(fields, Field{"URL", o.Spec.URL})
		if ref := o.Spec.Reference; ref != nil {
			for _, f := range []Field{{"Branch", ref.Branch}, {"Tag", ref.Tag}, {"SemVer", ref.SemVer}, {"Ref", ref.Name}, {"Commit", ref.Commit}} {
				if f.Value != "" {
					fields = append(fields, f)
				}
			}
		}
		fields = append(fields, artifactFields(o.Status.Artifact)...)
	case *sourcev1.OCIRepository:
		fields = append(fields, Field{"URL", o.Spec.URL})
		if ref := o.Spec.Reference; ref != nil {
			for _, f := range []Field{{"Tag", ref.Tag}, {"SemVer", ref.SemVer}, {"Digest", ref.Digest}} {
				if f.Value != "" {
					fields = append(fields, f)
				}
			}
		}
		fields = append(fields, artifactFields(o.Status.Artifact)...)
	case *sourcev1.HelmRepository:
		fields = append(fields, Field{"URL", o.Spec.URL})
		fields = append(fields, artifactFields(o.Status.Artifact)...)
	case *sourcev1.HelmChart:
		fields = append(fields, Field{"Chart", o.Spec.Chart})
		if o.Spec.Version != "" {
			fields = append(fields, Field{"Version", o.Spec.Version})
		}
		fields = append(fields, artifactFields(o.Status.Artifact)...)
		next = func() error { return r.source(ctx, c, o.Spec.SourceRef.Kind, namespace, o.Spec.SourceRef.Name) }
	}
	fields = append(fields, statusFields(obj)...)
	r.Links = append(r.Links, Link{Kind: k.Name, Namespace: namespace, Name: name, Fields: fields})
	if next != nil {
		return next()
	}
	return nil
}

// artifactFields are a source's revision and, for an artifact pushed by
// `flux push` or a CI, the Git source and commit it was built from.
func artifactFields(a *meta.Artifact) []Field {
	if a == nil {
		return []Field{{"Revision", "(no artifact yet)"}}
	}
	out := []Field{{"Revision", a.Revision}}
	if v := a.Metadata["org.opencontainers.image.source"]; v != "" {
		out = append(out, Field{"Origin Source", v})
	}
	if v := a.Metadata["org.opencontainers.image.revision"]; v != "" {
		out = append(out, Field{"Origin Revision", v})
	}
	return out
}

// statusFields say when the object was last reconciled and its Ready
// message, as `flux trace` does.
func statusFields(obj control.Object) []Field {
	ready := apimeta.FindStatusCondition(control.Conditions(obj), meta.ReadyCondition)
	if ready == nil {
		return []Field{{"Status", "Not reconciled yet"}}
	}
	status := "Last reconciled at " + ready.LastTransitionTime.UTC().Format(time.RFC3339)
	if ready.Status != "True" {
		status = "Not Ready since " + ready.LastTransitionTime.UTC().Format(time.RFC3339) + " (" + ready.Reason + ")"
	}
	return []Field{{"Status", status}, {"Message", ready.Message}}
}

// objectID is the object's inventory entry ID, as cli-utils writes it.
func objectID(obj *unstructured.Unstructured) string {
	gk := obj.GroupVersionKind().GroupKind()
	return object.ObjMetadata{Namespace: obj.GetNamespace(), Name: obj.GetName(), GroupKind: gk}.String()
}

func inInventory(ks *kustomizev1.Kustomization, id string) bool {
	if ks.Status.Inventory == nil {
		return false
	}
	for _, e := range ks.Status.Inventory.Entries {
		if e.ID == id {
			return true
		}
	}
	return false
}

// inventoryOwner finds the Kustomization whose inventory lists id.
func inventoryOwner(ctx context.Context, c client.Client, id string) (*kustomizev1.Kustomization, error) {
	list := &kustomizev1.KustomizationList{}
	if err := c.List(ctx, list); err != nil {
		return nil, fmt.Errorf("listing Kustomizations: %w", err)
	}
	for i := range list.Items {
		if inInventory(&list.Items[i], id) {
			return &list.Items[i], nil
		}
	}
	return nil, nil
}

func describeKey(k client.ObjectKey) string {
	if k.Namespace == "" {
		return k.Name
	}
	return k.Namespace + "/" + k.Name
}
