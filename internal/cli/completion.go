package cli

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/weirhq/weir/internal/control"
)

// completionTimeout bounds the cluster look-up behind one press of TAB: a
// shell that waits longer than this for names is worse than none.
const completionTimeout = 5 * time.Second

// completeNames completes the NAME arguments of a kind's command with the
// names of the objects of kind k in the -n namespace (after --kubeconfig,
// --context and --as, as the command itself would connect). A command whose
// Use takes one name ("NAME", "[NAME]") completes one; one that takes
// several ("[NAME...]") completes the names not given yet. When the cluster
// cannot be reached it completes nothing and says nothing: a shell prints
// no error on a TAB.
func completeNames(k control.Kind) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if len(args) > 0 && !strings.Contains(cmd.Use, "...") {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		g := flagOptions(cmd)
		ctx := cmd.Context()
		if ctx == nil {
			ctx = context.Background()
		}
		ctx, cancel := context.WithTimeout(ctx, completionTimeout)
		defer cancel()
		c, err := objectClient(g)
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		objs, err := control.List(ctx, c, k, g.namespace)
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		var names []cobra.Completion
		for _, obj := range objs {
			name := obj.GetName()
			if strings.HasPrefix(name, toComplete) && !slices.Contains(args, name) {
				names = append(names, name)
			}
		}
		return names, cobra.ShellCompDirectiveNoFileComp
	}
}

// flagOptions reads the global flags from cmd as parsed for a completion,
// which runs the command's completion function but not the command.
func flagOptions(cmd *cobra.Command) *globalOptions {
	g := &globalOptions{}
	f := cmd.Flags()
	g.kubeconfig, _ = f.GetString("kubeconfig")
	g.context, _ = f.GetString("context")
	g.namespace, _ = f.GetString("namespace")
	g.asUser, _ = f.GetString("as")
	g.asGroups, _ = f.GetStringArray("as-group")
	return g
}
