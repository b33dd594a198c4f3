package cli

import (
	"fmt"
	"strconv"

	"github.com/fluxcd/pkg/apis/meta"
	"github.com/spf13/cobra"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/weirhq/weir/internal/control"
)

// newStatsCommand is `weir stats`, as `flux stats`: how many objects of
// each kind run, fail and are suspended, and the storage their artifacts take.
func newStatsCommand(g *globalOptions) *cobra.Command {
	var allNamespaces bool
	cmd := &cobra.Command{
		Use:   "stats",
		Short: "Print how many Flux objects of each kind run, fail and are suspended",
		Long: "stats prints one line per kind of Flux object, as `flux stats` does: RUNNING counts the objects\n" +
			"that are not suspended, FAILING those whose Ready condition is False (suspended or not),\n" +
			"SUSPENDED those suspended, and STORAGE the size of the sources' artifacts (status.artifact.size),\n" +
			"or - when there are none.",
		Example: "  # The namespace's objects\n" +
			"  weir stats -n flux-system\n\n" +
			"  # The whole cluster's\n" +
			"  weir stats -A",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := objectClient(g)
			if err != nil {
				return err
			}
			namespace := g.namespace
			if allNamespaces {
				namespace = ""
			}
			rows := [][]string{{"RECONCILERS", "RUNNING", "FAILING", "SUSPENDED", "STORAGE"}}
			for _, k := range control.Kinds() {
				objs, err := control.List(cmd.Context(), c, k, namespace)
				if err != nil && !apimeta.IsNoMatchError(err) { // a CRD not installed counts none
					return err
				}
				s := countStats(objs)
				rows = append(rows, []string{k.Name, strconv.Itoa(s.running), strconv.Itoa(s.failing), strconv.Itoa(s.suspended), formatSize(s.storage)})
			}
			t := newTable(rows)
			for _, row := range rows {
				fmt.Fprintln(cmd.OutOrStdout(), t.line(row))
			}
			return nil
		},
	}
	cmd.Flags().BoolVarP(&allNamespaces, "all-namespaces", "A", false, "count the objects of every namespace")
	return cmd
}

// stats are the counts of one kind's line.
type stats struct {
	running, failing, suspended int
	storage                     int64
}

func countStats(objs []control.Object) stats {
	var s stats
	for _, obj := range objs {
		if control.StatusOf(obj).Suspended {
			s.suspended++
		} else {
			s.running++
		}
		if ready := apimeta.FindStatusCondition(control.Conditions(obj), meta.ReadyCondition); ready != nil && ready.Status == metav1.ConditionFalse {
			s.failing++
		}
		if u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj); err == nil {
			size, _, _ := unstructured.NestedInt64(u, "status", "artifact", "size")
			s.storage += size
		}
	}
	return s
}

// formatSize prints a size in bytes as flux stats does: "-" for none,
// "512 B", "1.5 KiB", "3.0 MiB".
func formatSize(b int64) string {
	if b == 0 {
		return "-"
	}
	const unit = 1024
	if b < unit {
		return fmt.Sprintf("%d B", b)
	}
	div, exp := int64(unit), 0
	for n := b / unit; n >= unit; n /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(b)/float64(div), "KMGTPE"[exp])
}
