package instance

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"github.com/fluxcd/pkg/apis/kustomize"
	"github.com/fluxcd/pkg/apis/meta"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/kustomize/api/krusty"
	kustypes "sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/kustomize/kyaml/resid"
	"sigs.k8s.io/yaml"

	v1 "github.com/weirhq/weir/api/controlplane/v1"
	"github.com/weirhq/weir/internal/install"
	"github.com/weirhq/weir/internal/version"
)

// FieldManager is the server-side apply field manager of what an instance
// applies: Flux Operator's, so that an instance Flux Operator applied is
// taken over without conflicts, and so that `weir install` (field manager
// weir) and the instance never remove each other's fields.
const FieldManager = "flux-operator"

// Labels set on every object an instance applies, naming it, as Flux
// Operator sets them.
const (
	NameLabel      = "fluxcd.controlplane.io/name"
	NamespaceLabel = "fluxcd.controlplane.io/namespace"
)

// weirComponents are the Flux controllers whose reconcilers weir has; the
// others an instance lists are reported as not run.
var weirComponents = []string{v1.SourceController, v1.KustomizeController, v1.HelmController, v1.NotificationController, v1.SourceWatcher}

// fluxDefaults are the components Flux Operator installs by default.
var fluxDefaults = weirComponents[:4]

// SyncName is the name of the sync's source and Kustomization:
// spec.sync.name, else the instance's namespace.
func SyncName(fi *v1.FluxInstance) string {
	if fi.Spec.Sync != nil && fi.Spec.Sync.Name != "" {
		return fi.Spec.Sync.Name
	}
	return fi.Namespace
}

// ComponentOptions shapes weir's in-cluster objects from the instance:
// base gives what the instance does not say (the image and replicas that
// run); the instance gives the components, the tenancy mode, the
// NetworkPolicies and the cluster domain.
func ComponentOptions(fi *v1.FluxInstance, base install.Options) install.Options {
	c := fi.ClusterOrDefault()
	o := base
	o.Namespace = fi.Namespace
	o.LeastPrivilege = c.Multitenant
	o.DefaultServiceAccount = c.TenantDefaultServiceAccount
	o.NoNetworkPolicy = !c.NetworkPolicy
	o.ClusterDomain = c.Domain
	o.Components = Components(fi)
	if !slices.ContainsFunc(fluxDefaults, func(c string) bool { return !slices.Contains(o.Components, c) }) {
		// Flux's default four, with or without source-watcher (which
		// idles without ArtifactGenerators): the Deployment says
		// nothing, as `weir install` writes it.
		o.Components = nil
	}
	return o
}

// Components are the components of the instance that weir runs.
func Components(fi *v1.FluxInstance) []string {
	var out []string
	for _, name := range fi.ComponentNames() {
		if slices.Contains(weirComponents, name) && !slices.Contains(out, name) {
			out = append(out, name)
		}
	}
	return out
}

// Unsupported lists the components the instance asks for that weir does
// not have.
func Unsupported(fi *v1.FluxInstance) []string {
	var out []string
	for _, name := range fi.ComponentNames() {
		if !slices.Contains(weirComponents, name) {
			out = append(out, name)
		}
	}
	return out
}

// Desired returns the objects the instance declares, in apply order:
// weir's in-cluster objects when components is not nil, then the sync's
// source and Kustomization; commonMetadata and spec.kustomize.patches are
// applied to all of them, and each carries the instance's labels.
func Desired(fi *v1.FluxInstance, components []*unstructured.Unstructured) ([]*unstructured.Unstructured, error) {
	objs := slices.Clone(components)
	sync, err := SyncObjects(fi)
	if err != nil {
		return nil, err
	}
	objs = append(objs, sync...)
	if k := fi.Spec.Kustomize; k != nil && len(k.Patches) > 0 {
		if objs, err = patch(objs, k.Patches); err != nil {
			return nil, err
		}
	}
	for _, o := range objs {
		labels := o.GetLabels()
		if labels == nil {
			labels = map[string]string{}
		}
		annotations := o.GetAnnotations()
		if cm := fi.Spec.CommonMetadata; cm != nil {
			for k, v := range cm.Labels {
				labels[k] = v
			}
			if len(cm.Annotations) > 0 && annotations == nil {
				annotations = map[string]string{}
			}
			for k, v := range cm.Annotations {
				annotations[k] = v
			}
			o.SetAnnotations(annotations)
		}
		labels[NameLabel] = fi.Name
		labels[NamespaceLabel] = fi.Namespace
		o.SetLabels(labels)
	}
	return objs, nil
}

