// Command weir is a GitOps engine for Kubernetes that speaks Flux's APIs.
package main

import (
	"os"

	// First, so that the garbage collector is off while the other
	// packages initialize (see its doc).
	_ "github.com/weirhq/weir/internal/gcstart"

	"github.com/weirhq/weir/internal/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:]))
}
