package cli

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/client-go/kubernetes"

	"github.com/weirhq/weir/internal/control"
	"github.com/weirhq/weir/internal/logs"
)

func newLogsCommand(g *globalOptions) *cobra.Command {
	var (
		q        logs.Query
		since    time.Duration
		all      bool
		output   string
		stateDir string
	)
	cmd := &cobra.Command{
		Use:   "logs",
		Short: "Show weir's controller logs, one readable line per entry",
		Long: "logs prints the log of weir's controllers as `flux logs` does: time, level, the object as\n" +
			"Kind/namespace.name and the message. It reads the pods of the weir Deployment in flux-system\n" +
			"(the pods/log API), or the log of a `weir up` run: the one whose state folder is --state-dir,\n" +
			"or the one whose cluster the kubeconfig (--kubeconfig, $KUBECONFIG) belongs to.\n" +
			"--kind, --name and -n keep the entries about those objects (-A: of every namespace; the\n" +
			"controllers' own lines are kept unless --kind or --name is given); --level keeps that level\n" +
			"and above. Lines that are not JSON (a panic) are printed as they are. --tail N keeps the last\n" +
			"N entries shown; with --follow it counts lines before filtering, as kubectl logs does.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if output != "text" && output != "json" {
				return fmt.Errorf("--output %q: use text or json", output)
			}
			if q.Kind != "" {
				if k, ok := control.LookupKind(q.Kind); ok {
					q.Kind = k.Name
				}
			}
			if !all {
				q.Namespace = g.namespace
			}
			if since > 0 {
				q.Since = time.Now().Add(-since)
			}
			src, err := logs.SourceFor(stateDir, g.kubeconfig, func() (kubernetes.Interface, error) {
				cfg, err := g.restConfig()
				if err != nil {
					return nil, err
				}
				c, err := kubernetes.NewForConfig(cfg)
				if err != nil {
					return nil, fmt.Errorf("connecting to the cluster: %w", err)
				}
				return c, nil
			})
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			return logs.Read(cmd.Context(), src, q, func(e logs.Entry) error {
				line := e.Format()
				if output == "json" {
					line = e.Line
				}
				_, err := fmt.Fprintln(out, line)
				return err
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&q.Kind, "kind", "", "only the entries about objects of this kind, such as Kustomization or ks")
	f.StringVar(&q.Name, "name", "", "only the entries about objects of this name")
	f.StringVar(&q.Level, "level", "", "only the entries at this level or above: debug, info or error")
	f.DurationVar(&since, "since", 0, "only the entries of this last while, such as 10m")
	f.BoolVarP(&q.Follow, "follow", "f", false, "keep printing entries as they are written")
	f.IntVar(&q.Tail, "tail", 0, "only the last N entries (0: all)")
	f.BoolVarP(&all, "all-namespaces", "A", false, "the entries about objects of every namespace")
	f.StringVarP(&output, "output", "o", "text", "output format: text, or json for the lines as written")
	f.StringVar(&stateDir, "state-dir", "", "read the log of the `weir up` run with this state folder (PATH/.weir) instead of a cluster's")
	return cmd
}
