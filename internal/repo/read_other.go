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

// readRegularStat is readRegular; the index is kept on Linux only, so
// the stat is left empty.
func readRegularStat(name string) ([]byte, fileStat, error) {
	data, err := readRegular(name)
	return data, fileStat{}, err
}

// lstatDir never answers outside Linux: the index is not used there.
func lstatDir(string) (fileStat, bool) { return fileStat{}, false }

// lstat never answers outside Linux: the index is not used there.
func lstat(string) (fileStat, bool) { return fileStat{}, false }

// lstatObserve never answers outside Linux: the index is not used there.
func lstatObserve(string) observation { return observation{} }

// statIndexed tells whether lstat answers, and so whether the index is used.
const statIndexed = false
