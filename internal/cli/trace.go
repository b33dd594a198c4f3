package cli

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/weirhq/weir/internal/trace"
)

func newTraceCommand(g *globalOptions) *cobra.Command {
	var kind, apiVersion string
	cmd := &cobra.Command{
		Use:   "trace KIND/NAME | NAME --kind KIND [--api-version GROUP/VERSION]",
		Short: "Say which Kustomization or HelmRelease manages an object, and where it came from",
		Long: "trace finds the Kustomization or HelmRelease that manages an object from the labels Flux and\n" +
			"weir put on what they apply (checked against the Kustomization's inventory), then follows it to\n" +
			"its sources: the revision applied, the Git commit, or the OCI digest and the Git commit it was\n" +
			"built from, as `flux trace` does. An object without the labels is still traced when an inventory\n" +
			"lists it. KIND is a kind or a resource as kubectl takes it: Deployment, deploy, configmaps.",
		Example: "  weir trace deployment/podinfo -n apps\n  weir trace podinfo --kind Deployment --api-version apps/v1 -n apps",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			if k, n, ok := strings.Cut(name, "/"); ok {
				if kind != "" {
					return fmt.Errorf("give KIND/NAME or --kind, not both")
				}
				kind, name = k, n
			}
			if kind == "" {
				return fmt.Errorf("which kind is %s? give KIND/NAME, such as deployment/%s, or --kind", name, name)
			}
			c, err := objectClient(g)
			if err != nil {
				return err
			}
			obj, err := trace.Resolve(cmd.Context(), c, kind, apiVersion, g.namespace, name)
			if err != nil {
				return err
			}
			res, err := trace.Trace(cmd.Context(), c, obj)
			if res != nil {
				printTrace(cmd.OutOrStdout(), res)
				for _, w := range res.Warnings {
					fmt.Fprintf(cmd.ErrOrStderr(), "⚠ %s\n", w)
				}
			}
			return err
		},
	}
	cmd.Flags().StringVar(&kind, "kind", "", "the kind of the object (instead of KIND/NAME)")
	cmd.Flags().StringVar(&apiVersion, "api-version", "", "the API version of the kind, such as apps/v1, when the kind is ambiguous")
	return cmd
}

// printTrace prints each link as aligned "Name: value" lines, links apart
// by "---", as `flux trace` does.
func printTrace(w io.Writer, r *trace.Result) {
	width := 0
	for _, l := range r.Links {
		for _, f := range l.Fields {
			width = max(width, len(f.Name)+1)
		}
	}
	for i, l := range r.Links {
		if i > 0 {
			fmt.Fprintln(w, "---")
		}
		for _, f := range l.Fields {
			fmt.Fprintf(w, "%-*s %s\n", width, f.Name+":", f.Value)
		}
	}
}
