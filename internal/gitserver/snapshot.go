package gitserver

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/format/gitignore"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/storer"
	"github.com/go-git/go-git/v5/storage/memory"
)

// skippedDirs are folders Snapshot never reads, at any depth: Git's own
// metadata and weir's local state.
var skippedDirs = map[string]bool{".git": true, ".weir": true}

// NewMemoryRepository returns an empty repository held in memory, for
// Snapshot to commit into and Server.Add to publish. Its storage may be
// served while Snapshot writes to it. HEAD names refs/heads/main until the
// first snapshot, which points HEAD at its own branch if main does not
// exist.
func NewMemoryRepository() *git.Repository {
	// InitWithOptions cannot fail here: the memory storage never returns
	// errors and the options are constants. Ignoring its error rather than
	// panicking keeps the signature simple for callers.
	repo, _ := git.InitWithOptions(&lockedStorage{s: memory.NewStorage()}, nil,
		git.InitOptions{DefaultBranch: plumbing.Main})
	return repo
}

// Snapshot commits the working tree at dir onto branch of repo as a single
// commit with message msg, and returns the commit's hash.
//
// Every file under dir is taken, except folders named .git or .weir and what
// .gitignore files exclude (the one at the root and any in subfolders, with
// Git's rules). Executable bits and symbolic links are recorded as Git
// records them; empty folders are left out, as Git leaves them out. When the
// resulting tree is the one already at the tip of branch, no commit is made
// and the tip's hash is returned.
//
// repo is normally made by NewMemoryRepository, whose storage is safe to
// serve while a snapshot is written. Snapshots of one repository should not
// run concurrently with each other: the second fails rather than lose the
// first.
func Snapshot(repo *git.Repository, branch, dir, msg string) (plumbing.Hash, error) {
	if repo == nil {
		return plumbing.ZeroHash, errors.New("snapshot: no repository given")
	}
	refName := plumbing.NewBranchReferenceName(branch)
	if err := refName.Validate(); err != nil {
		return plumbing.ZeroHash, fmt.Errorf("snapshot of %s: %q is not a valid branch name: %w", dir, branch, err)
	}
	info, err := os.Stat(dir)
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("snapshot of %s: %w", dir, err)
	}
	if !info.IsDir() {
		return plumbing.ZeroHash, fmt.Errorf("snapshot of %s: not a folder", dir)
	}

	st := repo.Storer
	tw := treeWriter{st: st, root: dir}
	tree, _, err := tw.writeDir(nil, nil)
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("snapshot of %s: %w", dir, err)
	}

	tip, err := st.Reference(refName)
	switch {
	case errors.Is(err, plumbing.ErrReferenceNotFound):
		tip = nil
	case err != nil:
		return plumbing.ZeroHash, fmt.Errorf("snapshot of %s: reading branch %s: %w", dir, branch, err)
	}

	var parents []plumbing.Hash
	if tip != nil {
		parent, err := object.GetCommit(st, tip.Hash())
		if err != nil {
			return plumbing.ZeroHash, fmt.Errorf("snapshot of %s: reading the tip of branch %s: %w", dir, branch, err)
		}
		if parent.TreeHash == tree {
			return parent.Hash, nil
		}
		parents = []plumbing.Hash{parent.Hash}
	}

	if msg == "" {
		msg = "Snapshot of " + dir
	}
	sig := object.Signature{Name: "weir", Email: "weir@localhost", When: time.Now()}
	commit, err := storeObject(st, &object.Commit{
		Author:       sig,
		Committer:    sig,
		Message:      msg,
		TreeHash:     tree,
		ParentHashes: parents,
	})
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("snapshot of %s: writing the commit: %w", dir, err)
	}

	if err := st.CheckAndSetReference(plumbing.NewHashReference(refName, commit), tip); err != nil {
		return plumbing.ZeroHash, fmt.Errorf("snapshot of %s: moving branch %s (did another snapshot run at the same time?): %w", dir, branch, err)
	}
	if err := pointHEAD(st, refName); err != nil {
		return plumbing.ZeroHash, fmt.Errorf("snapshot of %s: %w", dir, err)
	}
	return commit, nil
}

// pointHEAD makes HEAD name branch when HEAD does not lead to a commit yet,
// so that a clone without a branch gets the snapshot.
func pointHEAD(st storer.ReferenceStorer, branch plumbing.ReferenceName) error {
	head, err := st.Reference(plumbing.HEAD)
	if err == nil && head.Type() == plumbing.SymbolicReference {
		if _, err := st.Reference(head.Target()); err == nil {
			return nil
		}
	}
	if err := st.SetReference(plumbing.NewSymbolicReference(plumbing.HEAD, branch)); err != nil {
		return fmt.Errorf("pointing HEAD at %s: %w", branch, err)
	}
	return nil
}

