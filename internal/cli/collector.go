package cli

import (
	"github.com/spf13/cobra"

	"github.com/weirhq/weir/internal/gcstart"
)

// longRunning names the commands that run until stopped.
var longRunning = map[string]bool{"controller": true, "up": true, "mcp": true, "local": true, "logs": true}

// startCollector turns the garbage collector, off since the start (see
// internal/gcstart), back on at once for a command that runs until
// stopped or watches; a command that ends in moments leaves it off until
// its heap reaches gcstart.Bound.
func startCollector(cmd *cobra.Command) {
	top := cmd
	for top.HasParent() && top.Parent().HasParent() {
		top = top.Parent()
	}
	watch := cmd.Flags().Lookup("watch")
	if longRunning[top.Name()] || (watch != nil && watch.Changed) {
		gcstart.Restore()
	}
}
