package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra/doc"
)

// WriteReference writes the command line's reference to dir, one markdown
// page per command made from the commands' own help, after removing the
// pages a previous run wrote (a command that is gone loses its page).
// `make clidocs` runs it through tools/clidocs into docs/reference.
func WriteReference(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("creating %s: %w", dir, err)
	}
	old, err := filepath.Glob(filepath.Join(dir, "weir*.md"))
	if err != nil {
		return fmt.Errorf("listing the pages in %s: %w", dir, err)
	}
	for _, page := range old {
		if err := os.Remove(page); err != nil {
			return fmt.Errorf("removing the old page %s: %w", page, err)
		}
	}
	root := newRootCommand()
	// cobra adds `completion` when it runs a command; the reference has it too.
	root.InitDefaultCompletionCmd()
	// No "Auto generated on <date>" footer: a page changes only when its command does.
	root.DisableAutoGenTag = true
	link := func(name string) string { return strings.ToLower(name) }
	if err := doc.GenMarkdownTreeCustom(root, dir, func(string) string { return "" }, link); err != nil {
		return fmt.Errorf("writing the reference to %s: %w", dir, err)
	}
	return nil
}
