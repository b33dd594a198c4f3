package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	helmv2 "github.com/fluxcd/helm-controller/api/v2"
	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"github.com/fluxcd/pkg/apis/meta"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
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
			"request and prints the revision, or fails with the Ready message.\n\n" +
			"--all reconciles every GitRepository, OCIRepository and HelmRepository, then every Kustomization\n" +
			"and HelmRelease in dependency order, several at once where the graph allows, one line each. An\n" +
			"object whose dependency or source failed is not reconciled, and says so. It exits 1 if anything\n" +
			"failed.",
	}
	var all bool
	cmd.PersistentFlags().DurationVar(&timeout, "timeout", 5*time.Minute, "how long to wait for the reconcile")
	cmd.Flags().BoolVar(&all, "all", false, "reconcile every source, then every Kustomization and HelmRelease in dependency order (every namespace unless -n is given)")
	cmd.Args = cobra.ArbitraryArgs
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		switch {
		case all && len(args) > 0:
			return errors.New("--all reconciles everything: give no kind or name with it")
		case !all:
			return groupCommandRun(cmd, args)
		}
		c, err := objectClient(g)
		if err != nil {
			return err
		}
		ns := ""
		if cmd.Flags().Changed("namespace") {
			ns = g.namespace
		}
		return reconcileAll(cmd.Context(), cmd.OutOrStdout(), c, ns, timeout)
	}
	addKindCommands(cmd, newVerbGroupCommand("Reconcile"), func(k control.Kind) *cobra.Command {
		if k.Static {
			return nil // nothing reconciles them: a change takes effect at once
		}
		var withSource, force, reset bool
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
				var extra []string
				if force {
					extra = append(extra, meta.ForceRequestAnnotation)
				}
				if reset {
					extra = append(extra, helmv2.ResetRequestAnnotation)
				}
				return reconcileNow(cmd, g, k, args[0], timeout, extra...)
			},
		}
		if k.Group == "" {
			c.Flags().BoolVar(&withSource, "with-source", false, "reconcile the source first, then the object")
		}
		if k.Name == helmv2.HelmReleaseKind {
			c.Flags().BoolVar(&force, "force", false, "run a Helm upgrade even when the chart and values did not change (reconcile.fluxcd.io/forceAt)")
			c.Flags().BoolVar(&reset, "reset", false, "reset the remediation retry counters (reconcile.fluxcd.io/resetAt)")
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

func reconcileNow(cmd *cobra.Command, g *globalOptions, k control.Kind, name string, timeout time.Duration, extra ...string) error {
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
	requestedAt, err := control.RequestReconcile(ctx, c, obj, extra...)
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
	var kind, ns, srcName string
	switch o := obj.(type) {
	case *kustomizev1.Kustomization:
		kind, ns, srcName = o.Spec.SourceRef.Kind, o.Spec.SourceRef.Namespace, o.Spec.SourceRef.Name
	case *helmv2.HelmRelease:
		switch {
		case o.Spec.ChartRef != nil:
			kind, ns, srcName = o.Spec.ChartRef.Kind, o.Spec.ChartRef.Namespace, o.Spec.ChartRef.Name
		case o.Spec.Chart != nil:
			// The HelmChart helm-controller makes of spec.chart.
			kind, ns, srcName = sourcev1.HelmChartKind, o.Spec.Chart.GetNamespace(o.Namespace), o.GetHelmChartName()
		}
	}
	if kind == "" {
		return fmt.Errorf("--with-source: %s %s names no source", k.Name, name)
	}
	srcKind, ok := control.LookupKind(kind)
	if !ok {
		return fmt.Errorf("source kind %s of %s %s is not supported yet", kind, k.Name, name)
	}
	src := *g
	if ns != "" {
		src.namespace = ns
	}
	return reconcileNow(cmd, &src, srcKind, srcName, timeout)
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
