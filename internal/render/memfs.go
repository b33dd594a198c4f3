package render

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// memFS is an in-memory file system for kustomize, holding a copy of the
// source. kustomize's own (filesys.MakeFsInMemory) is made for tests: it
// refuses any file or folder name outside [a-zA-Z0-9-_.:] or containing
// "..", which repositories and their checkout folders do have (spaces,
// "+", "@", commas, non-ASCII letters). This one takes any name and, like
// the other, knows no symlinks: the copy resolved them.
//
// Paths are absolute (a relative path is taken from "/") and cleaned. It
// is not safe for concurrent use; Build uses it from one goroutine.
//
// A memFS made by loadSource fills its folders on first use: a folder
// listed in unloaded exists, but its entries are read (by fill) only when
// a path in it is first asked for, so that a render reads the folders its
// Kustomization reaches, not the whole source.
type memFS struct {
	files map[string][]byte
	dirs  map[string]bool

	unloaded map[string]bool        // folders whose entries are not read yet
	fill     func(dir string) error // reads an unloaded folder's entries
	fillErr  error                  // the first error fill returned

	// used records what the render asked of the source (see Reads).
	used accessLog
}

// accessLog records the paths a render asked about: files read and paths
// whose existence was checked, folders listed, trees walked.
type accessLog struct {
	paths, listed, trees map[string]bool
}

func (a *accessLog) add(set *map[string]bool, p string) {
	if *set == nil {
		*set = map[string]bool{}
	}
	(*set)[p] = true
}

var _ filesys.FileSystem = (*memFS)(nil)

func newMemFS() *memFS {
	return &memFS{files: map[string][]byte{}, dirs: map[string]bool{string(filepath.Separator): true}}
}

func memPath(p string) string {
	if !filepath.IsAbs(p) {
		p = string(filepath.Separator) + p
	}
	return filepath.Clean(p)
}

// notExist reads like kustomize's in-memory file system's error and
// unwraps to fs.ErrNotExist.
type notExist string

func (e notExist) Error() string { return fmt.Sprintf("'%s' doesn't exist", string(e)) }
func (e notExist) Unwrap() error { return fs.ErrNotExist }

var errNotDir = errors.New("not a directory")

// touch fills the unloaded folders on the way to p, from the top down
// (filling a folder makes its sub-folders unloaded ones), so that p and
// its parents hold what the source holds.
func (m *memFS) touch(p string) {
	if len(m.unloaded) == 0 {
		return
	}
	if parent := filepath.Dir(p); parent != p {
		m.touch(parent)
	}
	m.load(p)
}

// touchAll fills p and every folder below it.
func (m *memFS) touchAll(p string) {
	m.touch(p)
	under := p + string(filepath.Separator)
	if p == string(filepath.Separator) {
		under = p
	}
	for {
		var next []string
		for d := range m.unloaded {
			if strings.HasPrefix(d, under) {
				next = append(next, d)
			}
		}
		if len(next) == 0 || m.fillErr != nil {
			return
		}
		slices.Sort(next)
		for _, d := range next {
			m.load(d)
		}
	}
}

// load fills d if it is unloaded, keeping the first error.
func (m *memFS) load(d string) {
	if !m.unloaded[d] {
		return
	}
	delete(m.unloaded, d)
	if err := m.fill(d); err != nil && m.fillErr == nil {
		m.fillErr = err
	}
}

// loadError is the first error met filling a folder from the source: a
// render that met one must fail with it, as what it read is incomplete.
func (m *memFS) loadError() error { return m.fillErr }

// mkdirs creates the folder p and its parents.
func (m *memFS) mkdirs(p string) error {
	var missing []string
	for d := p; !m.dirs[d]; d = filepath.Dir(d) {
		if _, ok := m.files[d]; ok {
			return &fs.PathError{Op: "mkdir", Path: d, Err: errNotDir}
		}
		missing = append(missing, d)
	}
	for _, d := range missing {
		m.dirs[d] = true
	}
	return nil
}

