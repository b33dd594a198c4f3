package cli

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/weirhq/weir/internal/control"
)

type suspendOptions struct {
	*globalOptions
	suspend  bool // false: resume
	all      bool
	selector string
	wait     bool
	timeout  time.Duration
}

// newSuspendCommand returns `weir suspend` when suspend is true, else
// `weir resume`: the two are one patch of spec.suspend apart.
func newSuspendCommand(g *globalOptions, suspend bool) *cobra.Command {
	o := &suspendOptions{globalOptions: g, suspend: suspend}
	cmd := &cobra.Command{
		Use:   "suspend",
		Short: "Suspend the reconciliation of Flux objects",
		Long: "suspend sets spec.suspend on objects, as `flux suspend` does: their controller leaves them,\n" +
			"and what they applied, as they are until they are resumed. Name the objects, or pick them with\n" +
			"--all or a label selector (-l team=payments).",
	}
	verb := "Suspend"
	if !suspend {
		verb = "Resume"
		cmd.Use = "resume"
		cmd.Short = "Resume the reconciliation of suspended Flux objects"
		cmd.Long = "resume clears spec.suspend on objects and asks for a reconcile, as `flux resume` does. With one\n" +
			"name it waits for the reconcile and prints the revision; --wait waits with several too. Name the\n" +
			"objects, or pick them with --all or a label selector (-l team=payments)."
		cmd.PersistentFlags().BoolVar(&o.wait, "wait", false, "wait for each object to reconcile (the default with one name)")
		cmd.PersistentFlags().DurationVar(&o.timeout, "timeout", 5*time.Minute, "how long to wait for the reconciles")
	}
	cmd.PersistentFlags().BoolVar(&o.all, "all", false, fmt.Sprintf("%s every object of the kind in the namespace", cmd.Use))
	cmd.PersistentFlags().StringVarP(&o.selector, "selector", "l", "", fmt.Sprintf("%s the objects of the kind in the namespace whose labels match, such as team=payments", cmd.Use))
	addKindCommands(cmd, newVerbGroupCommand(verb), func(k control.Kind) *cobra.Command {
		return &cobra.Command{
			Use:     k.Use + " [NAME...]",
			Aliases: k.Aliases,
			Short:   fmt.Sprintf("%s %s objects", verb, k.Name),
			Args:    o.args(k),
			RunE: func(cmd *cobra.Command, args []string) error {
				return o.run(cmd, k, args)
			},
		}
	})
	return cmd
}

func (o *suspendOptions) run(cmd *cobra.Command, k control.Kind, names []string) error {
	ctx := cmd.Context()
	if !o.suspend {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.timeout)
		defer cancel()
	}
	c, err := objectClient(o.globalOptions)
	if err != nil {
		return err
	}
	objs, err := o.objects(ctx, c, k, names)
	if err != nil {
		return err
	}
	if len(objs) == 0 {
		matching := ""
		if o.selector != "" {
			matching = " matching " + o.selector
		}
		fmt.Fprintf(cmd.ErrOrStderr(), "no %s objects%s found in %s namespace\n", k.Name, matching, o.namespace)
		return nil
	}

	out := cmd.OutOrStdout()
	action, done := "suspending", "suspended"
	if !o.suspend {
		action, done = "resuming", "resumed"
	}
	requests := make([]string, len(objs))
	for i, obj := range objs {
		fmt.Fprintf(out, "► %s %s %s in %s namespace\n", action, k.Noun(), obj.GetName(), o.namespace)
		if requests[i], err = control.SetSuspend(ctx, c, obj, o.suspend); err != nil {
			return err
		}
		fmt.Fprintf(out, "✔ %s %s\n", k.Noun(), done)
	}

	wait := o.wait || (!cmd.Flags().Changed("wait") && len(names) == 1)
	if o.suspend || !wait || k.Static {
		return nil
	}
	// Wait for every object, so that one failure does not hide the others.
	var errs []error
	for i, obj := range objs {
		key := client.ObjectKeyFromObject(obj)
		obj, err := waitReconciled(ctx, out, c, k, key, requests[i], o.timeout)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		fmt.Fprintf(out, "✔ %s %s reconciliation completed\n", k.Name, key.Name)
		fmt.Fprintf(out, "✔ %s\n", k.Outcome(obj))
	}
	return errors.Join(errs...)
}

// args takes names, --all, or a label selector (with or without --all),
// but never names with either.
func (o *suspendOptions) args(k control.Kind) cobra.PositionalArgs {
	names := nameArgs(k, true)
	return func(cmd *cobra.Command, args []string) error {
		if o.selector == "" {
			return names(cmd, args)
		}
		if len(args) > 0 {
			return errors.New("give names or --selector, not both")
		}
		return nil
	}
}

// objects reads the named objects, or with --all every object of the kind
// in the namespace, or with --selector those whose labels match.
func (o *suspendOptions) objects(ctx context.Context, c client.Client, k control.Kind, names []string) ([]control.Object, error) {
	if o.selector != "" {
		sel, err := labels.Parse(o.selector)
		if err != nil {
			return nil, fmt.Errorf("--selector %q: %w", o.selector, err)
		}
		return control.List(ctx, c, k, o.namespace, client.MatchingLabelsSelector{Selector: sel})
	}
	if o.all {
		return control.List(ctx, c, k, o.namespace)
	}
	var objs []control.Object
	for i, name := range names {
		if slices.Contains(names[:i], name) {
			continue
		}
		obj, err := control.Get(ctx, c, k, client.ObjectKey{Namespace: o.namespace, Name: name})
		if err != nil {
			return nil, err
		}
		objs = append(objs, obj)
	}
	return objs, nil
}
