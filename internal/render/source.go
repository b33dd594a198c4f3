package render

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	securefs "github.com/fluxcd/pkg/kustomize/filesys"
	"go.yaml.in/yaml/v3"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// MaxSourceSize is the most a render reads into memory: the total size
// of the files of the source (the whole artifact, whatever spec.path is).
// A source over it fails every render; the artifact store refuses such
// trees at their source (artifact.Store.MaxTreeSize).
const MaxSourceSize = 100 << 20

// The bounds of the source read into memory for one render. The count
// of files and folders also stops symlinked folders that fan out.
const (
	maxSourceBytes   = MaxSourceSize
	maxSourceEntries = 100_000
)

// resolvePath returns the source root and the Kustomization's folder in it,
// both absolute with symlinks resolved. Like Flux, a leading "/" in
// spec.path means the root; unlike Flux, which clamps "../" at the root, a
// path that leaves the root is refused.
func resolvePath(root, path string) (string, string, error) {
	if root == "" {
		return "", "", errors.New("no source root given")
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return "", "", fmt.Errorf("source root: %w", err)
	}
	realRoot, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return "", "", fmt.Errorf("source root: %w", err)
	}
	if fi, err := os.Stat(realRoot); err != nil || !fi.IsDir() {
		return "", "", fmt.Errorf("source root %q is not a folder", root)
	}

	shown := path
	if shown == "" {
		shown = "./"
	}
	rel := filepath.Clean(strings.TrimLeft(filepath.FromSlash(path), string(filepath.Separator)))
	if rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return "", "", fmt.Errorf("path '%s' is outside the source", shown)
	}
	dir, err := filepath.EvalSymlinks(filepath.Join(realRoot, rel))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return "", "", fmt.Errorf("path '%s' not found in the source", shown)
		}
		return "", "", fmt.Errorf("path '%s': %w", shown, err)
	}
	if !within(realRoot, dir) {
		return "", "", fmt.Errorf("path '%s' leads outside the source through a symlink", shown)
	}
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		return "", "", fmt.Errorf("path '%s' is not a folder", shown)
	}
	return realRoot, dir, nil
}

// within tells whether path is root or below it; both must be clean.
func within(root, path string) bool {
	if path == root {
		return true
	}
	if !strings.HasSuffix(root, string(filepath.Separator)) {
		root += string(filepath.Separator)
	}
	return strings.HasPrefix(path, root)
}

// loadSource gives the tree at root (absolute, resolved) as an in-memory
// file system at the same absolute paths, so that kustomize reads nothing
// else and decrypted files are never written to disk. Folders are read on
// first use (see memFS): a render reads the folders its Kustomization
// reaches, and the bounds below apply to what it read. Symlinks are
// followed when they resolve inside root and left out otherwise, as are
// those that lead back to a folder above them. With remote, paths under
// kustomize's clone folders are served from disk, so that remote Git bases
// keep working.
func loadSource(root string, remote bool) (filesys.FileSystem, error) {
	m, err := newSourceCopy(root, maxSourceBytes, maxSourceEntries)
	if err != nil {
		return nil, err
	}
	sfs := sourceFS{FileSystem: m, root: root}
	if remote {
		prefix, err := securefs.TmpConfirmedDirPrefix()
		if err != nil {
			return nil, fmt.Errorf("locating kustomize's clone folder: %w", err)
		}
		sfs.clones, sfs.disk = prefix, filesys.MakeFsOnDisk()
	}
	return sfs, nil
}

// newSourceCopy returns a memFS that copies the tree at root into memory
// as its folders are used, refusing more than limit bytes or maxEntries
// files and folders.
func newSourceCopy(root string, limit int64, maxEntries int) (*memFS, error) {
	c := &treeCopy{root: root, fs: newMemFS(), limit: limit, maxEntries: maxEntries, realOf: map[string]string{root: root}}
	if err := c.fs.mkdirs(memPath(root)); err != nil {
		return nil, err
	}
	c.fs.unloaded = map[string]bool{memPath(root): true}
	c.fs.fill = c.fill
	return c.fs, nil
}

// sourceError is the error met reading the source, if any, of a file
// system loadSource made.
func sourceError(fsys filesys.FileSystem) error {
	if s, ok := fsys.(sourceFS); ok {
		if m, ok := s.FileSystem.(*memFS); ok {
			return m.loadError()
		}
	}
	return nil
}

type treeCopy struct {
	root       string
	fs         *memFS
	realOf     map[string]string // each folder of the copy: where it is read from
	size       int64             // bytes copied so far
	limit      int64
	entries    int // files and folders copied so far
	maxEntries int
	largest    []sizedFile // the largest files met, largest first
}

// sizedFile is a file of the source and its size, for errors.
type sizedFile struct {
	path string // relative to the root, slash form
	size int64
}