func (m *memFS) Create(path string) (filesys.File, error) {
	p := memPath(path)
	m.touch(p)
	if m.dirs[p] {
		return nil, &fs.PathError{Op: "create", Path: path, Err: fs.ErrExist}
	}
	if !m.dirs[filepath.Dir(p)] {
		return nil, notExist(filepath.Dir(p))
	}
	m.files[p] = nil
	return &memFile{m: m, path: p, w: &bytes.Buffer{}}, nil
}

func (m *memFS) Mkdir(path string) error {
	p := memPath(path)
	m.touch(p)
	if _, ok := m.files[p]; ok || m.dirs[p] {
		return &fs.PathError{Op: "mkdir", Path: path, Err: fs.ErrExist}
	}
	if !m.dirs[filepath.Dir(p)] {
		return notExist(filepath.Dir(p))
	}
	m.dirs[p] = true
	return nil
}

func (m *memFS) MkdirAll(path string) error {
	p := memPath(path)
	m.touch(p)
	return m.mkdirs(p)
}

func (m *memFS) RemoveAll(path string) error {
	p := memPath(path)
	under := p + string(filepath.Separator)
	for f := range m.files {
		if f == p || strings.HasPrefix(f, under) {
			delete(m.files, f)
		}
	}
	for d := range m.dirs {
		if (d == p || strings.HasPrefix(d, under)) && d != string(filepath.Separator) {
			delete(m.dirs, d)
			delete(m.unloaded, d)
		}
	}
	return nil
}

func (m *memFS) Open(path string) (filesys.File, error) {
	p := memPath(path)
	m.used.add(&m.used.paths, p)
	m.touch(p)
	if data, ok := m.files[p]; ok {
		return &memFile{m: m, path: p, r: bytes.NewReader(data)}, nil
	}
	if m.dirs[p] {
		return &memFile{m: m, path: p, dir: true}, nil
	}
	return nil, notExist(path)
}

func (m *memFS) IsDir(path string) bool {
	p := memPath(path)
	m.used.add(&m.used.paths, p)
	m.touch(p)
	return m.dirs[p]
}

func (m *memFS) Exists(path string) bool {
	p := memPath(path)
	m.used.add(&m.used.paths, p)
	m.touch(p)
	_, ok := m.files[p]
	return ok || m.dirs[p]
}

func (m *memFS) ReadDir(path string) ([]string, error) {
	p := memPath(path)
	m.used.add(&m.used.listed, p)
	m.touch(p)
	if !m.dirs[p] {
		if _, ok := m.files[p]; ok {
			return nil, &fs.PathError{Op: "readdir", Path: path, Err: errNotDir}
		}
		return nil, notExist(path)
	}
	var names []string
	add := func(child string) {
		if child != p && filepath.Dir(child) == p {
			names = append(names, filepath.Base(child))
		}
	}
	for f := range m.files {
		add(f)
	}
	for d := range m.dirs {
		add(d)
	}
	slices.Sort(names)
	return names, nil
}

// CleanedAbs splits path into its folder and file name, or returns the
// folder and "" when path is one.
func (m *memFS) CleanedAbs(path string) (filesys.ConfirmedDir, string, error) {
	p := memPath(path)
	m.used.add(&m.used.paths, p)
	m.touch(p)
	if m.dirs[p] {
		return filesys.ConfirmedDir(p), "", nil
	}
	if _, ok := m.files[p]; ok {
		return filesys.ConfirmedDir(filepath.Dir(p)), filepath.Base(p), nil
	}
	return "", "", notExist(path)
}

