package cli

import (
	"fmt"
	"runtime"

	"github.com/spf13/cobra"

	"github.com/weirhq/weir/internal/localcluster"
	"github.com/weirhq/weir/internal/version"
)

func newVersionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print weir's version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "weir %s\n", version.Version)
			if c := version.Commit(); c != "" {
				fmt.Fprintf(out, "commit: %s\n", c)
			}
			fmt.Fprintf(out, "go: %s %s/%s\n", runtime.Version(), runtime.GOOS, runtime.GOARCH)
			fmt.Fprintf(out, "local control plane: kubernetes %s\n", localcluster.KubernetesVersion)
			return nil
		},
	}
}
