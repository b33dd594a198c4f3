package repo

import (
	"bytes"
	"crypto/sha256"
	"encoding/gob"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	kustypes "sigs.k8s.io/kustomize/api/types"

	"github.com/weirhq/weir/internal/version"
)

// The index remembers, from one call to the next, what the model made of
// each file it read (the objects it keeps and the parsed kustomization)
// and the listing of each folder it entered.
// An entry is used only while the file's stat is the one recorded (size,
// modification and change times to the nanosecond, inode and device), as
// git's index decides which files changed, so an edit, a checkout or a
// file replaced by another is always read again. A file changed within
// racyWindow of when it was read could change again within the same
// timestamp tick unseen: such an entry is not recorded (git's "racily
// clean" entries), and the next call reads that file again. A folder's
// listing is used while the folder's own stat is unchanged: adding,
// removing or renaming an entry changes the folder's modification time.
//
// The index is an optimization only: a missing, unreadable, corrupt or
// foreign index is ignored, and the model reads the files as without one.

// indexFormat is the version of what an entry holds. Bump it whenever
// what decode, interesting or parseKustomization make of a file changes,
// so that no index written before is read.
const indexFormat = 2

// racyWindow is how close to the read a file's change makes its entry
// untrusted (coarse file system clocks tick in up to a few milliseconds;
// some network file systems in seconds). Tests shorten it.
var racyWindow = 2 * time.Second

// minIndexed is the fewest files worth an index: a small repository is
// read faster than an index is. Tests lower it.
var minIndexed = 200

// indexMaxAge is how long an index not written to is kept in its folder.
const indexMaxAge = 30 * 24 * time.Hour

// fileStat is what the index compares of a file.
type fileStat struct {
	Size  int64  `json:"size"`
	Mtime int64  `json:"mtime"`
	Ctime int64  `json:"ctime"`
	Ino   uint64 `json:"ino"`
	Dev   uint64 `json:"dev"`
}

// indexEntry is what the model made of one file: each part is set once
// it was computed (Decoded, Parsed).
type indexEntry struct {
	Stat fileStat `json:"stat"`

	Decoded bool   `json:"decoded,omitempty"`
	Objects []byte `json:"objects,omitempty"` // the objects kept (see objcodec.go)

	Parsed  bool            `json:"parsed,omitempty"`
	Kust    json.RawMessage `json:"kustomization,omitempty"`
	KustErr string          `json:"kustomizationError,omitempty"`
}

// dirEntry is one entry of a folder listing the index recorded: its name
// and type, as os.ReadDir gives them.
type dirEntry struct {
	Name string      `json:"name"`
	Type fs.FileMode `json:"type"`
}

// listingEntry is a folder's listing, recorded with the folder's stat: a
// folder's modification time changes whenever an entry is added, removed
// or renamed.
type listingEntry struct {
	Stat    fileStat   `json:"stat"`
	Entries []dirEntry `json:"entries"`
}

// indexFile is an index on disk, gob-encoded: the objects (in the form
// of objcodec.go) and kustomizations (JSON) inside are decoded only when
// a file is used.
type indexFile struct {
	Format  int                      `json:"format"`
	Version string                   `json:"version"`
	Root    string                   `json:"root"`
	Files   map[string]*indexEntry   `json:"files"`
	Dirs    map[string]*listingEntry `json:"dirs"`
}

// index is the index of one Repository: what the last call recorded, and
// what this one records.
type index struct {
	path string // the index file
	root string // the repository's

	// old and oldDirs are the index file's entries, read on first use
	// (loadOnce): a call that takes its clusters from the walk record
	// (see walkrecord.go) may never need them.
	loadOnce sync.Once
	loaded   bool // guarded by mu
	old      map[string]*indexEntry
	oldDirs  map[string]*listingEntry

	// The walk record of this call: what was observed since since.
	seen *observations

	mu     sync.Mutex
	fresh  map[string]*record
	dirs   map[string]*listingEntry // this call's listings, racy ones left out
	hits   int                      // files and listings the index answered for
	misses int                      // files and listings read and recordable
}

// record is an entry being made by this call. Its parts are filled by
// the loads, on whichever goroutine runs them.
type record struct {
	mu    sync.Mutex
	entry indexEntry
	racy  bool
}

// UseIndex makes the repository remember what it reads in an index kept
// in dir (created when missing), and use what an earlier call remembered
// of the files that did not change since. SaveIndex writes it. An index
// that cannot be read is ignored.
func (r *Repository) UseIndex(dir string) {
	if !statIndexed {
		return // no stat to compare on this system
	}
	sum := sha256.Sum256([]byte(r.root))
	r.index = &index{
		path: filepath.Join(dir, hex.EncodeToString(sum[:12])+".gob"), root: r.root,
		seen:  newObservations(),
		fresh: map[string]*record{}, dirs: map[string]*listingEntry{},
	}
}

