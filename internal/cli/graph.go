package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/weirhq/weir/internal/graphview"
)

func newGraphCommand(g *globalOptions) *cobra.Command {
	var output string
	var all, sources bool
	cmd := &cobra.Command{
		Use:   "graph",
		Short: "Print the dependency graph of Kustomizations and HelmReleases as DOT, Mermaid or SVG",
		Long: "graph prints the dependsOn graph of the Kustomizations and HelmReleases in the namespace (-A: all),\n" +
			"each node coloured by its state (ready, failed, waiting, progressing, suspended, and missing for a\n" +
			"dependency that does not exist), arrows from a dependency to its dependents. --sources adds the\n" +
			"sources, with dashed arrows. -o dot is Graphviz's language, -o mermaid a flowchart GitHub renders\n" +
			"in Markdown, -o svg a drawing laid out by weir itself, with no external program.",
		Example: "  weir graph -A -o svg > graph.svg\n  weir graph -o mermaid --sources\n  weir graph -o dot | dot -Tpng > graph.png",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			write := map[string]func(*graphview.Graph) error{
				"dot":     func(gr *graphview.Graph) error { return graphview.WriteDOT(cmd.OutOrStdout(), gr) },
				"mermaid": func(gr *graphview.Graph) error { return graphview.WriteMermaid(cmd.OutOrStdout(), gr) },
				"svg":     func(gr *graphview.Graph) error { return graphview.WriteSVG(cmd.OutOrStdout(), gr) },
			}[output]
			if write == nil {
				return fmt.Errorf("--output %q: use dot, mermaid or svg", output)
			}
			c, err := objectClient(g)
			if err != nil {
				return err
			}
			ns := g.namespace
			if all {
				ns = ""
			}
			graph, err := loadGraph(cmd.Context(), c, ns)
			if err != nil {
				return err
			}
			return write(graphview.Build(graph, sources))
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "dot", "dot, mermaid or svg")
	cmd.Flags().BoolVarP(&all, "all-namespaces", "A", false, "draw the objects of every namespace")
	cmd.Flags().BoolVar(&sources, "sources", false, "draw the sources too")
	return cmd
}
