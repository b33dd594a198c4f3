package cli

import (
	"context"
	"fmt"
	"path"
	"strings"

	helmv2 "github.com/fluxcd/helm-controller/api/v2"
	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"github.com/fluxcd/pkg/ssa/jsondiff"
	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/weirhq/weir/internal/apply"
	"github.com/weirhq/weir/internal/helm"
	"github.com/weirhq/weir/internal/plan"
	"github.com/weirhq/weir/internal/render"
	"github.com/weirhq/weir/internal/repo"
)

// livePlan plans the checkout at root against the live cluster: the
// Kustomizations and HelmReleases the cluster runs, with their
// inventories and releases, are the "from" side; each object rendered
// from root is server-side dry-run applied on the cluster for the "to"
// side, so that what changes is what the API server would change.
func livePlan(cmd *cobra.Command, g *globalOptions, root string, o planOptions, offline offlineOptions) (*plan.Plan, error) {
	ctx := cmd.Context()
	c, err := objectClient(g)
	if err != nil {
		return nil, err
	}
	cfg, err := g.restConfig()
	if err != nil {
		return nil, err
	}
	r, _, err := openRepository(root, root, offline)
	if err != nil {
		return nil, err
	}
	if offline.cluster == "" {
		if offline.cluster, err = liveSyncRoot(ctx, c, r.Clusters()); err != nil {
			return nil, err
		}
	}
	kept := &renderedOwners{releases: map[*plan.Owner]*renderedHelmRelease{}, ignore: map[*plan.Owner][]kustomizev1.IgnoreRule{}}
	to, err := planOwners(cmd, root, o, offline, kept)
	if err != nil {
		return nil, err
	}
	cluster := ""
	for _, t := range to {
		cluster = t.Cluster
	}
	lp := &livePlanner{ctx: ctx, c: c, cfg: cfg, cluster: cluster, charts: map[string]string{}}
	from, err := lp.fromCluster(to)
	if err != nil {
		return nil, err
	}
	for _, t := range to {
		if t.Error != "" || t.Skipped != "" {
			continue
		}
		switch t.Kind {
		case plan.KindKustomization:
			lp.dryRun(t, kept.ignore[t])
		case plan.KindHelmRelease:
			lp.matchChartVersion(t, kept.releases[t])
		}
	}
	return plan.Compare(from, to), nil
}

// liveSyncRoot picks the repository's cluster that the live cluster
// syncs: the one whose sync root is the path of the live flux-system
// Kustomization, or the only one.
func liveSyncRoot(ctx context.Context, c client.Client, clusters []*repo.Cluster) (string, error) {
	ks := &kustomizev1.Kustomization{}
	err := c.Get(ctx, client.ObjectKey{Namespace: "flux-system", Name: "flux-system"}, ks)
	if err != nil && !apierrors.IsNotFound(err) && !apimeta.IsNoMatchError(err) {
		return "", fmt.Errorf("reading the cluster's flux-system Kustomization: %w", err)
	}
	var names []string
	if err == nil {
		want := strings.TrimPrefix(path.Clean("/"+ks.Spec.Path), "/")
		if want == "" {
			want = "."
		}
		for _, cl := range clusters {
			if cl.Path == want {
				return cl.Path, nil
			}
		}
	}
	if len(clusters) == 1 {
		return clusters[0].Path, nil
	}
	for _, cl := range clusters {
		names = append(names, cl.Name+" ("+cl.Path+")")
	}
	return "", fmt.Errorf("the live cluster's flux-system Kustomization does not name one of the repository's clusters (%s): pass --sync-root", strings.Join(names, ", "))
}

// livePlanner reads the live side of a plan.
type livePlanner struct {
	ctx     context.Context
	c       client.Client
	cfg     *rest.Config
	cluster string
	// charts are the chart versions of the live releases, by
	// namespace/name.
	charts map[string]string
}

