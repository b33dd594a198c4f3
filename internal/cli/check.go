package cli

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"k8s.io/client-go/discovery"

	"github.com/weirhq/weir/internal/check"
	"github.com/weirhq/weir/internal/daemon"
	"github.com/weirhq/weir/internal/logs"
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
			o := check.Options{Pre: pre, Outside: localUpRun(g.kubeconfig)}
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

// localUpRun names the `weir up` whose cluster the kubeconfig (the flag,
// else the first file of $KUBECONFIG) points at, when it still runs: it
// reconciles without a leader lease, so only its recorded process says so.
func localUpRun(kubeconfig string) string {
	if kubeconfig == "" {
		kubeconfig, _, _ = strings.Cut(os.Getenv("KUBECONFIG"), string(os.PathListSeparator))
	}
	stateDir, ok := logs.UpStateDir(kubeconfig)
	if !ok {
		return ""
	}
	pid, ok := upProcess(stateDir).PID()
	if !ok || !daemon.Alive(pid) {
		return ""
	}
	return fmt.Sprintf("weir up (pid %d, state %s)", pid, stateDir)
}
