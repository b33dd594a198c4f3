// Command weir is a GitOps engine for Kubernetes that speaks Flux's APIs.
package main

import (
	"os"

	"github.com/weirhq/weir/internal/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:]))
}