// fromCluster reads, as plan owners, the live Kustomizations the
// checkout renders and those their inventories hold (what a removed app
// leaves), each with the live objects of its inventory, and the live
// releases of the HelmReleases among them.
func (lp *livePlanner) fromCluster(to []*plan.Owner) ([]*plan.Owner, error) {
	type ref struct{ kind, namespace, name string }
	var queue []ref
	seen := map[ref]bool{}
	push := func(r ref) {
		if !seen[r] {
			seen[r] = true
			queue = append(queue, r)
		}
	}
	for _, t := range to {
		push(ref{t.Kind, t.Namespace, t.Name})
	}
	var from []*plan.Owner
	for len(queue) > 0 {
		r := queue[0]
		queue = queue[1:]
		var owner *plan.Owner
		var err error
		if r.kind == plan.KindKustomization {
			owner, err = lp.liveKustomization(r.namespace, r.name, func(u *unstructured.Unstructured) {
				switch {
				case isFluxKind(u, kustomizev1.GroupVersion.Group, kustomizev1.KustomizationKind):
					push(ref{plan.KindKustomization, u.GetNamespace(), u.GetName()})
				case isFluxKind(u, helmv2.GroupVersion.Group, helmv2.HelmReleaseKind):
					push(ref{plan.KindHelmRelease, u.GetNamespace(), u.GetName()})
				}
			})
		} else {
			owner, err = lp.liveRelease(r.namespace, r.name)
		}
		if err != nil {
			return nil, err
		}
		if owner != nil {
			from = append(from, owner)
		}
	}
	return from, nil
}

func isFluxKind(u *unstructured.Unstructured, group, kind string) bool {
	return u.GetKind() == kind && u.GroupVersionKind().Group == group
}

// liveKustomization is the live Kustomization namespace/name with the
// live objects of its inventory (nil when the cluster has none);
// reached is called with each.
func (lp *livePlanner) liveKustomization(namespace, name string, reached func(*unstructured.Unstructured)) (*plan.Owner, error) {
	ks := &kustomizev1.Kustomization{}
	switch err := lp.c.Get(lp.ctx, client.ObjectKey{Namespace: namespace, Name: name}, ks); {
	case apierrors.IsNotFound(err):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("reading Kustomization %s/%s: %w", namespace, name, err)
	}
	owner := &plan.Owner{Cluster: lp.cluster, Kind: plan.KindKustomization, Namespace: namespace, Name: name, Prune: ks.Spec.Prune, Force: ks.Spec.Force}
	inv, err := apply.InventoryStore{Reader: lp.c}.Of(lp.ctx, ks)
	if err != nil {
		return nil, err
	}
	stubs, err := apply.Stale(inv, nil)
	if err != nil {
		return nil, fmt.Errorf("reading the inventory of Kustomization %s/%s: %w", namespace, name, err)
	}
	var live []*unstructured.Unstructured
	for _, stub := range stubs {
		u := &unstructured.Unstructured{}
		u.SetGroupVersionKind(stub.GroupVersionKind())
		err := lp.c.Get(lp.ctx, client.ObjectKeyFromObject(stub), u)
		switch {
		case apierrors.IsNotFound(err) || apimeta.IsNoMatchError(err):
			continue // already gone
		case err != nil:
			return nil, fmt.Errorf("reading %s of Kustomization %s/%s: %w", objectID(stub.GetKind(), stub.GetNamespace(), stub.GetName()), namespace, name, err)
		}
		cleanLive(u)
		reached(u)
		live = append(live, u)
	}
	owner.Fingerprints = render.FingerprintSecrets(live)
	if err := render.MaskSecrets(live); err != nil {
		return nil, err
	}
	owner.Objects = live
	return owner, nil
}

// liveRelease is the live HelmRelease namespace/name with the objects of
// its latest release (nil when the cluster has no such HelmRelease).
func (lp *livePlanner) liveRelease(namespace, name string) (*plan.Owner, error) {
	hr := &helmv2.HelmRelease{}
	switch err := lp.c.Get(lp.ctx, client.ObjectKey{Namespace: namespace, Name: name}, hr); {
	case apierrors.IsNotFound(err) || apimeta.IsNoMatchError(err):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("reading HelmRelease %s/%s: %w", namespace, name, err)
	}
	owner := &plan.Owner{Cluster: lp.cluster, Kind: plan.KindHelmRelease, Namespace: namespace, Name: name, Prune: true}
	last, err := helm.LastRelease(lp.cfg, hr)
	if err != nil {
		return nil, err
	}
	if last == nil {
		return owner, nil // nothing installed yet: every object is a create
	}
	lp.charts[namespace+"/"+name] = last.Chart.Metadata.Version
	if err := setReleaseObjects(owner, last); err != nil {
		return nil, fmt.Errorf("HelmRelease %s/%s: %w", namespace, name, err)
	}
	return owner, nil
}

