package cli

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"
	"k8s.io/client-go/discovery"

	"github.com/weirhq/weir/internal/check"
)

func newCheckCommand(g *globalOptions) *cobra.Command {
	var pre bool
	cmd := &cobra.Command{
		Use:   "check",
		Short: "Check that the cluster can run weir, and that weir runs as it should",
		Long: "check verifies, as `flux check` does: that the API server answers and its Kubernetes version is\n" +
			"supported (>=" + check.MinKubernetes + "); that weir runs, as its Deployment in the cluster or as a process\n" +
			"outside it holding the leader lease (weir up, weir local, weir controller); that every CRD weir\n" +
			"serves is installed and serves the versions weir uses; and that the Secrets the objects name exist\n" +
			"and hold what they must: the age key of each Kustomization that decrypts (sops-age), the identity\n" +
			"and known_hosts of each ssh:// GitRepository. --pre checks only what an installation needs.\n" +
			"It exits 1 when a check fails.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := g.restConfig()
			if err != nil {
				return err
			}
			dc, err := discovery.NewDiscoveryClientForConfig(cfg)
			if err != nil {
				return fmt.Errorf("connecting to the cluster: %w", err)
			}
			c, err := objectClient(g)
			if err != nil {
				return err
			}
			o := check.Options{Pre: pre}
			if cmd.Flags().Changed("namespace") {
				o.Namespace = g.namespace
			}
			results, err := check.Run(cmd.Context(), c, dc, o)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			section := ""
			failed := 0
			for _, r := range results {
				if r.Section != section {
					section = r.Section
					fmt.Fprintf(out, "► checking %s\n", section)
				}
				mark := "✔"
				if !r.OK {
					mark = "✗"
					failed++
				}
				fmt.Fprintf(out, "%s %s\n", mark, r.Message)
			}
			if failed > 0 {
				return errors.New(plural(failed, "check") + " failed")
			}
			if pre {
				fmt.Fprintln(out, "✔ prerequisites checks passed")
			} else {
				fmt.Fprintln(out, "✔ all checks passed")
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&pre, "pre", false, "check only the prerequisites of an installation")
	return cmd
}