// treeWriter stores the files under root as Git blobs and trees.
type treeWriter struct {
	st   storer.EncodedObjectStorer
	root string
}

// writeDir stores the folder at path rel (components under root) and returns
// its tree hash; empty reports that nothing in it was kept. ignore holds
// the .gitignore patterns of the folders above.
func (w treeWriter) writeDir(rel []string, ignore []gitignore.Pattern) (hash plumbing.Hash, empty bool, err error) {
	dir := filepath.Join(append([]string{w.root}, rel...)...)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return plumbing.ZeroHash, false, err
	}
	own, err := readIgnoreFile(filepath.Join(dir, ".gitignore"), rel)
	if err != nil {
		return plumbing.ZeroHash, false, err
	}
	// A fresh slice, so that sibling folders never share their patterns.
	ignore = slices.Concat(ignore, own)
	matcher := gitignore.NewMatcher(ignore)

	var tree object.Tree
	for _, e := range entries {
		name := e.Name()
		path := append(slices.Clip(rel), name)
		switch typ := e.Type(); {
		case typ.IsDir():
			if skippedDirs[name] || matcher.Match(path, true) {
				continue
			}
			h, empty, err := w.writeDir(path, ignore)
			if err != nil {
				return plumbing.ZeroHash, false, err
			}
			if !empty {
				tree.Entries = append(tree.Entries, object.TreeEntry{Name: name, Mode: filemode.Dir, Hash: h})
			}
		case typ.IsRegular(), typ&fs.ModeSymlink != 0:
			if matcher.Match(path, false) {
				continue
			}
			entry, err := w.writeFile(filepath.Join(dir, name), e)
			if err != nil {
				return plumbing.ZeroHash, false, err
			}
			tree.Entries = append(tree.Entries, entry)
		default:
			// Sockets, pipes and devices have no Git representation.
		}
	}

	sort.Sort(object.TreeEntrySorter(tree.Entries))
	h, err := storeObject(w.st, &tree)
	if err != nil {
		return plumbing.ZeroHash, false, fmt.Errorf("writing the tree of %s: %w", dir, err)
	}
	return h, len(tree.Entries) == 0, nil
}

// writeFile stores one file as a blob; a symbolic link is stored as its
// target, as Git does, and never followed.
func (w treeWriter) writeFile(path string, e fs.DirEntry) (object.TreeEntry, error) {
	entry := object.TreeEntry{Name: e.Name(), Mode: filemode.Regular}
	var content []byte
	if e.Type()&fs.ModeSymlink != 0 {
		target, err := os.Readlink(path)
		if err != nil {
			return entry, err
		}
		entry.Mode = filemode.Symlink
		content = []byte(filepath.ToSlash(target))
	} else {
		info, err := e.Info()
		if err != nil {
			return entry, err
		}
		if info.Mode()&0o111 != 0 {
			entry.Mode = filemode.Executable
		}
		if content, err = os.ReadFile(path); err != nil {
			return entry, err
		}
	}
	h, err := storeBlob(w.st, content)
	if err != nil {
		return entry, fmt.Errorf("storing %s: %w", path, err)
	}
	entry.Hash = h
	return entry, nil
}

// readIgnoreFile parses a .gitignore file whose patterns apply under domain;
// a missing file has no patterns.
func readIgnoreFile(path string, domain []string) ([]gitignore.Pattern, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var patterns []gitignore.Pattern
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSuffix(line, "\r")
		if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#") {
			continue
		}
		patterns = append(patterns, gitignore.ParsePattern(line, domain))
	}
	return patterns, nil
}

// storeBlob stores content as a blob unless the storage already has it.
func storeBlob(st storer.EncodedObjectStorer, content []byte) (plumbing.Hash, error) {
	h := plumbing.ComputeHash(plumbing.BlobObject, content)
	if st.HasEncodedObject(h) == nil {
		return h, nil
	}
	obj := st.NewEncodedObject()
	obj.SetType(plumbing.BlobObject)
	obj.SetSize(int64(len(content)))
	wr, err := obj.Writer()
	if err != nil {
		return plumbing.ZeroHash, err
	}
	if _, err := wr.Write(content); err != nil {
		_ = wr.Close()
		return plumbing.ZeroHash, err
	}
	if err := wr.Close(); err != nil {
		return plumbing.ZeroHash, err
	}
	return st.SetEncodedObject(obj)
}

// encodable is a Git object that can write itself, such as a tree or commit.
type encodable interface {
	Encode(plumbing.EncodedObject) error
}

// storeObject encodes o into the storage and returns its hash.
func storeObject(st storer.EncodedObjectStorer, o encodable) (plumbing.Hash, error) {
	obj := st.NewEncodedObject()
	if err := o.Encode(obj); err != nil {
		return plumbing.ZeroHash, err
	}
	return st.SetEncodedObject(obj)
}
