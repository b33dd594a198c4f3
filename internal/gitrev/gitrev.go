// Package gitrev reads a local Git repository at a revision, for the
// commands that compare commits offline (`weir plan --from --to`, `weir
// test --since`): it resolves revisions as git does, writes a commit's
// tree into a folder, and lists the files that differ between a commit
// and the working tree.
package gitrev

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// Repository is a local Git repository.
type Repository struct {
	git *git.Repository
	top string
}

// Open opens the Git repository that holds dir (dir or a folder above
// it), worktrees included.
func Open(dir string) (*Repository, error) {
	r, err := git.PlainOpenWithOptions(dir, &git.PlainOpenOptions{DetectDotGit: true, EnableDotGitCommonDir: true})
	if err != nil {
		return nil, fmt.Errorf("%s is not in a Git repository: %w", dir, err)
	}
	wt, err := r.Worktree()
	if err != nil {
		return nil, fmt.Errorf("the Git repository of %s has no working tree: %w", dir, err)
	}
	top, err := filepath.EvalSymlinks(wt.Filesystem.Root())
	if err != nil {
		return nil, fmt.Errorf("resolving the Git repository of %s: %w", dir, err)
	}
	return &Repository{git: r, top: top}, nil
}

// OpenAt opens the Git repository that holds dir and returns dir's slash
// path in it ("." for the top).
func OpenAt(dir string) (*Repository, string, error) {
	r, err := Open(dir)
	if err != nil {
		return nil, "", err
	}
	rel, err := r.Rel(dir)
	if err != nil {
		return nil, "", err
	}
	return r, rel, nil
}

// Top is the folder of the working tree.
func (r *Repository) Top() string { return r.top }

// Rel is dir as a slash path relative to the working tree ("." for the
// top), or an error when it is outside.
func (r *Repository) Rel(dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	if resolved, err := filepath.EvalSymlinks(abs); err == nil {
		abs = resolved
	}
	rel, err := filepath.Rel(r.top, abs)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return "", fmt.Errorf("%s is outside the Git repository %s", dir, r.top)
	}
	return filepath.ToSlash(rel), nil
}

// Commit is a resolved revision.
type Commit struct {
	Hash   string
	commit *object.Commit
}

// Short is the hash's first 7 characters.
func (c *Commit) Short() string { return c.Hash[:7] }

// Resolve resolves a revision as git does (a branch, a tag, a remote
// branch such as origin/main, a hash or its prefix, HEAD~1, main^).
func (r *Repository) Resolve(rev string) (*Commit, error) {
	h, err := r.git.ResolveRevision(plumbing.Revision(rev))
	if err != nil {
		return nil, fmt.Errorf("revision %q: %w (is it fetched? a shallow CI checkout needs fetch-depth: 0)", rev, err)
	}
	c, err := r.git.CommitObject(*h)
	if err != nil {
		return nil, fmt.Errorf("revision %q: %w", rev, err)
	}
	return &Commit{Hash: h.String(), commit: c}, nil
}

// Export writes the files of c under prefix (a slash path, "." for the
// whole tree) into dest, as a checkout would lay them out under
// dest/prefix. Symbolic links are kept; submodules are left out.
func (r *Repository) Export(c *Commit, prefix, dest string) error {
	tree, err := c.commit.Tree()
	if err != nil {
		return fmt.Errorf("reading the tree of %s: %w", c.Short(), err)
	}
	prefix = path.Clean(prefix)
	if prefix != "." {
		if tree, err = tree.Tree(prefix); errors.Is(err, object.ErrDirectoryNotFound) {
			return fmt.Errorf("%s has no folder %s", c.Short(), prefix)
		} else if err != nil {
			return fmt.Errorf("reading %s at %s: %w", prefix, c.Short(), err)
		}
	}
	base := filepath.Join(dest, filepath.FromSlash(prefix))
	return tree.Files().ForEach(func(f *object.File) error {
		target := filepath.Join(base, filepath.FromSlash(f.Name))
		if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
			return err
		}
		if f.Mode == filemode.Symlink {
			link, err := f.Contents()
			if err != nil {
				return fmt.Errorf("reading %s at %s: %w", f.Name, c.Short(), err)
			}
			return os.Symlink(link, target)
		}
		mode := os.FileMode(0o644)
		if f.Mode == filemode.Executable {
			mode = 0o755
		}
		return writeBlob(f, target, mode)
	})
}

func writeBlob(f *object.File, target string, mode os.FileMode) error {
	rd, err := f.Reader()
	if err != nil {
		return fmt.Errorf("reading %s: %w", f.Name, err)
	}
	defer rd.Close()
	out, err := os.OpenFile(target, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, rd); err != nil {
		out.Close()
		return fmt.Errorf("writing %s: %w", target, err)
	}
	return out.Close()
}

// Changed lists, as slash paths from the top, the files that differ
// between c and the working tree: changed, added (tracked or not,
// unless ignored) and deleted.
func (r *Repository) Changed(c *Commit) ([]string, error) {
	wt, err := r.git.Worktree()
	if err != nil {
		return nil, err
	}
	status, err := wt.Status()
	if err != nil {
		return nil, fmt.Errorf("reading the working tree's status: %w", err)
	}
	head, err := r.git.Head()
	if err != nil {
		return nil, fmt.Errorf("reading HEAD: %w", err)
	}
	seen := map[string]bool{}
	var out []string
	add := func(p string) {
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	if head.Hash().String() != c.Hash {
		headCommit, err := r.git.CommitObject(head.Hash())
		if err != nil {
			return nil, err
		}
		from, err := c.commit.Tree()
		if err != nil {
			return nil, err
		}
		to, err := headCommit.Tree()
		if err != nil {
			return nil, err
		}
		changes, err := object.DiffTree(from, to)
		if err != nil {
			return nil, fmt.Errorf("comparing %s with HEAD: %w", c.Short(), err)
		}
		for _, ch := range changes {
			if ch.From.Name != "" {
				add(ch.From.Name)
			}
			if ch.To.Name != "" {
				add(ch.To.Name)
			}
		}
	}
	for p, s := range status {
		if s.Worktree != git.Unmodified || s.Staging != git.Unmodified {
			add(p)
		}
	}
	return out, nil
}