// maxNamedFiles is how many of the largest files a size error names.
const maxNamedFiles = 3

// fill copies the files of the folder dst of the copy and makes its
// sub-folders unloaded ones, to be filled in turn when used.
func (c *treeCopy) fill(dst string) error {
	real, ok := c.realOf[dst]
	if !ok {
		return nil
	}
	entries, err := os.ReadDir(real)
	if err != nil {
		return fmt.Errorf("reading the source: %w", err)
	}
	for _, e := range entries {
		if c.entries++; c.entries > c.maxEntries {
			return fmt.Errorf("the source has more than %d files and folders, the most a render reads", c.maxEntries)
		}
		src, to := filepath.Join(real, e.Name()), filepath.Join(dst, e.Name())
		if _, ok := c.fs.files[to]; ok || c.fs.dirs[to] {
			continue // written by the render before its folder was read
		}
		fi, err := os.Lstat(src)
		if err != nil {
			return fmt.Errorf("reading the source: %w", err)
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			target, err := filepath.EvalSymlinks(src)
			if err != nil || !within(c.root, target) {
				continue // dangling, or leaves the source: not readable
			}
			if fi, err = os.Stat(target); err != nil {
				continue
			}
			if fi.IsDir() && within(target, real) {
				continue // a loop: the folder holds the link
			}
			src = target
		}
		switch {
		case fi.IsDir():
			if e.Name() == ".git" || e.Name() == ".weir" {
				// Git's metadata and weir up's state are never manifests.
				continue
			}
			c.fs.dirs[to] = true
			c.fs.unloaded[to] = true
			c.realOf[to] = src
		case fi.Mode().IsRegular():
			if err := c.file(src, to, fi.Size()); err != nil {
				return err
			}
		}
	}
	return nil
}

