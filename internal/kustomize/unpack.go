package kustomize

import (
	"context"
	"fmt"
	"os"
	"sync"

	"github.com/fluxcd/pkg/apis/meta"

	"github.com/weirhq/weir/internal/artifact"
)

// keepUnpacked is how many unpacked artifacts stay on disk when unused.
const keepUnpacked = 4

// unpackCache unpacks each artifact once and shares the tree, read-only,
// between every Kustomization that renders from it: a repository with 200
// Kustomizations is unpacked once per revision, not 200 times.
type unpackCache struct {
	mu    sync.Mutex
	trees map[string]*unpackedTree
	order []string // digests, oldest first
}

type unpackedTree struct {
	ready chan struct{} // closed once dir or err is set
	dir   string
	err   error
	users int
}

// acquire returns the unpacked tree of a, unpacking it if needed, and a
// release function to call when the render is done with it.
func (c *unpackCache) acquire(ctx context.Context, store *artifact.Store, a *meta.Artifact) (string, func(), error) {
	c.mu.Lock()
	if c.trees == nil {
		c.trees = map[string]*unpackedTree{}
	}
	t, ok := c.trees[a.Digest]
	if !ok {
		t = &unpackedTree{ready: make(chan struct{})}
		c.trees[a.Digest] = t
		c.order = append(c.order, a.Digest)
		go c.unpack(store, a, t)
	}
	t.users++
	c.mu.Unlock()

	release := func() {
		c.mu.Lock()
		t.users--
		c.evict()
		c.mu.Unlock()
	}
	select {
	case <-t.ready:
	case <-ctx.Done():
		release()
		return "", nil, ctx.Err()
	}
	if t.err != nil {
		c.mu.Lock()
		if c.trees[a.Digest] == t {
			delete(c.trees, a.Digest) // let the next attempt try again
			c.removeOrder(a.Digest)
		}
		c.mu.Unlock()
		release()
		return "", nil, t.err
	}
	return t.dir, release, nil
}

func (c *unpackCache) unpack(store *artifact.Store, a *meta.Artifact, t *unpackedTree) {
	defer close(t.ready)
	dir, err := os.MkdirTemp("", "artifact-")
	if err != nil {
		t.err = fmt.Errorf("creating a work folder: %w", err)
		return
	}
	if err := store.Extract(context.Background(), a, dir); err != nil {
		os.RemoveAll(dir)
		t.err = err
		return
	}
	t.dir = dir
}

// evict removes the oldest unused trees beyond keepUnpacked. c.mu is held.
func (c *unpackCache) evict() {
	for i := 0; len(c.order) > keepUnpacked && i < len(c.order); {
		d := c.order[i]
		t := c.trees[d]
		select {
		case <-t.ready:
		default:
			i++
			continue
		}
		if t.users > 0 {
			i++
			continue
		}
		os.RemoveAll(t.dir)
		delete(c.trees, d)
		c.order = append(c.order[:i], c.order[i+1:]...)
	}
}

func (c *unpackCache) removeOrder(digest string) {
	for i, d := range c.order {
		if d == digest {
			c.order = append(c.order[:i], c.order[i+1:]...)
			return
		}
	}
}
