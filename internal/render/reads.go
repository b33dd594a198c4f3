package render

import (
	"path"
	"path/filepath"
	"slices"
	"strings"

	"sigs.k8s.io/kustomize/api/konfig"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// Reads is what a render asked of its source, as slash paths relative to
// the source root: a change anywhere else cannot alter what it renders
// (its substitution values and charts aside, which are read elsewhere).
// Paths are as the render saw them: a file reached through a symlinked
// folder is listed under the link.
type Reads struct {
	// Paths are the files read and the paths whose existence was asked.
	Paths []string `json:"paths,omitempty"`
	// Listed are the folders whose entries were listed.
	Listed []string `json:"listed,omitempty"`
	// Trees are the folders walked whole.
	Trees []string `json:"trees,omitempty"`
}

// Touches tells whether a change to the file p (a slash path from the
// root: edited, added or deleted) can alter the render.
func (r Reads) Touches(p string) bool {
	p = path.Clean(p)
	if _, ok := slices.BinarySearch(r.Paths, p); ok {
		return true
	}
	if _, ok := slices.BinarySearch(r.Listed, path.Dir(p)); ok {
		return true
	}
	for _, t := range r.Trees {
		if t == "." || p == t || strings.HasPrefix(p, t+"/") {
			return true
		}
	}
	return false
}

// readsOf is what the render asked of fsys, a source loadSource made
// from root.
func readsOf(fsys filesys.FileSystem, root string) Reads {
	s, ok := fsys.(sourceFS)
	if !ok {
		return Reads{}
	}
	m, ok := s.FileSystem.(*memFS)
	if !ok {
		return Reads{}
	}
	rel := func(set map[string]bool) []string {
		var out []string
		for p := range set {
			r, err := filepath.Rel(root, p)
			if err != nil || r == ".." || strings.HasPrefix(r, ".."+string(filepath.Separator)) {
				continue
			}
			out = append(out, filepath.ToSlash(r))
		}
		slices.Sort(out)
		return out
	}
	return Reads{Paths: rel(m.used.paths), Listed: rel(m.used.listed), Trees: rel(m.used.trees)}
}

// noteGenerated records what Flux's generator reads of dir, which it
// reads from the disk, below the file system the render records: it
// lists dir and its sub-folders, takes every file in them, and stops at a
// sub-folder that holds a kustomization file (kustomize reads that one
// through fsys).
func noteGenerated(fsys filesys.FileSystem, dir string) {
	s, ok := fsys.(sourceFS)
	if !ok {
		return
	}
	m, ok := s.FileSystem.(*memFS)
	if !ok {
		return
	}
	var walk func(d string, top bool)
	walk = func(d string, top bool) {
		if !top {
			for _, name := range konfig.RecognizedKustomizationFileNames() {
				if m.Exists(filepath.Join(d, name)) {
					return
				}
			}
		}
		names, err := m.ReadDir(d)
		if err != nil {
			return
		}
		for _, n := range names {
			p := filepath.Join(d, n)
			if m.IsDir(p) {
				walk(p, false)
			} else {
				m.used.add(&m.used.paths, memPath(p))
			}
		}
	}
	walk(dir, true)
}
