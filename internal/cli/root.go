package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

// globalOptions are the flags every verb that talks to a cluster shares,
// resolved like kubectl resolves them.
type globalOptions struct {
	kubeconfig string
	context    string
	namespace  string
}

// exitError carries a specific exit code (such as `local status`'s 3 for "stopped")
// out of a command without printing anything more.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

// Main runs weir with args and returns the process exit code.
func Main(args []string) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root := newRootCommand()
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	var ee exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	fmt.Fprintln(os.Stderr, "✗", err)
	return 1
}

func newRootCommand() *cobra.Command {
	g := &globalOptions{}
	root := &cobra.Command{
		Use:           "weir",
		Short:         "weir runs a cluster from Git, speaking Flux's APIs",
		Long:          "weir is a GitOps engine for Kubernetes that speaks Flux's APIs: GitRepository, OCIRepository,\nKustomization and HelmRelease objects written for Flux work with weir unchanged.",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	pf := root.PersistentFlags()
	pf.StringVar(&g.kubeconfig, "kubeconfig", "", "path to the kubeconfig file (default: $KUBECONFIG, then ~/.kube/config, then in-cluster)")
	pf.StringVar(&g.context, "context", "", "the kubeconfig context to use")
	pf.StringVarP(&g.namespace, "namespace", "n", "flux-system", "the namespace of the objects")

	root.AddCommand(
		newVersionCommand(),
		newControllerCommand(g),
		newInstallCommand(g),
		newBootstrapCommand(g),
		newUninstallCommand(g),
		newLocalCommand(),
		newUpCommand(),
		newDownCommand(),
		newBuildCommand(g),
		newTreeCommand(g),
		newDiffCommand(g),
		newEventsCommand(g),
		newGetCommand(g),
		newReconcileCommand(g),
		newSuspendCommand(g, true),
		newSuspendCommand(g, false),
		newTriggerCommand(g),
	)
	return root
}
