//go:build !linux

package repo

import (
	"fmt"
	"os"
)

// readRegular reads the regular file at name; a symlink is refused, not
// followed (it could leave the root), as is any file that is not regular
// or is larger than maxFile.
func readRegular(name string) ([]byte, error) {
	fi, err := os.Lstat(name)
	switch {
	case err != nil:
		return nil, err
	case !fi.Mode().IsRegular():
		return nil, fmt.Errorf("%s %w", name, errNotRegular)
	case fi.Size() > maxFile:
		return nil, fmt.Errorf("%s is larger than %d MiB", name, maxFile>>20)
	}
	data, err := os.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", name, err)
	}
	return data, nil
}