// load reads the index file, once; an index that cannot be read is
// taken as empty.
func (ix *index) load() {
	ix.loadOnce.Do(func() {
		var f indexFile
		if b, err := os.ReadFile(ix.path); err == nil {
			if gob.NewDecoder(bytes.NewReader(b)).Decode(&f) != nil || f.Format != indexFormat || f.Version != version.Version || f.Root != ix.root {
				f = indexFile{}
			}
		}
		ix.mu.Lock()
		defer ix.mu.Unlock()
		ix.old, ix.oldDirs, ix.loaded = f.Files, f.Dirs, true
	})
}

// SaveIndex writes what this call recorded, when UseIndex was called and
// anything differs from the index read; files this call did not read are
// dropped from it. The index is written whole to a temporary file and
// renamed, so a concurrent call reads the old index or the new one.
// Indexes of other repositories unused for 30 days are removed.
func (r *Repository) SaveIndex() error {
	ix := r.index
	if ix == nil {
		return nil
	}
	if walk := r.encodeWalk(); walk != nil {
		if err := writeIndexFile(ix.walkPath(), walk); err != nil {
			return err
		}
	}
	r.mu.Lock()
	fromRecord := r.walkRecorded
	r.mu.Unlock()
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if !ix.loaded {
		return nil // nothing read through it: the index file stands as it is
	}
	files := make(map[string]*indexEntry, len(ix.fresh))
	for p, rec := range ix.fresh {
		rec.mu.Lock()
		e, racy := rec.entry, rec.racy
		rec.mu.Unlock()
		if !racy && (e.Decoded || e.Parsed) {
			files[p] = &e
		}
	}
	dirs := ix.dirs
	if fromRecord {
		// This call did not walk: what it did not read is what the walk
		// record vouched for, so the entries of the files it did not
		// read are kept, not dropped.
		dirs = make(map[string]*listingEntry, len(ix.oldDirs))
		for p, e := range ix.oldDirs {
			dirs[p] = e
		}
		for p, e := range ix.dirs {
			dirs[p] = e
		}
		for p, e := range ix.old {
			if _, ok := files[p]; !ok {
				files[p] = e
			}
		}
	}
	if len(files) < minIndexed || (ix.misses == 0 && len(files) == len(ix.old) && len(dirs) == len(ix.oldDirs)) {
		return nil
	}
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(indexFile{Format: indexFormat, Version: version.Version, Root: r.root, Files: files, Dirs: dirs}); err != nil {
		return fmt.Errorf("encoding the repository index: %w", err)
	}
	return writeIndexFile(ix.path, buf.Bytes())
}

// writeIndexFile writes b whole to a temporary file in p's folder and
// renames it to p, so that a concurrent call reads the old file or the
// new one; files of other repositories unused for 30 days are removed.
func writeIndexFile(p string, b []byte) error {
	dir := filepath.Dir(p)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("creating the repository index folder: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".index-*")
	if err != nil {
		return fmt.Errorf("writing the repository index: %w", err)
	}
	_, err = tmp.Write(b)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), p)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("writing the repository index: %w", err)
	}
	pruneIndexes(dir, p)
	return nil
}

// pruneIndexes removes the indexes in dir not written for indexMaxAge,
// and temporary files left by an interrupted write, keeping keep.
func pruneIndexes(dir, keep string) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		p := filepath.Join(dir, e.Name())
		if p == keep || e.IsDir() || !(strings.HasSuffix(e.Name(), ".gob") || strings.HasSuffix(e.Name(), walkSuffix) || strings.HasPrefix(e.Name(), ".index-")) {
			continue
		}
		if fi, err := e.Info(); err == nil && time.Since(fi.ModTime()) > indexMaxAge {
			os.Remove(p)
		}
	}
}

// lookup returns the earlier entry of the slash path when the file still
// has the stat recorded, and starts this call's record of it either way.
// ok is false when the file must be read.
func (ix *index) lookup(p, abs string) (rec *record, old *indexEntry, ok bool) {
	ix.load()
	st, regular := lstat(abs)
	if !regular {
		return nil, nil, false
	}
	e := ix.old[p]
	if e == nil || e.Stat != st {
		return nil, nil, false
	}
	rec = &record{entry: *e}
	ix.mu.Lock()
	ix.fresh[p] = rec
	ix.hits++
	ix.mu.Unlock()
	return rec, e, true
}

