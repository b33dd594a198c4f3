package gitserver

import (
	"sync"

	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/format/index"
	"github.com/go-git/go-git/v5/plumbing/storer"
	"github.com/go-git/go-git/v5/storage"
)

// lockedStorage makes a go-git storage safe to read while it is written.
//
// go-git's memory storage is plain maps: a Snapshot taken while the server
// streams a pack would race with it. Every call takes the lock for its own
// duration only; Snapshot writes objects before it moves the branch, so a
// reader that sees the new branch also finds every object under it.
//
// The wrapper implements storage.Storer and nothing more, so go-git never
// finds an optional interface (transactions, packfile writers) that would
// bypass the lock.
type lockedStorage struct {
	mu sync.RWMutex
	s  storage.Storer
}

var _ storage.Storer = (*lockedStorage)(nil)

func (l *lockedStorage) NewEncodedObject() plumbing.EncodedObject {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.s.NewEncodedObject()
}

func (l *lockedStorage) SetEncodedObject(o plumbing.EncodedObject) (plumbing.Hash, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.s.SetEncodedObject(o)
}

func (l *lockedStorage) EncodedObject(t plumbing.ObjectType, h plumbing.Hash) (plumbing.EncodedObject, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.s.EncodedObject(t, h)
}

func (l *lockedStorage) IterEncodedObjects(t plumbing.ObjectType) (storer.EncodedObjectIter, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	// The memory storage copies the objects into a slice here, so the
	// iterator does not touch the maps after the lock is released.
	return l.s.IterEncodedObjects(t)
}

func (l *lockedStorage) HasEncodedObject(h plumbing.Hash) error {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.s.HasEncodedObject(h)
}

func (l *lockedStorage) EncodedObjectSize(h plumbing.Hash) (int64, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.s.EncodedObjectSize(h)
}

func (l *lockedStorage) AddAlternate(remote string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.s.AddAlternate(remote)
}

func (l *lockedStorage) SetReference(r *plumbing.Reference) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.s.SetReference(r)
}

func (l *lockedStorage) CheckAndSetReference(n, old *plumbing.Reference) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.s.CheckAndSetReference(n, old)
}

func (l *lockedStorage) Reference(n plumbing.ReferenceName) (*plumbing.Reference, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.s.Reference(n)
}

func (l *lockedStorage) IterReferences() (storer.ReferenceIter, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	// Copied into a slice by the memory storage, as for objects.
	return l.s.IterReferences()
}

func (l *lockedStorage) RemoveReference(n plumbing.ReferenceName) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.s.RemoveReference(n)
}

func (l *lockedStorage) CountLooseRefs() (int, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.s.CountLooseRefs()
}

func (l *lockedStorage) PackRefs() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.s.PackRefs()
}

func (l *lockedStorage) SetShallow(h []plumbing.Hash) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.s.SetShallow(h)
}

func (l *lockedStorage) Shallow() ([]plumbing.Hash, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.s.Shallow()
}

func (l *lockedStorage) SetIndex(i *index.Index) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.s.SetIndex(i)
}

func (l *lockedStorage) Index() (*index.Index, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.s.Index()
}

func (l *lockedStorage) Config() (*config.Config, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.s.Config()
}

func (l *lockedStorage) SetConfig(c *config.Config) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.s.SetConfig(c)
}

// Module returns the submodule's storage as it is: snapshots never hold
// submodules, and a wrapper made per call would not share one lock.
func (l *lockedStorage) Module(name string) (storage.Storer, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.s.Module(name)
}
