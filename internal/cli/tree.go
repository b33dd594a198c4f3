package cli

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strings"

	helmv2 "github.com/fluxcd/helm-controller/api/v2"
	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	ssautils "github.com/fluxcd/pkg/ssa/utils"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	swapi "github.com/fluxcd/source-watcher/api/v2/v1beta1"
	"github.com/spf13/cobra"
	"helm.sh/helm/v4/pkg/action"
	release "helm.sh/helm/v4/pkg/release/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/weirhq/weir/internal/apply"
	"github.com/weirhq/weir/internal/helm"
)

func newTreeCommand(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "tree",
		Short: "Show what a Flux object manages, as a tree",
	}
	cmd.AddCommand(&cobra.Command{
		Use:     "kustomization NAME",
		Aliases: []string{"ks"},
		Short:   "Show the objects a Kustomization applied, nested Kustomizations and HelmReleases expanded",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := objectClient(g)
			if err != nil {
				return err
			}
			cfg, err := g.restConfig()
			if err != nil {
				return err
			}
			t := &tree{c: c, cfg: cfg, out: cmd.OutOrStdout(), seen: map[string]bool{}}
			fmt.Fprintf(t.out, "Kustomization/%s/%s\n", g.namespace, args[0])
			return t.kustomization(cmd.Context(), client.ObjectKey{Namespace: g.namespace, Name: args[0]}, "")
		},
	})
	artifact := &cobra.Command{Use: "artifact", Aliases: []string{"artifacts"}, Short: "Show what an artifact generator manages"}
	artifact.AddCommand(&cobra.Command{
		Use:     "generator NAME",
		Aliases: []string{"ag"},
		Short:   "Show the ExternalArtifacts an ArtifactGenerator made, as flux tree artifact generator",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := objectClient(g)
			if err != nil {
				return err
			}
			return treeArtifactGenerator(cmd.Context(), c, cmd.OutOrStdout(), client.ObjectKey{Namespace: g.namespace, Name: args[0]})
		},
	})
	cmd.AddCommand(artifact)
	return cmd
}

// treeArtifactGenerator prints the ExternalArtifacts of an
// ArtifactGenerator's inventory, each with its revision when it exists.
func treeArtifactGenerator(ctx context.Context, c client.Client, out io.Writer, key client.ObjectKey) error {
	ag := &swapi.ArtifactGenerator{}
	if err := c.Get(ctx, key, ag); err != nil {
		return fmt.Errorf("getting ArtifactGenerator %s: %w", key, err)
	}
	fmt.Fprintf(out, "ArtifactGenerator/%s/%s\n", key.Namespace, key.Name)
	for i, ref := range ag.Status.Inventory {
		branch := "├── "
		if i == len(ag.Status.Inventory)-1 {
			branch = "└── "
		}
		ns := ref.Namespace
		if ns == "" {
			ns = key.Namespace
		}
		line := fmt.Sprintf("%s%s/%s/%s", branch, sourcev1.ExternalArtifactKind, ns, ref.Name)
		ea := &sourcev1.ExternalArtifact{}
		switch err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: ref.Name}, ea); {
		case err != nil:
			line += fmt.Sprintf(" (%v)", err)
		case ea.Status.Artifact != nil:
			line += " " + ea.Status.Artifact.Revision
		}
		fmt.Fprintln(out, line)
	}
	return nil
}

// tree prints what Kustomizations applied, recursing into the
// Kustomizations they applied and into what HelmReleases installed, as
// `flux tree ks` does; seen stops loops.
type tree struct {
	c    client.Client
	cfg  *rest.Config
	out  io.Writer
	seen map[string]bool
}

func (t *tree) kustomization(ctx context.Context, key client.ObjectKey, prefix string) error {
	t.seen["ks/"+key.String()] = true
	ks := &kustomizev1.Kustomization{}
	if err := t.c.Get(ctx, key, ks); err != nil {
		return fmt.Errorf("getting Kustomization %s: %w", key, err)
	}
	inv, err := apply.InventoryStore{Reader: t.c}.Of(ctx, ks)
	if err != nil {
		return err
	}
	objects, err := apply.Objects(inv)
	if err != nil {
		return err
	}
	t.print(ctx, objects, prefix)
	return nil
}

// print writes objects as branches under prefix and expands those that
// manage others.
func (t *tree) print(ctx context.Context, objects []*unstructured.Unstructured, prefix string) {
	for i, o := range objects {
		branch, next := "├── ", "│   "
		if i == len(objects)-1 {
			branch, next = "└── ", "    "
		}
		fmt.Fprintf(t.out, "%s%s%s\n", prefix, branch, objectName(o))
		child := client.ObjectKey{Namespace: o.GetNamespace(), Name: o.GetName()}
		group := o.GroupVersionKind().Group
		var err error
		switch {
		case o.GetKind() == kustomizev1.KustomizationKind && group == kustomizev1.GroupVersion.Group && !t.seen["ks/"+child.String()]:
			err = t.kustomization(ctx, child, prefix+next)
		case o.GetKind() == helmv2.HelmReleaseKind && group == helmv2.GroupVersion.Group && !t.seen["hr/"+child.String()]:
			t.seen["hr/"+child.String()] = true
			var installed []*unstructured.Unstructured
			if installed, err = t.releaseObjects(ctx, child); err == nil {
				t.print(ctx, installed, prefix+next)
			}
		}
		if err != nil {
			fmt.Fprintf(t.out, "%s%s(%v)\n", prefix, next, err)
		}
	}
}

// releaseObjects lists what a HelmRelease's current release installed,
// read from Helm's storage as `helm get manifest` does.
func (t *tree) releaseObjects(ctx context.Context, key client.ObjectKey) ([]*unstructured.Unstructured, error) {
	hr := &helmv2.HelmRelease{}
	if err := t.c.Get(ctx, key, hr); err != nil {
		return nil, fmt.Errorf("getting HelmRelease %s: %w", key, err)
	}
	ns := hr.GetStorageNamespace()
	ac := action.NewConfiguration(action.ConfigurationSetLogger(slog.DiscardHandler))
	if err := ac.Init(helm.NewRESTClientGetter(t.cfg, ns), ns, "secret"); err != nil {
		return nil, fmt.Errorf("reading Helm's storage: %w", err)
	}
	last, err := ac.Releases.Last(helm.ReleaseName(hr))
	if err != nil {
		return nil, fmt.Errorf("no release %s/%s in Helm's storage: %w", ns, helm.ReleaseName(hr), err)
	}
	rel, ok := last.(*release.Release)
	if !ok {
		return nil, fmt.Errorf("unexpected release type %T", last)
	}
	objects, err := ssautils.ReadObjects(strings.NewReader(rel.Manifest))
	if err != nil {
		return nil, fmt.Errorf("reading the manifest of release %s/%s: %w", rel.Namespace, rel.Name, err)
	}
	for _, o := range objects {
		if o.GetNamespace() != "" {
			continue
		}
		gvk := o.GroupVersionKind()
		if m, err := t.c.RESTMapper().RESTMapping(gvk.GroupKind(), gvk.Version); err == nil && m.Scope.Name() == apimeta.RESTScopeNameNamespace {
			o.SetNamespace(rel.Namespace)
		}
	}
	sort.Slice(objects, func(i, j int) bool { return objectName(objects[i]) < objectName(objects[j]) })
	return objects, nil
}

func objectName(o *unstructured.Unstructured) string {
	if o.GetNamespace() == "" {
		return o.GetKind() + "/" + o.GetName()
	}
	return o.GetKind() + "/" + o.GetNamespace() + "/" + o.GetName()
}