// file copies the file at src, of the size stat gave, to dst.
func (c *treeCopy) file(src, dst string, size int64) error {
	c.note(dst, size)
	left := c.limit - c.size
	if size > left {
		return c.tooLarge()
	}
	f, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("reading the source: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, left+1))
	if err != nil {
		return fmt.Errorf("reading the source: %w", err)
	}
	c.size += int64(len(data))
	if int64(len(data)) > left {
		// It grew after the stat.
		return c.tooLarge()
	}
	if err := checkAliases(c.rel(dst), data); err != nil {
		return err
	}
	c.fs.files[dst] = data
	return nil
}

// rel is the path of dst in the source, in slash form, for errors.
func (c *treeCopy) rel(dst string) string {
	rel, err := filepath.Rel(c.root, dst)
	if err != nil {
		return dst
	}
	return filepath.ToSlash(rel)
}

// checkAliases refuses a YAML file whose aliases expand beyond reason (a
// "billion laughs" document of a few hundred bytes): kustomize expands
// every alias in memory and would not come back, holding the build lock
// of every render of the process. The YAML library's own guard against
// excessive aliasing decides. Files that do not parse are left to
// kustomize, which names them if it reads them.
func checkAliases(rel string, data []byte) error {
	if !bytes.Contains(data, []byte("&")) || !bytes.Contains(data, []byte("*")) {
		return nil
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var doc any
		err := dec.Decode(&doc)
		switch {
		case err == io.EOF:
			return nil
		case err != nil && strings.Contains(err.Error(), "excessive aliasing"):
			return fmt.Errorf("%s: its YAML aliases expand beyond what a render reads (%w)", rel, err)
		case err != nil:
			return nil
		}
	}
}

// note keeps the file among the largest met, if it is one of them.
func (c *treeCopy) note(dst string, size int64) {
	i := len(c.largest)
	for i > 0 && c.largest[i-1].size < size {
		i--
	}
	if i < maxNamedFiles {
		c.largest = slices.Insert(c.largest, i, sizedFile{c.rel(dst), size})
		c.largest = c.largest[:min(len(c.largest), maxNamedFiles)]
	}
}

// tooLarge says that the source is over the limit, names the largest
// files met and how to leave them out.
func (c *treeCopy) tooLarge() error {
	names := make([]string, len(c.largest))
	for i, f := range c.largest {
		names[i] = fmt.Sprintf("%s (%s)", f.path, mebibytes(f.size))
	}
	return fmt.Errorf("the source is larger than %d MiB, the most a render reads; its largest files: %s. "+
		"Leave files that are not manifests out of the source's artifact with its spec.ignore (or a .sourceignore file)",
		c.limit>>20, strings.Join(names, ", "))
}

// mebibytes writes a size for a person: "120 MiB", "1.5 MiB", "812 KiB".
func mebibytes(n int64) string {
	switch {
	case n >= 1<<20:
		return strings.TrimSuffix(fmt.Sprintf("%.1f", float64(n)/(1<<20)), ".0") + " MiB"
	case n >= 1<<10:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}

// sourceFS is the in-memory copy of the source, plus, when remote bases are
// allowed, kustomize's clone folders on disk (kustomize clones remote Git
// bases there and reads them through the file system it was given).
type sourceFS struct {
	filesys.FileSystem
	root   string // the source root, always served from memory
	clones string // prefix of the clone folders; empty: none
	disk   filesys.FileSystem
}

// onDisk tells whether path belongs to a clone; a clone's symlinks must
// stay inside the clone folders.
func (s sourceFS) onDisk(path string) (bool, error) {
	if s.clones == "" {
		return false, nil
	}
	abs, err := filepath.Abs(path)
	if err != nil || !strings.HasPrefix(abs, s.clones) || within(s.root, abs) {
		return false, nil
	}
	if real, err := filepath.EvalSymlinks(abs); err == nil && !strings.HasPrefix(real, s.clones) {
		return true, fmt.Errorf("%s leads outside the remote base through a symlink", path)
	}
	return true, nil
}

func (s sourceFS) Create(path string) (filesys.File, error) {
	if ok, err := s.onDisk(path); ok {
		if err != nil {
			return nil, err
		}
		return s.disk.Create(path)
	}
	return s.FileSystem.Create(path)
}

func (s sourceFS) Mkdir(path string) error {
	if ok, err := s.onDisk(path); ok {
		if err != nil {
			return err
		}
		return s.disk.Mkdir(path)
	}
	return s.FileSystem.Mkdir(path)
}

func (s sourceFS) MkdirAll(path string) error {
	if ok, err := s.onDisk(path); ok {
		if err != nil {
			return err
		}
		return s.disk.MkdirAll(path)
	}
	return s.FileSystem.MkdirAll(path)
}

func (s sourceFS) RemoveAll(path string) error {
	if ok, _ := s.onDisk(path); ok {
		// Cleaning up a clone: symlinks are not followed by RemoveAll.
		return s.disk.RemoveAll(path)
	}
	return s.FileSystem.RemoveAll(path)
}

func (s sourceFS) Open(path string) (filesys.File, error) {
	if ok, err := s.onDisk(path); ok {
		if err != nil {
			return nil, err
		}
		return s.disk.Open(path)
	}
	return s.FileSystem.Open(path)
}

func (s sourceFS) IsDir(path string) bool {
	if ok, err := s.onDisk(path); ok {
		return err == nil && s.disk.IsDir(path)
	}
	return s.FileSystem.IsDir(path)
}

func (s sourceFS) ReadDir(path string) ([]string, error) {
	if ok, err := s.onDisk(path); ok {
		if err != nil {
			return nil, err
		}
		return s.disk.ReadDir(path)
	}
	return s.FileSystem.ReadDir(path)
}

func (s sourceFS) CleanedAbs(path string) (filesys.ConfirmedDir, string, error) {
	if ok, err := s.onDisk(path); ok {
		if err != nil {
			return "", "", err
		}
		return s.disk.CleanedAbs(path)
	}
	return s.FileSystem.CleanedAbs(path)
}

func (s sourceFS) Exists(path string) bool {
	if ok, err := s.onDisk(path); ok {
		return err == nil && s.disk.Exists(path)
	}
	return s.FileSystem.Exists(path)
}

func (s sourceFS) Glob(pattern string) ([]string, error) {
	if ok, err := s.onDisk(pattern); ok {
		if err != nil {
			return nil, err
		}
		matches, err := s.disk.Glob(pattern)
		if err != nil {
			return nil, err
		}
		var kept []string
		for _, m := range matches {
			if _, err := s.onDisk(m); err == nil {
				kept = append(kept, m)
			}
		}
		return kept, nil
	}
	return s.FileSystem.Glob(pattern)
}

func (s sourceFS) ReadFile(path string) ([]byte, error) {
	if ok, err := s.onDisk(path); ok {
		if err != nil {
			return nil, err
		}
		return s.disk.ReadFile(path)
	}
	return s.FileSystem.ReadFile(path)
}

func (s sourceFS) WriteFile(path string, data []byte) error {
	if ok, err := s.onDisk(path); ok {
		if err != nil {
			return err
		}
		return s.disk.WriteFile(path, data)
	}
	return s.FileSystem.WriteFile(path, data)
}

func (s sourceFS) Walk(path string, walkFn filepath.WalkFunc) error {
	if ok, err := s.onDisk(path); ok {
		if err != nil {
			return err
		}
		return s.disk.Walk(path, func(p string, info fs.FileInfo, err error) error {
			if _, serr := s.onDisk(p); serr != nil {
				return serr
			}
			return walkFn(p, info, err)
		})
	}
	return s.FileSystem.Walk(path, walkFn)
}
