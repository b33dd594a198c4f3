package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"github.com/fluxcd/pkg/ssa/jsondiff"
	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/weirhq/weir/internal/apply"
	"github.com/weirhq/weir/internal/kubeconfig"
	"github.com/weirhq/weir/internal/render"
	"github.com/weirhq/weir/internal/repo"
)

func newDiffCommand(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "diff",
		Short: "Show what applying local files would change in the cluster",
	}
	var path, root string
	var offline offlineOptions
	ks := &cobra.Command{
		Use:     "kustomization NAME --path DIR",
		Aliases: []string{"ks"},
		Short:   "Diff a Kustomization's local files against the cluster (exit 1 when they differ)",
		Long: "diff ks renders --path with the Kustomization's spec (read from the cluster, or from the\n" +
			"repository's files when the cluster has none of that name), asks the API server for a\n" +
			"server-side dry run of every object, and prints what would be created, changed or pruned.\n" +
			"Secret values are masked. It exits 1 when there are changes, 0 when there are none, as\n" +
			"`flux diff` does.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			changed, err := diffKustomization(cmd.Context(), cmd.OutOrStdout(), g, args[0], path, root, offline)
			if err != nil {
				// 1 means "changes" to scripts: errors get their own code.
				fmt.Fprintln(cmd.ErrOrStderr(), "✗", err)
				return exitError{code: 2}
			}
			if changed {
				return exitError{code: 1}
			}
			return nil
		},
	}
	ks.Flags().StringVar(&path, "path", "", "local folder to render (the Kustomization's spec.path in your checkout)")
	ks.Flags().StringVar(&root, "repo", "", "root of the repository (default: the Git root above --path)")
	ks.Flags().StringVar(&offline.kustomizationFile, "kustomization-file", "", "the file that declares the Kustomization, when the cluster has none of that name and the repository several")
	ks.Flags().StringVar(&offline.cluster, "cluster", "", "the cluster (sync root) that applies the Kustomization, when the cluster has none of that name and the repository several")
	cmd.AddCommand(ks, newDiffHelmReleaseCommand(g))
	return cmd
}

func diffKustomization(ctx context.Context, out io.Writer, g *globalOptions, name, path, root string, offline offlineOptions) (bool, error) {
	if path == "" {
		return false, errors.New("--path is required: the local folder of the Kustomization's spec.path")
	}
	root, rel, err := resolvePath(path, root)
	if err != nil {
		return false, err
	}
	c, err := objectClient(g)
	if err != nil {
		return false, err
	}
	ks := &kustomizev1.Kustomization{}
	err = c.Get(ctx, client.ObjectKey{Namespace: g.namespace, Name: name}, ks)
	if apierrors.IsNotFound(err) {
		ks, err = repoKustomization(root, rel, name, g.namespace, offline)
	}
	if err != nil {
		return false, fmt.Errorf("Kustomization %s/%s: %w", g.namespace, name, err)
	}
	spec := ks.Spec
	spec.Path = "./" + filepath.ToSlash(rel)
	objects, err := render.Build(ctx, render.Options{Root: root, Namespace: ks.Namespace, Spec: spec, Values: render.ClusterValues{Reader: c}})
	if err != nil {
		return false, err
	}
	repo.SetOwnerLabels(objects, ks.Name, ks.Namespace)
	target, err := diffTarget(ctx, c, ks)
	if err != nil {
		return false, err
	}
	diffs, err := jsondiff.UnstructuredList(ctx, target, objects,
		jsondiff.FieldOwner(apply.FieldManager), jsondiff.MaskSecrets(true), jsondiff.Rationalize(true),
		jsondiff.ExclusionSelector{apply.LabelGroup + "/reconcile": "disabled"}, jsondiff.IgnoreRules(apply.IgnoreRules(ks.Spec.Ignore)))
	if err != nil {
		return false, fmt.Errorf("dry-running the objects: %w", err)
	}
	changed := false
	for _, d := range diffs {
		id := objectID(d.GroupVersionKind().Kind, d.GetNamespace(), d.GetName())
		switch d.Type {
		case jsondiff.DiffTypeCreate:
			changed = true
			fmt.Fprintf(out, "► %s created\n", id)
		case jsondiff.DiffTypeUpdate:
			changed = true
			fmt.Fprintf(out, "► %s drifted\n", id)
			for _, op := range d.Patch {
				fmt.Fprintf(out, "  %s %s: %v\n", op.Type, op.Path, op.Value)
			}
		}
	}
	if ks.Spec.Prune {
		inv, err := apply.InventoryStore{Reader: c}.Of(ctx, ks)
		if err != nil {
			return false, err
		}
		stale, err := apply.Stale(inv, apply.InventoryOf(objects))
		if err != nil {
			return false, err
		}
		for _, o := range stale {
			changed = true
			fmt.Fprintf(out, "► %s deleted\n", objectID(o.GetKind(), o.GetNamespace(), o.GetName()))
		}
	}
	return changed, nil
}

// diffTarget is the cluster the Kustomization applies to: the one of c, or
// the remote cluster of its spec.kubeConfig, reached as the controller
// reaches it. The inventory stays in c's cluster.
func diffTarget(ctx context.Context, c client.Client, ks *kustomizev1.Kustomization) (client.Client, error) {
	if ks.Spec.KubeConfig == nil {
		return c, nil
	}
	remote, err := kubeconfig.Load(ctx, c, ks.Namespace, ks.Spec.KubeConfig)
	if err != nil {
		return nil, fmt.Errorf("Kustomization %s/%s: %w", ks.Namespace, ks.Name, err)
	}
	rc, err := client.New(remote.Sanitised(ctx, "weir"), client.Options{Scheme: c.Scheme()})
	if err != nil {
		return nil, fmt.Errorf("connecting to the remote cluster %s of KubeConfig secret '%s': %w", remote.Host(), remote.Secret, err)
	}
	return rc, nil
}

// repoKustomization reads the Kustomization name from the repository at
// root, its namespace defaulting to namespace.
func repoKustomization(root, rel, name, namespace string, offline offlineOptions) (*kustomizev1.Kustomization, error) {
	r, err := repo.Open(root)
	if err != nil {
		return nil, err
	}
	q := repo.Query{Name: name, Namespace: namespace, Cluster: offline.cluster, Path: filepath.ToSlash(rel)}
	if q.File, err = offline.kustomizationFileRel(r); err != nil {
		return nil, err
	}
	return r.Kustomization(q, namespace)
}

func objectID(kind, namespace, name string) string {
	if namespace == "" {
		return kind + "/" + name
	}
	return kind + "/" + namespace + "/" + name
}
