package cli

import (
	"fmt"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/duration"
	"sigs.k8s.io/controller-runtime/pkg/client"
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
			var kind, name string
			if forObject != "" {
				var ok bool
				kind, name, ok = strings.Cut(forObject, "/")
				if !ok || kind == "" || name == "" {
					return fmt.Errorf("--for takes Kind/name, such as Kustomization/apps")
				}
			}
			var list corev1.EventList
			var opts []client.ListOption
			if !all {
				opts = append(opts, client.InNamespace(g.namespace))
			}
			if err := c.List(cmd.Context(), &list, opts...); err != nil {
				return fmt.Errorf("listing events: %w", err)
			}
			events := list.Items[:0]
			for _, e := range list.Items {
				if forObject != "" && (!strings.EqualFold(e.InvolvedObject.Kind, kind) || e.InvolvedObject.Name != name) {
					continue
				}
				events = append(events, e)
			}
			sort.SliceStable(events, func(i, j int) bool { return lastSeen(events[i]).Before(lastSeen(events[j])) })
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 0, 3, ' ', 0)
			if all {
				fmt.Fprint(w, "NAMESPACE\t")
			}
			fmt.Fprintln(w, "LAST SEEN\tTYPE\tREASON\tOBJECT\tMESSAGE")
			for _, e := range events {
				if all {
					fmt.Fprintf(w, "%s\t", e.Namespace)
				}
				msg := strings.ReplaceAll(strings.TrimSpace(e.Message), "\n", "; ")
				fmt.Fprintf(w, "%s\t%s\t%s\t%s/%s\t%s\n", duration.HumanDuration(time.Since(lastSeen(e))), e.Type, e.Reason,
					e.InvolvedObject.Kind, e.InvolvedObject.Name, msg)
			}
			return w.Flush()
		},
	}
	cmd.Flags().StringVar(&forObject, "for", "", "only the events of this object, as Kind/name")
	cmd.Flags().BoolVarP(&all, "all-namespaces", "A", false, "events of every namespace")
	return cmd
}

// lastSeen is when an event last happened, whichever field its emitter set.
func lastSeen(e corev1.Event) time.Time {
	switch {
	case !e.LastTimestamp.IsZero():
		return e.LastTimestamp.Time
	case e.Series != nil:
		return e.Series.LastObservedTime.Time
	case !e.EventTime.IsZero():
		return e.EventTime.Time
	}
	return e.CreationTimestamp.Time
}
