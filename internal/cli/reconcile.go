package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"github.com/spf13/cobra"
	"golang.org/x/term"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/weirhq/weir/internal/control"
)

func newReconcileCommand(g *globalOptions) *cobra.Command {
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "reconcile",
		Short: "Reconcile a Flux object now and wait for the outcome",
		Long: "reconcile asks an object's controller to reconcile it now, as `flux reconcile` does (the\n" +
			"reconcile.fluxcd.io/requestedAt annotation), then waits until the controller has handled the\n" +
			"request and prints the revision, or fails with the Ready message.",
	}
	cmd.PersistentFlags().DurationVar(&timeout, "timeout", 5*time.Minute, "how long to wait for the reconcile")
	addKindCommands(cmd, newVerbGroupCommand("Reconcile"), func(k control.Kind) *cobra.Command {
		var withSource bool
		c := &cobra.Command{
			Use:     k.Use + " NAME",
			Aliases: k.Aliases,
			Short:   fmt.Sprintf("Reconcile a %s now", k.Name),
			Args:    nameArgs(k, false),
			RunE: func(cmd *cobra.Command, args []string) error {
				if withSource {
					if err := reconcileSourceOf(cmd, g, k, args[0], timeout); err != nil {
						return err
					}
				}
				return reconcileNow(cmd, g, k, args[0], timeout)
			},
		}
		if k.Group == "" {
			c.Flags().BoolVar(&withSource, "with-source", false, "reconcile the source first, then the object")
		}
		return c
	})
	return cmd
}

// newVerbGroupCommand returns the maker of a group's command for a verb:
// "weir reconcile source", which holds "git" and the other sources.
func newVerbGroupCommand(verb string) func(group string, kinds []control.Kind) *cobra.Command {
	return func(group string, _ []control.Kind) *cobra.Command {
		return &cobra.Command{
			Use:     group,
			Aliases: []string{group + "s"},
			Short:   fmt.Sprintf("%s %ss", verb, group),
		}
	}
}

// nameArgs requires the NAME of an object, or names, or none with --all.
func nameArgs(k control.Kind, many bool) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		all, _ := cmd.Flags().GetBool("all")
		switch {
		case all && len(args) > 0:
			return errors.New("give names or --all, not both")
		case all:
			return nil
		case len(args) == 0:
			return fmt.Errorf("%s name is required", k.Noun())
		case len(args) > 1 && !many:
			return fmt.Errorf("one %s at a time: got %d names", k.Noun(), len(args))
		}
		return nil
	}
}

func reconcileNow(cmd *cobra.Command, g *globalOptions, k control.Kind, name string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
	defer cancel()
	c, err := objectClient(g)
	if err != nil {
		return err
	}
	key := client.ObjectKey{Namespace: g.namespace, Name: name}
	obj, err := control.Get(ctx, c, k, key)
	if err != nil {
		return err
	}
	out := cmd.OutOrStdout()
	fmt.Fprintf(out, "► annotating %s %s in %s namespace\n", k.Name, name, g.namespace)
	requestedAt, err := control.RequestReconcile(ctx, c, obj)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "✔ %s annotated\n", k.Name)
	if obj, err = waitReconciled(ctx, out, c, k, key, requestedAt, timeout); err != nil {
		return err
	}
	fmt.Fprintf(out, "✔ %s\n", k.Outcome(obj))
	return nil
}

// reconcileSourceOf reconciles the source an object renders from, as
// `flux reconcile ks NAME --with-source` does.
func reconcileSourceOf(cmd *cobra.Command, g *globalOptions, k control.Kind, name string, timeout time.Duration) error {
	c, err := objectClient(g)
	if err != nil {
		return err
	}
	obj, err := control.Get(cmd.Context(), c, k, client.ObjectKey{Namespace: g.namespace, Name: name})
	if err != nil {
		return err
	}
	ks, ok := obj.(*kustomizev1.Kustomization)
	if !ok {
		return fmt.Errorf("--with-source is not supported for %s yet", k.Name)
	}
	srcKind, ok := control.LookupKind(ks.Spec.SourceRef.Kind)
	if !ok {
		return fmt.Errorf("source kind %s of %s %s is not supported yet", ks.Spec.SourceRef.Kind, k.Name, name)
	}
	src := *g
	if ks.Spec.SourceRef.Namespace != "" {
		src.namespace = ks.Spec.SourceRef.Namespace
	}
	return reconcileNow(cmd, &src, srcKind, ks.Spec.SourceRef.Name, timeout)
}

// waitReconciled says that it waits, draws a spinner meanwhile on a
// terminal, and waits for the reconcile requested at requestedAt.
func waitReconciled(ctx context.Context, out io.Writer, c client.Client, k control.Kind, key client.ObjectKey, requestedAt string, timeout time.Duration) (control.Object, error) {
	fmt.Fprintf(out, "◎ waiting for %s reconciliation\n", k.Name)
	stop := startWaitSpinner(out)
	obj, err := control.WaitReconciled(ctx, c, key, k, requestedAt)
	stop()
	if errors.Is(err, context.DeadlineExceeded) {
		return obj, fmt.Errorf("%w; gave up after --timeout %s", err, timeout)
	}
	return obj, err
}

// startWaitSpinner draws a spinner and the time waited on out, when out is
// a terminal, until the returned function is called; that function erases
// it. Elsewhere (pipes, files, tests) it draws nothing.
func startWaitSpinner(out io.Writer) (stop func()) {
	f, ok := out.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return func() {}
	}
	done, erased := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(erased)
		frames := []rune("⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏")
		start := time.Now()
		ticker := time.NewTicker(100 * time.Millisecond)
		defer ticker.Stop()
		for i := 0; ; i++ {
			fmt.Fprintf(f, "\r%c %s", frames[i%len(frames)], time.Since(start).Truncate(time.Second))
			select {
			case <-done:
				fmt.Fprint(f, "\r\033[K")
				return
			case <-ticker.C:
			}
		}
	}()
	return func() {
		close(done)
		<-erased
	}
}