// matchChartVersion renders t again with the live release's chart
// version when that is the local chart's version with the OCI
// artifact's digest appended (as helm-controller records charts from
// OCIRepositories): otherwise every object's chart label would differ.
func (lp *livePlanner) matchChartVersion(t *plan.Owner, rendered *renderedHelmRelease) {
	lv, ok := lp.charts[t.Namespace+"/"+t.Name]
	if rendered == nil || !ok || lv == rendered.chart.Metadata.Version || helm.WithoutChartDigest(lv) != rendered.chart.Metadata.Version {
		return
	}
	ch := *rendered.chart
	md := *ch.Metadata
	md.Version = lv
	ch.Metadata = &md
	rel, err := helm.Template(lp.ctx, rendered.hr, &ch, rendered.values, rendered.caps)
	if err != nil {
		return // the first render stands
	}
	_ = setReleaseObjects(t, rel)
}

// dryRun replaces each object of t that the cluster already holds by
// the server-side dry run of applying it, so that the comparison with
// the live object shows only what the apply would change; new objects
// stay as rendered. An object the API server refuses fails t, as it
// fails the Kustomization's apply; one refused for an immutable field
// stays as rendered, and the plan shows it replaced. The paths spec.ignore
// names are left out of what is applied to an object that exists, as the
// apply leaves them.
func (lp *livePlanner) dryRun(t *plan.Owner, ignore []kustomizev1.IgnoreRule) {
	rules, err := jsondiff.CompileIgnoreRules(apply.IgnoreRules(ignore))
	if err != nil {
		t.Error = "spec.ignore: " + err.Error()
		return
	}
	var refused []string
	out := make([]*unstructured.Unstructured, 0, len(t.Objects))
	for _, u := range t.Objects {
		live := &unstructured.Unstructured{}
		live.SetGroupVersionKind(u.GroupVersionKind())
		err := lp.c.Get(lp.ctx, client.ObjectKeyFromObject(u), live)
		if apierrors.IsNotFound(err) || apimeta.IsNoMatchError(err) {
			out = append(out, u) // created: nothing to dry-run against
			continue
		}
		if err != nil {
			refused = append(refused, fmt.Sprintf("%s: reading it: %v", objectID(u.GetKind(), u.GetNamespace(), u.GetName()), err))
			continue
		}
		dry := u.DeepCopy()
		for sel, paths := range rules {
			if sel.MatchUnstructured(dry) {
				if err := jsondiff.ApplyPatchToUnstructured(dry, jsondiff.GenerateRemovePatch(paths...)); err != nil {
					refused = append(refused, fmt.Sprintf("%s: spec.ignore: %v", objectID(u.GetKind(), u.GetNamespace(), u.GetName()), err))
				}
			}
		}
		if err := lp.c.Patch(lp.ctx, dry, client.Apply, client.DryRunAll, client.ForceOwnership, client.FieldOwner(apply.FieldManager)); err != nil {
			if apierrors.IsInvalid(err) && strings.Contains(err.Error(), "immutable") {
				out = append(out, u)
				continue
			}
			refused = append(refused, fmt.Sprintf("%s: %v", objectID(u.GetKind(), u.GetNamespace(), u.GetName()), err))
			continue
		}
		cleanLive(dry)
		if err := render.MaskSecrets([]*unstructured.Unstructured{dry}); err != nil {
			refused = append(refused, err.Error())
			continue
		}
		out = append(out, dry)
	}
	if len(refused) > 0 {
		t.Error = "the API server refuses the dry run, so the apply would fail and prune nothing: " + strings.Join(refused, "; ")
		return
	}
	t.Objects = out
}

// cleanLive drops what the API server keeps on an object besides what
// was applied: status, managed fields, identity and bookkeeping.
func cleanLive(u *unstructured.Unstructured) {
	delete(u.Object, "status")
	for _, f := range []string{"managedFields", "resourceVersion", "uid", "generation", "creationTimestamp", "selfLink"} {
		unstructured.RemoveNestedField(u.Object, "metadata", f)
	}
	if a := u.GetAnnotations(); a != nil {
		delete(a, "kubectl.kubernetes.io/last-applied-configuration")
		if len(a) == 0 {
			a = nil
		}
		u.SetAnnotations(a)
	}
}
