package cli

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/weirhq/weir/internal/control"
)

// newDeleteCommand is `weir delete KIND NAME`, as `flux delete`: it asks
// before it deletes, unless --silent.
func newDeleteCommand(g *globalOptions) *cobra.Command {
	var silent bool
	cmd := &cobra.Command{
		Use:   "delete",
		Short: "Delete a Flux object",
		Long: "delete deletes one Flux object, as `flux delete` does, after asking \"Are you sure?\" on standard\n" +
			"input (--silent skips the question; without an answer, such as with no input at all, nothing is\n" +
			"deleted and it exits 1).\n\n" +
			"Only the object is deleted: what becomes of what it applied is up to its controller's deletion\n" +
			"rules, as with Flux. A Kustomization with spec.prune: true (or a deletionPolicy of Delete) removes\n" +
			"the objects of its inventory, and a HelmRelease uninstalls its release; a suspended one, or a\n" +
			"Kustomization without prune, leaves them in the cluster. To keep them, suspend the object first.",
		Example: "  # Delete a Kustomization, asking first\n" +
			"  weir delete kustomization apps\n\n" +
			"  # Delete a GitRepository without asking, in a script\n" +
			"  weir delete source git podinfo --silent",
	}
	cmd.PersistentFlags().BoolVarP(&silent, "silent", "s", false, "delete without asking for confirmation")
	addKindCommands(cmd, newVerbGroupCommand("Delete"), func(k control.Kind) *cobra.Command {
		return &cobra.Command{
			Use:     k.Use + " NAME",
			Aliases: k.Aliases,
			Short:   fmt.Sprintf("Delete one %s", k.Name),
			Args:    nameArgs(k, false),
			RunE: func(cmd *cobra.Command, args []string) error {
				return deleteObject(cmd, g, k, args[0], silent)
			},
		}
	})
	return cmd
}

// deleteObject deletes the object of kind k called name in the -n
// namespace, once the user has confirmed it (unless silent).
func deleteObject(cmd *cobra.Command, g *globalOptions, k control.Kind, name string, silent bool) error {
	c, err := objectClient(g)
	if err != nil {
		return err
	}
	ctx := cmd.Context()
	obj, err := control.Get(ctx, c, k, client.ObjectKey{Namespace: g.namespace, Name: name})
	if err != nil {
		return err
	}
	if !silent {
		question := fmt.Sprintf("Are you sure you want to delete %s %s? [y/N] ", k.Noun(), name)
		if !confirm(ctx, cmd.InOrStdin(), cmd.ErrOrStderr(), question) {
			return fmt.Errorf("%s %s was not deleted: not confirmed (answer y, or pass --silent)", k.Noun(), name)
		}
	}
	out := cmd.OutOrStdout()
	fmt.Fprintf(out, "► deleting %s %s in %s namespace\n", k.Noun(), name, g.namespace)
	if err := c.Delete(ctx, obj); err != nil {
		return fmt.Errorf("deleting %s %s/%s: %w", k.Name, g.namespace, name, err)
	}
	fmt.Fprintf(out, "✔ %s deleted\n", k.Noun())
	return nil
}

// confirm asks question on out and reads one line of in: y or yes, in any
// case, confirms; anything else, no line at all, or ctx ending first (an
// interrupt while the question waits) does not.
func confirm(ctx context.Context, in io.Reader, out io.Writer, question string) bool {
	fmt.Fprint(out, question)
	answers := make(chan string, 1)
	go func() {
		// Left blocked on a terminal when ctx ends first; the process is
		// about to exit then.
		line, _ := bufio.NewReader(in).ReadString('\n')
		answers <- line
	}()
	select {
	case <-ctx.Done():
		fmt.Fprintln(out)
		return false
	case line := <-answers:
		if !strings.HasSuffix(line, "\n") {
			fmt.Fprintln(out) // no newline was typed: end the question's line
		}
		answer := strings.ToLower(strings.TrimSpace(line))
		return answer == "y" || answer == "yes"
	}
}
