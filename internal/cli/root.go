package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
)

// globalOptions are the flags every verb that talks to a cluster shares,
// resolved like kubectl resolves them.
type globalOptions struct {
	kubeconfig string
	context    string
	namespace  string
	asUser     string
	asGroups   []string
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
		// The garbage collector has been off since the start (see
		// internal/gcstart): back on now for a command that runs long,
		// on from a bound of heap for one that ends in moments.
		PersistentPreRun: func(cmd *cobra.Command, _ []string) { startCollector(cmd) },
	}
	pf := root.PersistentFlags()
	pf.StringVar(&g.kubeconfig, "kubeconfig", "", "path to the kubeconfig file (default: $KUBECONFIG, then ~/.kube/config, then in-cluster)")
	pf.StringVar(&g.context, "context", "", "the kubeconfig context to use")
	pf.StringVarP(&g.namespace, "namespace", "n", "flux-system", "the namespace of the objects")
	pf.StringVar(&g.asUser, "as", "", "the user to impersonate for the operation, as kubectl's --as")
	pf.StringArrayVar(&g.asGroups, "as-group", nil, "a group to impersonate for the operation (repeat for several; needs --as)")

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
		newDeleteCommand(g),
		newExportCommand(g),
		newStatsCommand(g),
		newLogsCommand(g),
		newMCPCommand(g),
		newWhyCommand(g),
		newTraceCommand(g),
		newCheckCommand(g),
		newGraphCommand(g),
		newTestCommand(g),
		newPlanCommand(g),
	)
	refuseUnknownSubcommands(root)
	return root
}

// refuseUnknownSubcommands makes every command that only groups others
// ("weir reconcile", "weir get source") fail on a word it does not know,
// where cobra would print the help and exit 0: a script that runs
// "weir reconcile alret x" must see the typo. Without arguments such a
// command still prints its help.
func refuseUnknownSubcommands(cmd *cobra.Command) {
	for _, sub := range cmd.Commands() {
		refuseUnknownSubcommands(sub)
	}
	if cmd.Runnable() || !cmd.HasSubCommands() || cmd.Parent() == nil {
		return
	}
	cmd.Args = cobra.ArbitraryArgs
	cmd.RunE = groupCommandRun
}

// groupCommandRun is what a command that groups others does when run
// itself: its help without arguments, an error naming the unknown word
// (and what it may have meant) with one.
func groupCommandRun(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return cmd.Help()
	}
	if cmd.SuggestionsMinimumDistance <= 0 {
		cmd.SuggestionsMinimumDistance = 2
	}
	msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
	if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
		msg += "; did you mean " + strings.Join(s, " or ") + "?"
	}
	return fmt.Errorf("%s (run '%s --help' for the list)", msg, cmd.CommandPath())
}
