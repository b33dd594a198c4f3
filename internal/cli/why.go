package cli

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/weirhq/weir/internal/control"
	"github.com/weirhq/weir/internal/diagnose"
)

func newWhyCommand(g *globalOptions) *cobra.Command {
	var all bool
	cmd := &cobra.Command{
		Use:   "why [KIND/NAME]",
		Short: "Say why an object is not Ready, and what to do",
		Long: "why follows an object through its dependsOn entries and its source (sourceRef, chartRef, the\n" +
			"HelmChart of a HelmRelease and that chart's repository) to the object that holds it, and says in\n" +
			"one paragraph which one it is, its condition, message and since when, and what to do about it.\n" +
			"Without an argument it explains every Kustomization, HelmRelease and source that is not Ready.\n" +
			"KIND is any name the other verbs take: ks, kustomization, hr, helmrelease, git, oci, helm, chart,\n" +
			"or the API kind. The dashboard's \"what holds it\" text is the same explanation.",
		Example: "  weir why ks/apps\n  weir why hr/podinfo -n apps\n  weir why -A",
		Args:    cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := objectClient(g)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			now := time.Now()
			if len(args) == 0 {
				ns := g.namespace
				if all {
					ns = ""
				}
				graph, err := loadGraph(cmd.Context(), c, ns)
				if err != nil {
					return err
				}
				refs := graph.NotReady()
				if len(refs) == 0 {
					where := "in namespace " + ns
					if ns == "" {
						where = "in any namespace"
					}
					fmt.Fprintf(out, "✔ every Kustomization, HelmRelease and source %s is Ready\n", where)
					return nil
				}
				for i, r := range refs {
					if i > 0 {
						fmt.Fprintln(out)
					}
					fmt.Fprintln(out, graph.Explain(r).Text(now))
				}
				return nil
			}
			ref, err := parseObjectArg(args[0], g.namespace)
			if err != nil {
				return err
			}
			graph, err := loadGraph(cmd.Context(), c, "")
			if apierrors.IsForbidden(err) {
				graph, err = loadGraph(cmd.Context(), c, ref.Namespace)
			}
			if err != nil {
				return err
			}
			if _, ok := graph.Get(ref); !ok {
				return fmt.Errorf("%s not found", ref)
			}
			fmt.Fprintln(out, graph.Explain(ref).Text(now))
			return nil
		},
	}
	cmd.Flags().BoolVarP(&all, "all-namespaces", "A", false, "without an argument, explain the objects of every namespace")
	return cmd
}

// loadGraph reads the objects why explains from, in namespace (every
// namespace when empty).
func loadGraph(ctx context.Context, c client.Reader, namespace string) (*diagnose.Graph, error) {
	g, err := diagnose.Load(ctx, c, namespace)
	if err != nil {
		return nil, fmt.Errorf("reading the Flux objects: %w", err)
	}
	return g, nil
}

// parseObjectArg reads KIND/NAME (or KIND/NAMESPACE/NAME) with any name of
// a kind the command line knows: "ks/apps", "hr/podinfo",
// "git/flux-system", "GitRepository/flux-system".
func parseObjectArg(arg, namespace string) (diagnose.Ref, error) {
	kind, rest, ok := strings.Cut(arg, "/")
	if !ok || kind == "" || rest == "" {
		return diagnose.Ref{}, fmt.Errorf("%q is not KIND/NAME, such as ks/apps or hr/podinfo", arg)
	}
	if ns, name, ok := strings.Cut(rest, "/"); ok {
		namespace, rest = ns, name
	}
	k, ok := control.LookupKind(kind)
	if !ok {
		k, ok = control.LookupKind("source " + kind)
	}
	if !ok {
		return diagnose.Ref{}, fmt.Errorf("unknown kind %q: use ks, hr, git, oci, helm, chart or an API kind", kind)
	}
	return diagnose.Ref{Kind: k.Name, Namespace: namespace, Name: rest}, nil
}
