package cli

import (
	"fmt"

	"github.com/spf13/cobra"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/weirhq/weir/internal/install"
	"github.com/weirhq/weir/internal/kube"
)

func (g *globalOptions) client() (client.Client, error) {
	cfg, err := kube.Config(g.kubeconfig, g.context)
	if err != nil {
		return nil, err
	}
	c, err := client.New(cfg, client.Options{Scheme: kube.Scheme})
	if err != nil {
		return nil, fmt.Errorf("connecting to the cluster: %w", err)
	}
	return c, nil
}

func newInstallCommand(g *globalOptions) *cobra.Command {
	var export bool
	cmd := &cobra.Command{
		Use:   "install",
		Short: "Install Flux's CRDs and the flux-system namespace",
		Long:  "install applies Flux's CustomResourceDefinitions (embedded in weir) and the flux-system namespace\nwith server-side apply; running it again changes nothing.",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if export {
				return install.Export(cmd.OutOrStdout())
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), "► applying Flux's CRDs and the flux-system namespace")
			if err := install.Install(cmd.Context(), c); err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), "✔ installed")
			return nil
		},
	}
	cmd.Flags().BoolVar(&export, "export", false, "print the manifests instead of applying them")
	return cmd
}

func newUninstallCommand(g *globalOptions) *cobra.Command {
	var force, keepNamespace bool
	cmd := &cobra.Command{
		Use:   "uninstall",
		Short: "Remove Flux's CRDs and the flux-system namespace",
		Long:  "uninstall deletes Flux's CRDs and the flux-system namespace. It refuses while objects of these\nkinds exist, because deleting a CRD deletes every object of its kind; --force deletes them too.",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			if err := install.Uninstall(cmd.Context(), c, force, keepNamespace); err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), "✔ uninstalled")
			return nil
		},
	}
	cmd.Flags().BoolVar(&force, "force", false, "delete even while custom resources of Flux's kinds exist (they are deleted with their CRDs)")
	cmd.Flags().BoolVar(&keepNamespace, "keep-namespace", false, "keep the flux-system namespace")
	return cmd
}
