// Command clidocs writes the reference of weir's command line, one
// markdown page per command, from the commands themselves. `make clidocs`
// (and so `make generate`) runs it:
//
//	go run ./tools/clidocs docs/reference
package main

import (
	"fmt"
	"os"

	"github.com/weirhq/weir/internal/cli"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: clidocs OUT_FOLDER")
		os.Exit(2)
	}
	if err := cli.WriteReference(os.Args[1]); err != nil {
		fmt.Fprintln(os.Stderr, "clidocs:", err)
		os.Exit(1)
	}
}
