package cli

import (
	"github.com/spf13/cobra"

	"github.com/weirhq/weir/internal/gcstart"
)

// shortHeap is the heap a command that ends in moments may grow to
// before its first garbage collection: more than `weir build` and
// `weir get` need on large repositories and clusters, and past it the
// collector runs as usual.
const shortHeap = 256 << 20

// longRunning names the commands that run until stopped.
var longRunning = map[string]bool{"controller": true, "up": true, "mcp": true, "local": true, "logs": true}

// startCollector turns the garbage collector back on for the command
// about to run: at once for one that runs until stopped (or watches),
// else once its heap reaches shortHeap.
func startCollector(cmd *cobra.Command) {
	top := cmd
	for top.HasParent() && top.Parent().HasParent() {
		top = top.Parent()
	}
	watch := cmd.Flags().Lookup("watch")
	if longRunning[top.Name()] || (watch != nil && watch.Changed) {
		gcstart.Restore()
		return
	}
	gcstart.Defer(shortHeap)
}
