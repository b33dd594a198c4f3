package cli

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/weirhq/weir/internal/install"
	"github.com/weirhq/weir/internal/kube"
)

func (g *globalOptions) client() (client.Client, error) {
	cfg, err := g.restConfig()
	if err != nil {
		return nil, err
	}
	c, err := client.New(cfg, client.Options{Scheme: kube.Scheme()})
	if err != nil {
		return nil, fmt.Errorf("connecting to the cluster: %w", err)
	}
	return c, nil
}

func newInstallCommand(g *globalOptions) *cobra.Command {
	var export, crdsOnly, takeover bool
	var o install.Options
	var wait time.Duration
	cmd := &cobra.Command{
		Use:   "install",
		Short: "Install weir into a cluster: Flux's CRDs, the flux-system namespace and weir's Deployment",
		Long: "install applies Flux's CustomResourceDefinitions (embedded in weir), the flux-system namespace and\n" +
			"what runs weir in the cluster (its Deployment running `weir controller`, ServiceAccount, RBAC,\n" +
			"Services, NetworkPolicies and PodDisruptionBudget) with server-side apply, then waits until the\n" +
			"Deployment is Available. Running it again changes nothing. --crds-only applies only the CRDs and\n" +
			"the namespace (for a weir that runs outside the cluster, as `weir up` and `weir local` do);\n" +
			"--export prints the manifests instead of applying them.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cmd.Flags().Changed("namespace") {
				o.Namespace = g.namespace
			}
			if export {
				if crdsOnly {
					return install.Export(cmd.OutOrStdout(), nil)
				}
				return install.Export(cmd.OutOrStdout(), &o)
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if takeover {
				ns := o.Namespace
				if ns == "" {
					ns = install.Namespace
				}
				fmt.Fprintf(out, "► scaling Flux's controllers in %s to zero\n", ns)
				stopWait := wait
				if stopWait <= 0 {
					stopWait = 5 * time.Minute
				}
				stopped, err := install.StopFlux(cmd.Context(), c, ns, stopWait)
				if err != nil {
					return err
				}
				if len(stopped) == 0 {
					fmt.Fprintln(out, "✔ no Flux controller runs there")
				} else {
					fmt.Fprintf(out, "✔ stopped %s (replicas kept in %s)\n", strings.Join(stopped, ", "), install.ReplicasAnnotation)
				}
			}
			fmt.Fprintln(out, "► applying Flux's CRDs and the flux-system namespace")
			if err := install.Install(cmd.Context(), c); err != nil {
				return err
			}
			if crdsOnly {
				fmt.Fprintln(out, "✔ installed")
				return nil
			}
			fmt.Fprintf(out, "► applying weir's Deployment (%s), RBAC, Services and NetworkPolicies\n", o.ImageRef())
			fmt.Fprintln(out, "◎ waiting for the Deployment to be Available")
			if err := install.InstallComponents(cmd.Context(), c, o, wait); err != nil {
				return err
			}
			fmt.Fprintln(out, "✔ installed")
			return nil
		},
	}
	f := cmd.Flags()
	f.BoolVar(&export, "export", false, "print the manifests instead of applying them")
	f.BoolVar(&takeover, "takeover", false, "scale Flux's controllers in the namespace to zero first (waiting until their pods are gone), so that weir takes over their objects, inventories and Helm releases without deleting or re-creating anything")
	f.BoolVar(&crdsOnly, "crds-only", false, "apply only the CRDs and the flux-system namespace, for a weir running outside the cluster")
	f.StringVar(&o.Image, "image", "", "weir's container image (default "+install.DefaultImage()+")")
	f.Int32Var(&o.Replicas, "replicas", 1, "replicas of weir's Deployment; they elect a leader")
	f.BoolVar(&o.LeastPrivilege, "least-privilege", false, "bind weir to what it needs itself instead of cluster-admin: Kustomizations and HelmReleases act as their spec.serviceAccountName (or --default-service-account) and cannot refer to other namespaces")
	f.StringVar(&o.DefaultServiceAccount, "default-service-account", "", "with --least-privilege, the service account of objects that name none (default \"default\")")
	f.DurationVar(&wait, "timeout", 5*time.Minute, "how long to wait for the Deployment to be Available; 0 does not wait")
	return cmd
}

func newUninstallCommand(g *globalOptions) *cobra.Command {
	var force, keepNamespace bool
	cmd := &cobra.Command{
		Use:   "uninstall",
		Short: "Remove weir from a cluster: its Deployment and RBAC, Flux's CRDs and the flux-system namespace",
		Long: "uninstall deletes weir's Deployment, ServiceAccount, RBAC, Services, NetworkPolicies and\n" +
			"PodDisruptionBudget, Flux's CRDs and the flux-system namespace. It refuses, before removing\n" +
			"anything, while objects of these kinds exist, because deleting a CRD deletes every object of its\n" +
			"kind; --force deletes them too.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			o := install.Options{}
			if cmd.Flags().Changed("namespace") {
				o.Namespace = g.namespace
			}
			if err := install.Uninstall(cmd.Context(), c, o, force, keepNamespace); err != nil {
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