func (m *memFS) Glob(pattern string) ([]string, error) {
	pat := memPath(pattern)
	if _, err := filepath.Match(pat, ""); err != nil {
		return nil, err
	}
	if dir := filepath.Dir(pat); !strings.ContainsAny(dir, `*?[\`) {
		m.used.add(&m.used.listed, dir)
		m.touch(dir)
	} else {
		fixed := dir
		for strings.ContainsAny(fixed, `*?[\`) {
			fixed = filepath.Dir(fixed)
		}
		m.used.add(&m.used.trees, fixed)
		m.touchAll(fixed)
	}
	var matches []string
	for f := range m.files {
		if ok, _ := filepath.Match(pat, f); ok {
			matches = append(matches, f)
		}
	}
	for d := range m.dirs {
		if ok, _ := filepath.Match(pat, d); ok {
			matches = append(matches, d)
		}
	}
	slices.Sort(matches)
	return matches, nil
}

func (m *memFS) ReadFile(path string) ([]byte, error) {
	p := memPath(path)
	m.used.add(&m.used.paths, p)
	m.touch(p)
	if data, ok := m.files[p]; ok {
		return bytes.Clone(data), nil
	}
	if m.dirs[p] {
		return nil, &fs.PathError{Op: "read", Path: path, Err: errors.New("is a directory")}
	}
	return nil, notExist(path)
}

func (m *memFS) WriteFile(path string, data []byte) error {
	p := memPath(path)
	m.touch(p)
	if m.dirs[p] {
		return &fs.PathError{Op: "write", Path: path, Err: errors.New("is a directory")}
	}
	if err := m.mkdirs(filepath.Dir(p)); err != nil {
		return err
	}
	m.files[p] = bytes.Clone(data)
	return nil
}

func (m *memFS) stat(p string) (fs.FileInfo, error) {
	m.touch(p)
	if data, ok := m.files[p]; ok {
		return memInfo{name: filepath.Base(p), size: int64(len(data))}, nil
	}
	if m.dirs[p] {
		return memInfo{name: filepath.Base(p), dir: true}, nil
	}
	return nil, notExist(p)
}

// Walk walks the tree at path in lexical order, as filepath.Walk does.
func (m *memFS) Walk(path string, walkFn filepath.WalkFunc) error {
	p := memPath(path)
	m.used.add(&m.used.trees, p)
	m.touchAll(p)
	fi, err := m.stat(p)
	if err != nil {
		err = walkFn(p, nil, err)
	} else {
		err = m.walk(p, fi, walkFn)
	}
	if err == filepath.SkipDir || err == filepath.SkipAll {
		return nil
	}
	return err
}

func (m *memFS) walk(p string, fi fs.FileInfo, walkFn filepath.WalkFunc) error {
	if !fi.IsDir() {
		return walkFn(p, fi, nil)
	}
	names, err := m.ReadDir(p)
	if err1 := walkFn(p, fi, err); err != nil || err1 != nil {
		return err1
	}
	for _, name := range names {
		child := filepath.Join(p, name)
		cfi, err := m.stat(child)
		if err != nil {
			return err
		}
		if err := m.walk(child, cfi, walkFn); err != nil {
			if !cfi.IsDir() || err != filepath.SkipDir {
				return err
			}
		}
	}
	return nil
}

type memInfo struct {
	name string
	size int64
	dir  bool
}

func (i memInfo) Name() string       { return i.name }
func (i memInfo) Size() int64        { return i.size }
func (i memInfo) ModTime() time.Time { return time.Time{} }
func (i memInfo) IsDir() bool        { return i.dir }
func (i memInfo) Sys() any           { return nil }
func (i memInfo) Mode() fs.FileMode {
	if i.dir {
		return fs.ModeDir | 0o755
	}
	return 0o644
}

// memFile is a file opened for reading (r), created for writing (w, kept
// on Close), or a folder (dir).
type memFile struct {
	m    *memFS
	path string
	r    *bytes.Reader
	w    *bytes.Buffer
	dir  bool
}

func (f *memFile) Read(p []byte) (int, error) {
	if f.r == nil {
		return 0, &fs.PathError{Op: "read", Path: f.path, Err: fs.ErrInvalid}
	}
	return f.r.Read(p)
}

func (f *memFile) Write(p []byte) (int, error) {
	if f.w == nil {
		return 0, &fs.PathError{Op: "write", Path: f.path, Err: fs.ErrInvalid}
	}
	return f.w.Write(p)
}

func (f *memFile) Close() error {
	if f.w != nil {
		f.m.files[f.path] = bytes.Clone(f.w.Bytes())
	}
	return nil
}

func (f *memFile) Stat() (fs.FileInfo, error) {
	switch {
	case f.dir:
		return memInfo{name: filepath.Base(f.path), dir: true}, nil
	case f.w != nil:
		return memInfo{name: filepath.Base(f.path), size: int64(f.w.Len())}, nil
	}
	return memInfo{name: filepath.Base(f.path), size: f.r.Size()}, nil
}

var _ io.ReadWriteCloser = (*memFile)(nil)