// start begins this call's record of a file just read with stat st.
func (ix *index) start(p string, st fileStat, readAt time.Time) *record {
	rec := &record{entry: indexEntry{Stat: st}, racy: st == (fileStat{}) || racy(st, readAt)}
	ix.mu.Lock()
	ix.fresh[p] = rec
	ix.misses++
	ix.mu.Unlock()
	return rec
}

// listing returns the folder's listing the index recorded, when the
// folder still has the stat recorded with it.
func (ix *index) listing(p, abs string) ([]fs.DirEntry, bool) {
	ix.load()
	e := ix.oldDirs[p]
	if e == nil {
		return nil, false
	}
	st, ok := lstatDir(abs)
	if !ok || st != e.Stat {
		return nil, false
	}
	ix.seen.add(p, observation{kind: obsDir, stat: st})
	entries := make([]fs.DirEntry, len(e.Entries))
	for i, de := range e.Entries {
		entries[i] = indexedDirEntry{dirEntry: de, dir: abs}
	}
	ix.mu.Lock()
	ix.dirs[p] = e
	ix.hits++
	ix.mu.Unlock()
	return entries, true
}

// recordListing records a folder just listed with stat st, unless it
// changed too close to the listing to be trusted.
func (ix *index) recordListing(p string, st fileStat, entries []fs.DirEntry, readAt time.Time) {
	if racy(st, readAt) {
		return
	}
	e := &listingEntry{Stat: st, Entries: make([]dirEntry, len(entries))}
	for i, de := range entries {
		e.Entries[i] = dirEntry{Name: de.Name(), Type: de.Type()}
	}
	ix.mu.Lock()
	ix.dirs[p] = e
	ix.misses++
	ix.mu.Unlock()
}

// indexedDirEntry is a folder entry the index recorded. Info, which no
// walk needs, asks the file system.
type indexedDirEntry struct {
	dirEntry
	dir string
}

func (e indexedDirEntry) Name() string      { return e.dirEntry.Name }
func (e indexedDirEntry) IsDir() bool       { return e.dirEntry.Type.IsDir() }
func (e indexedDirEntry) Type() fs.FileMode { return e.dirEntry.Type }
func (e indexedDirEntry) Info() (fs.FileInfo, error) {
	return os.Lstat(filepath.Join(e.dir, e.dirEntry.Name))
}

// racy tells whether a file read at readAt changed too close to it for
// its stat to tell a later change.
func racy(st fileStat, readAt time.Time) bool {
	limit := readAt.Add(-racyWindow).UnixNano()
	return st.Mtime >= limit || st.Ctime >= limit
}

// setObjects records the objects kept of a file.
func (rec *record) setObjects(objs []*unstructured.Unstructured) {
	if rec == nil {
		return
	}
	list := make([]map[string]any, len(objs))
	for i, u := range objs {
		list[i] = u.Object
	}
	b, err := encodeObjects(list)
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if err != nil {
		rec.racy = true // not recordable: read again next time
		return
	}
	rec.entry.Decoded, rec.entry.Objects = true, b
}

// setKustomization records the parse of a kustomization file.
func (rec *record) setKustomization(k *kustypes.Kustomization, parseErr error) {
	if rec == nil {
		return
	}
	var b []byte
	var err error
	if parseErr == nil {
		b, err = json.Marshal(k)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if err != nil {
		rec.racy = true
		return
	}
	rec.entry.Parsed, rec.entry.Kust, rec.entry.KustErr = true, b, ""
	if parseErr != nil {
		rec.entry.KustErr = parseErr.Error()
	}
}

// objects returns the objects an entry recorded, as Decode decoded them.
func (e *indexEntry) objects() ([]*unstructured.Unstructured, error) {
	list, err := decodeObjects(e.Objects)
	if err != nil {
		return nil, err
	}
	out := make([]*unstructured.Unstructured, 0, len(list))
	for _, o := range list {
		out = append(out, &unstructured.Unstructured{Object: o})
	}
	return out, nil
}

// kustomization returns the parse an entry recorded: the kustomization,
// or the error it did not parse with; ok is false when the entry cannot
// be read back (the file is then parsed again).
func (e *indexEntry) kustomization() (k *kustypes.Kustomization, parseErr error, ok bool) {
	if e.KustErr != "" {
		return nil, errors.New(e.KustErr), true
	}
	k = &kustypes.Kustomization{}
	if err := json.Unmarshal(e.Kust, k); err != nil {
		return nil, nil, false
	}
	return k, nil, true
}