// Revision names what an instance applies: weir's version (what runs,
// whatever spec.distribution asks) and the digest of the objects, so that
// any change of the declared objects is a new revision.
func Revision(objs []*unstructured.Unstructured) (string, error) {
	h := sha256.New()
	for _, o := range objs {
		b, err := json.Marshal(o.Object)
		if err != nil {
			return "", fmt.Errorf("hashing %s %s: %w", o.GetKind(), o.GetName(), err)
		}
		h.Write(b)
		h.Write([]byte{'\n'})
	}
	v := version.Version
	if v == "" {
		v = "dev"
	}
	return v + "@sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}

var commitRef = regexp.MustCompile(`^[0-9a-f]{40}([0-9a-f]{24})?$`)

// gitRef reads spec.sync.ref for a GitRepository: a full reference name
// (refs/heads/main, refs/tags/v1, refs/pull/1/head) as Flux Operator
// writes it, a commit SHA, or a bare branch name.
func gitRef(ref string) *sourcev1.GitRepositoryRef {
	switch {
	case strings.HasPrefix(ref, "refs/heads/"):
		return &sourcev1.GitRepositoryRef{Branch: strings.TrimPrefix(ref, "refs/heads/")}
	case strings.HasPrefix(ref, "refs/"):
		return &sourcev1.GitRepositoryRef{Name: ref}
	case commitRef.MatchString(ref):
		return &sourcev1.GitRepositoryRef{Commit: ref}
	default:
		return &sourcev1.GitRepositoryRef{Branch: ref}
	}
}

// SyncObjects are the source and the Kustomization of spec.sync, as the
// instance applies them (without its labels), or nothing without a sync.
func SyncObjects(fi *v1.FluxInstance) ([]*unstructured.Unstructured, error) {
	s := fi.Spec.Sync
	if s == nil {
		return nil, nil
	}
	if s.URL == "" || s.Path == "" || s.Ref == "" {
		return nil, fmt.Errorf("spec.sync needs url, ref and path (url %q, ref %q, path %q)", s.URL, s.Ref, s.Path)
	}
	name := SyncName(fi)
	om := metav1.ObjectMeta{Name: name, Namespace: fi.Namespace}
	interval := metav1.Duration{Duration: time.Minute}
	if s.Interval != nil {
		interval = *s.Interval
	}
	var secret *meta.LocalObjectReference
	if s.PullSecret != "" {
		secret = &meta.LocalObjectReference{Name: s.PullSecret}
	}
	var src runtime.Object
	switch s.Kind {
	case sourcev1.GitRepositoryKind:
		src = &sourcev1.GitRepository{
			TypeMeta:   metav1.TypeMeta{APIVersion: sourcev1.GroupVersion.String(), Kind: s.Kind},
			ObjectMeta: om,
			Spec: sourcev1.GitRepositorySpec{URL: s.URL, Interval: interval, Reference: gitRef(s.Ref),
				SecretRef: secret, Provider: s.Provider},
		}
	case sourcev1.OCIRepositoryKind:
		ref := &sourcev1.OCIRepositoryRef{Tag: s.Ref}
		if strings.HasPrefix(strings.TrimPrefix(s.Ref, "@"), "sha256:") {
			ref = &sourcev1.OCIRepositoryRef{Digest: strings.TrimPrefix(s.Ref, "@")}
		}
		src = &sourcev1.OCIRepository{
			TypeMeta:   metav1.TypeMeta{APIVersion: sourcev1.GroupVersion.String(), Kind: s.Kind},
			ObjectMeta: om,
			Spec: sourcev1.OCIRepositorySpec{URL: s.URL, Interval: interval, Reference: ref,
				SecretRef: secret, Provider: s.Provider},
		}
	case sourcev1.BucketKind:
		src = &sourcev1.Bucket{
			TypeMeta:   metav1.TypeMeta{APIVersion: sourcev1.GroupVersion.String(), Kind: s.Kind},
			ObjectMeta: om,
			Spec: sourcev1.BucketSpec{Endpoint: s.URL, BucketName: s.Ref, Interval: interval,
				SecretRef: secret, Provider: s.Provider},
		}
	default:
		return nil, fmt.Errorf("spec.sync.kind %q is not GitRepository, OCIRepository or Bucket", s.Kind)
	}
	ks := &kustomizev1.Kustomization{
		TypeMeta:   metav1.TypeMeta{APIVersion: kustomizev1.GroupVersion.String(), Kind: kustomizev1.KustomizationKind},
		ObjectMeta: om,
		Spec: kustomizev1.KustomizationSpec{
			Interval:  metav1.Duration{Duration: 10 * time.Minute},
			Path:      s.Path,
			Prune:     true,
			SourceRef: kustomizev1.CrossNamespaceSourceReference{Kind: s.Kind, Name: name},
		},
	}
	var out []*unstructured.Unstructured
	for _, o := range []runtime.Object{src, ks} {
		m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(o)
		if err != nil {
			return nil, fmt.Errorf("converting the sync's %T: %w", o, err)
		}
		u := &unstructured.Unstructured{Object: m}
		unstructured.RemoveNestedField(u.Object, "metadata", "creationTimestamp")
		unstructured.RemoveNestedField(u.Object, "status")
		out = append(out, u)
	}
	return out, nil
}

// patch applies spec.kustomize.patches to objs with the kustomize API, in
// memory, keeping the objects' order.
func patch(objs []*unstructured.Unstructured, patches []kustomize.Patch) ([]*unstructured.Unstructured, error) {
	fs := filesys.MakeFsInMemory()
	k := kustypes.Kustomization{}
	for i, o := range objs {
		b, err := yaml.Marshal(o.Object)
		if err != nil {
			return nil, fmt.Errorf("writing %s %s for patching: %w", o.GetKind(), o.GetName(), err)
		}
		name := fmt.Sprintf("/in/%03d.yaml", i)
		if err := fs.WriteFile(name, b); err != nil {
			return nil, err
		}
		k.Resources = append(k.Resources, strings.TrimPrefix(name, "/in/"))
	}
	for _, p := range patches {
		kp := kustypes.Patch{Patch: p.Patch}
		if t := p.Target; t != nil {
			kp.Target = &kustypes.Selector{
				ResId:              resid.ResId{Gvk: resid.Gvk{Group: t.Group, Version: t.Version, Kind: t.Kind}, Name: t.Name, Namespace: t.Namespace},
				AnnotationSelector: t.AnnotationSelector,
				LabelSelector:      t.LabelSelector,
			}
		}
		k.Patches = append(k.Patches, kp)
	}
	kb, err := yaml.Marshal(k)
	if err != nil {
		return nil, err
	}
	if err := fs.WriteFile("/in/kustomization.yaml", kb); err != nil {
		return nil, err
	}
	opts := krusty.MakeDefaultOptions()
	opts.LoadRestrictions = kustypes.LoadRestrictionsRootOnly
	m, err := krusty.MakeKustomizer(opts).Run(fs, "/in")
	if err != nil {
		return nil, fmt.Errorf("spec.kustomize.patches: %w", err)
	}
	out := make([]*unstructured.Unstructured, 0, len(objs))
	for _, r := range m.Resources() {
		mp, err := r.Map()
		if err != nil {
			return nil, fmt.Errorf("spec.kustomize.patches: %w", err)
		}
		out = append(out, &unstructured.Unstructured{Object: mp})
	}
	return out, nil
}

// InventoryOf lists objs as inventory entries, sorted.
func InventoryOf(objs []*unstructured.Unstructured) *v1.ResourceInventory {
	inv := &v1.ResourceInventory{Entries: []v1.ResourceRef{}}
	for _, o := range objs {
		gvk := o.GroupVersionKind()
		inv.Entries = append(inv.Entries, v1.ResourceRef{ID: entryID(o.GetNamespace(), o.GetName(), gvk.Group, gvk.Kind), Version: gvk.Version})
	}
	slices.SortFunc(inv.Entries, func(a, b v1.ResourceRef) int { return strings.Compare(a.ID, b.ID) })
	return inv
}

// entryID is the inventory's id: <namespace>_<name>_<group>_<kind>, as
// Flux writes it.
func entryID(namespace, name, group, kind string) string {
	return namespace + "_" + name + "_" + group + "_" + kind
}

// parseEntry reads an inventory entry back into an object's identity.
func parseEntry(e v1.ResourceRef) (*unstructured.Unstructured, error) {
	parts := strings.Split(e.ID, "_")
	if len(parts) != 4 {
		return nil, fmt.Errorf("inventory entry %q is not <namespace>_<name>_<group>_<kind>", e.ID)
	}
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(schema.GroupVersionKind{Group: parts[2], Version: e.Version, Kind: parts[3]})
	u.SetNamespace(parts[0])
	u.SetName(parts[1])
	return u, nil
}
