package cli

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/spf13/cobra"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/weirhq/weir/internal/control"
)

type suspendOptions struct {
	*globalOptions
	suspend bool // false: resume
	all     bool
	wait    bool
	timeout time.Duration
}

// newSuspendCommand returns `weir suspend` when suspend is true, else
// `weir resume`: the two are one patch of spec.suspend apart.
func newSuspendCommand(g *globalOptions, suspend bool) *cobra.Command {
	o := &suspendOptions{globalOptions: g, suspend: suspend}
	cmd := &cobra.Command{
		Use:   "suspend",
		Short: "Suspend the reconciliation of Flux objects",
		Long: "suspend sets spec.suspend on objects, as `flux suspend` does: their controller leaves them,\n" +
			"and what they applied, as they are until they are resumed.",
	}
	verb := "Suspend"
	if !suspend {
		verb = "Resume"
		cmd.Use = "resume"
		cmd.Short = "Resume the reconciliation of suspended Flux objects"
		cmd.Long = "resume clears spec.suspend on objects and asks for a reconcile, as `flux resume` does. With one\n" +
			"name it waits for the reconcile and prints the revision; --wait waits with several too."
		cmd.PersistentFlags().BoolVar(&o.wait, "wait", false, "wait for each object to reconcile (the default with one name)")
		cmd.PersistentFlags().DurationVar(&o.timeout, "timeout", 5*time.Minute, "how long to wait for the reconciles")
	}
	cmd.PersistentFlags().BoolVar(&o.all, "all", false, fmt.Sprintf("%s every object of the kind in the namespace", cmd.Use))
	addKindCommands(cmd, newVerbGroupCommand(verb), func(k control.Kind) *cobra.Command {
		return &cobra.Command{
			Use:     k.Use + " [NAME...]",
			Aliases: k.Aliases,
			Short:   fmt.Sprintf("%s %s objects", verb, k.Name),
			Args:    nameArgs(k, true),
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
		fmt.Fprintf(cmd.ErrOrStderr(), "no %s objects found in %s namespace\n", k.Name, o.namespace)
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

// objects reads the named objects, or with --all every object of the kind
// in the namespace.
func (o *suspendOptions) objects(ctx context.Context, c client.Client, k control.Kind, names []string) ([]control.Object, error) {
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
