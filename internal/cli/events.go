package cli

import (
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/util/duration"

	"github.com/weirhq/weir/internal/events"
)

func newEventsCommand(g *globalOptions) *cobra.Command {
	var (
		forObject string
		all       bool
	)
	cmd := &cobra.Command{
		Use:   "events",
		Short: "Show the events of Flux objects",
		Long:  "events prints the Kubernetes events of a namespace, oldest first, as `flux events` does;\n--for Kind/name keeps those of one object.",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := objectClient(g)
			if err != nil {
				return err
			}
			var q events.Query
			if forObject != "" {
				var ok bool
				q.Kind, q.Name, ok = strings.Cut(forObject, "/")
				if !ok || q.Kind == "" || q.Name == "" {
					return fmt.Errorf("--for takes Kind/name, such as Kustomization/apps")
				}
			}
			if !all {
				q.Namespace = g.namespace
			}
			list, err := events.List(cmd.Context(), c, q)
			if err != nil {
				return err
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 0, 3, ' ', 0)
			if all {
				fmt.Fprint(w, "NAMESPACE\t")
			}
			fmt.Fprintln(w, "LAST SEEN\tTYPE\tREASON\tOBJECT\tMESSAGE")
			for _, e := range list {
				if all {
					fmt.Fprintf(w, "%s\t", e.Namespace)
				}
				msg := strings.ReplaceAll(strings.TrimSpace(e.Message), "\n", "; ")
				fmt.Fprintf(w, "%s\t%s\t%s\t%s/%s\t%s\n", duration.HumanDuration(time.Since(events.LastSeen(e))), e.Type, e.Reason,
					e.InvolvedObject.Kind, e.InvolvedObject.Name, msg)
			}
			return w.Flush()
		},
	}
	cmd.Flags().StringVar(&forObject, "for", "", "only the events of this object, as Kind/name")
	cmd.Flags().BoolVarP(&all, "all-namespaces", "A", false, "events of every namespace")
	return cmd
}
