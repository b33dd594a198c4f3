package cli

import (
	"context"
	"fmt"
	"io"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"github.com/spf13/cobra"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/weirhq/weir/internal/apply"
)

func newTreeCommand(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "tree",
		Short: "Show what a Flux object manages, as a tree",
	}
	cmd.AddCommand(&cobra.Command{
		Use:     "kustomization NAME",
		Aliases: []string{"ks"},
		Short:   "Show the objects a Kustomization applied, nested Kustomizations expanded",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := objectClient(g)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "Kustomization/%s/%s\n", g.namespace, args[0])
			return printTree(cmd.Context(), out, c, client.ObjectKey{Namespace: g.namespace, Name: args[0]}, "", map[client.ObjectKey]bool{})
		},
	})
	return cmd
}

// printTree prints the inventory of one Kustomization under prefix and
// recurses into the Kustomizations it applied; seen stops loops.
func printTree(ctx context.Context, out io.Writer, c client.Client, key client.ObjectKey, prefix string, seen map[client.ObjectKey]bool) error {
	seen[key] = true
	ks := &kustomizev1.Kustomization{}
	if err := c.Get(ctx, key, ks); err != nil {
		return fmt.Errorf("getting Kustomization %s: %w", key, err)
	}
	objects, err := apply.Objects(ks.Status.Inventory)
	if err != nil {
		return err
	}
	for i, o := range objects {
		branch, next := "├── ", "│   "
		if i == len(objects)-1 {
			branch, next = "└── ", "    "
		}
		name := o.GetKind() + "/" + o.GetName()
		if o.GetNamespace() != "" {
			name = o.GetKind() + "/" + o.GetNamespace() + "/" + o.GetName()
		}
		fmt.Fprintf(out, "%s%s%s\n", prefix, branch, name)
		child := client.ObjectKey{Namespace: o.GetNamespace(), Name: o.GetName()}
		if o.GetKind() == kustomizev1.KustomizationKind && o.GroupVersionKind().Group == kustomizev1.GroupVersion.Group && !seen[child] {
			if err := printTree(ctx, out, c, child, prefix+next, seen); err != nil {
				fmt.Fprintf(out, "%s%s(%v)\n", prefix, next, err)
			}
		}
	}
	return nil
}
