package gitserver

import (
	"errors"
	"fmt"
	"math"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp"
	"github.com/go-git/go-git/v5/plumbing/storer"
)

// selectObjects chooses the objects a request gets when go-git's server
// cannot choose them: requests with a depth, requests from shallow clones,
// and requests for nothing new.
//
// The client has its haves and everything under them, except past its own
// shallow commits, whose parents it lacks. It gets the commits within depth
// of its wants, with their trees and blobs, less what it has. Commits at the
// depth limit that have parents become shallow on the client; a shallow
// commit of the client that is now within depth is unshallowed, and its
// parents are sent.
func selectObjects(st storer.EncodedObjectStorer, req *packp.UploadPackRequest) ([]plumbing.Hash, packp.ShallowUpdate, error) {
	var update packp.ShallowUpdate
	depth := math.MaxInt
	if d, ok := req.Depth.(packp.DepthCommits); ok && d > 0 {
		depth = int(d)
	}

	clientShallow := make(map[plumbing.Hash]bool, len(req.Shallows))
	for _, h := range req.Shallows {
		clientShallow[h] = true
	}
	s := objectSet{st: st, have: map[plumbing.Hash]bool{}, send: map[plumbing.Hash]bool{}}
	// The client's shallow commits are its own too, with their trees.
	if err := s.markHave(append(knownObjects(st, req.Shallows), req.Haves...), clientShallow); err != nil {
		return nil, update, err
	}

	type queued struct {
		hash  plumbing.Hash
		depth int
	}
	var queue []queued
	visited := map[plumbing.Hash]bool{}
	for _, want := range req.Wants {
		commit, err := s.peel(want)
		if err != nil {
			return nil, update, err
		}
		if commit != plumbing.ZeroHash {
			queue = append(queue, queued{commit, 1})
		}
	}
	// Breadth first, so that a commit is first reached at its least depth.
	for len(queue) > 0 {
		q := queue[0]
		queue = queue[1:]
		if visited[q.hash] {
			continue
		}
		visited[q.hash] = true
		commit, err := object.GetCommit(st, q.hash)
		if err != nil {
			return nil, update, fmt.Errorf("reading commit %s: %w", q.hash, err)
		}

		if s.have[q.hash] {
			if !clientShallow[q.hash] || q.depth >= depth {
				continue
			}
			update.Unshallows = append(update.Unshallows, q.hash)
		} else {
			s.add(q.hash)
			if err := s.addTree(commit.TreeHash); err != nil {
				return nil, update, err
			}
			if q.depth >= depth {
				if commit.NumParents() > 0 && !clientShallow[q.hash] {
					update.Shallows = append(update.Shallows, q.hash)
				}
				continue
			}
		}
		for _, p := range commit.ParentHashes {
			queue = append(queue, queued{p, q.depth + 1})
		}
	}
	return s.order, update, nil
}

// objectSet gathers the objects to send, leaving out those the client has.
type objectSet struct {
	st    storer.EncodedObjectStorer
	have  map[plumbing.Hash]bool
	send  map[plumbing.Hash]bool
	order []plumbing.Hash
}

func (s *objectSet) add(h plumbing.Hash) {
	s.send[h] = true
	s.order = append(s.order, h)
}

// markHave records the commits at starts and all they reach as the
// client's, not crossing the client's shallow commits.
func (s *objectSet) markHave(starts []plumbing.Hash, shallow map[plumbing.Hash]bool) error {
	stack := append([]plumbing.Hash(nil), starts...)
	for len(stack) > 0 {
		h := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if s.have[h] {
			continue
		}
		commit, err := object.GetCommit(s.st, h)
		if errors.Is(err, plumbing.ErrObjectNotFound) {
			// A have that is not a commit (a tag, a tree): it vouches for
			// nothing further.
			s.have[h] = true
			continue
		}
		if err != nil {
			return fmt.Errorf("reading commit %s: %w", h, err)
		}
		s.have[h] = true
		if err := s.markTreeHave(commit.TreeHash); err != nil {
			return err
		}
		if !shallow[h] {
			stack = append(stack, commit.ParentHashes...)
		}
	}
	return nil
}

func (s *objectSet) markTreeHave(h plumbing.Hash) error {
	if s.have[h] {
		return nil
	}
	s.have[h] = true
	tree, err := object.GetTree(s.st, h)
	if err != nil {
		return fmt.Errorf("reading tree %s: %w", h, err)
	}
	for _, e := range tree.Entries {
		switch e.Mode {
		case filemode.Submodule:
		case filemode.Dir:
			if err := s.markTreeHave(e.Hash); err != nil {
				return err
			}
		default:
			s.have[e.Hash] = true
		}
	}
	return nil
}

// addTree adds a tree and the trees and blobs under it that the client
// lacks. Submodule entries name commits of another repository: not sent.
func (s *objectSet) addTree(h plumbing.Hash) error {
	if s.have[h] || s.send[h] {
		return nil
	}
	tree, err := object.GetTree(s.st, h)
	if err != nil {
		return fmt.Errorf("reading tree %s: %w", h, err)
	}
	s.add(h)
	for _, e := range tree.Entries {
		switch e.Mode {
		case filemode.Submodule:
		case filemode.Dir:
			if err := s.addTree(e.Hash); err != nil {
				return err
			}
		default:
			if !s.have[e.Hash] && !s.send[e.Hash] {
				s.add(e.Hash)
			}
		}
	}
	return nil
}

// peel adds the annotated tags on the way from a wanted object to what they
// point at, and returns the commit found there. A wanted tree or blob is
// added whole, with no commit.
func (s *objectSet) peel(h plumbing.Hash) (plumbing.Hash, error) {
	for {
		obj, err := s.st.EncodedObject(plumbing.AnyObject, h)
		if err != nil {
			return plumbing.ZeroHash, fmt.Errorf("reading object %s: %w", h, err)
		}
		switch obj.Type() {
		case plumbing.CommitObject:
			return h, nil
		case plumbing.TreeObject:
			return plumbing.ZeroHash, s.addTree(h)
		case plumbing.BlobObject:
			if !s.have[h] && !s.send[h] {
				s.add(h)
			}
			return plumbing.ZeroHash, nil
		case plumbing.TagObject:
			tag, err := object.DecodeTag(s.st, obj)
			if err != nil {
				return plumbing.ZeroHash, fmt.Errorf("reading tag %s: %w", h, err)
			}
			if !s.have[h] && !s.send[h] {
				s.add(h)
			}
			h = tag.Target
		default:
			return plumbing.ZeroHash, fmt.Errorf("object %s has unexpected type %s", h, obj.Type())
		}
	}
}
