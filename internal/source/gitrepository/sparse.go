package gitrepository

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// sparseFolders cleans spec.sparseCheckout into slash-separated folders
// relative to the root ("./apps/" becomes "apps"). A path that leads out of
// the tree is held to it, as Flux resolves it. Nil means the whole tree,
// which is also what a list naming the root asks for.
func sparseFolders(spec []string) []string {
	var out []string
	for _, p := range spec {
		p = strings.TrimPrefix(path.Clean("/"+strings.TrimSpace(p)), "/")
		if p == "" {
			return nil
		}
		out = append(out, p)
	}
	return out
}

// checkSparseFolders fails when a sparse folder is not in the checked-out
// tree, with source-controller's words.
func checkSparseFolders(dir string, folders []string) error {
	for _, f := range folders {
		if _, err := os.Lstat(filepath.Join(dir, filepath.FromSlash(f))); err != nil {
			return fmt.Errorf("failed to sparse checkout directories : sparse checkout dir '%s' does not exist in repository", f)
		}
	}
	return nil
}
