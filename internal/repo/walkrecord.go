package repo

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"maps"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/weirhq/weir/internal/version"
)

// The walk record keeps, from one call to the next, what Clusters made
// of the repository (the clusters, the objects each applies, and the
// kustomization files the walk found broken) with every observation that
// rests on: the stat of each file read and of each folder listed, and
// what lstat said of every other path looked at (nothing there, a
// symlink), after a CRC-32C of the whole. A call that finds every
// observation unchanged takes the clusters from the record: it reads
// none of the index's entries, walks nothing and decodes no file, and
// what is left of its work is one lstat per path, on a few goroutines.
// Any difference, a record of another format, weir version or root, or
// one that does not read back, and the call walks as it would without
// the record (the index still answering for each unchanged file), then
// records anew.
//
// As for the index's entries, nothing is recorded when a path changed
// within racyWindow of the call's start (it could change again within
// the same timestamp tick unseen), when a path was seen in two states
// during the call, or for a repository of fewer than minIndexed paths.

// walkSuffix ends the name of a walk record, beside its index (.gob).
const walkSuffix = ".walk"

// walkFormat is the version of the record's layout and of what the walk
// makes of a repository: bump it whenever either changes.
const walkFormat = 1

// obsKind is what lstat found at a path.
type obsKind uint8

const (
	obsAbsent obsKind = iota // nothing, or nothing reachable
	obsFile                  // a regular file
	obsDir                   // a folder
	obsOther                 // a symlink, a device, a FIFO: never read
)

// observation is what a call saw of one path. Two observations of a path
// are equal when nothing in it changed.
type observation struct {
	kind obsKind
	stat fileStat
}

// observations are the paths one call looked at, since it started using
// the index.
type observations struct {
	since time.Time

	mu       sync.Mutex
	paths    map[string]observation
	conflict bool // a path seen in two states
}

func newObservations() *observations {
	return &observations{since: time.Now(), paths: map[string]observation{}}
}

// add records what was seen at the slash path p.
func (s *observations) add(p string, o observation) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if prev, ok := s.paths[p]; ok && prev != o {
		s.conflict = true
	}
	s.paths[p] = o
}

// walkPath is the walk record's file, beside the index file.
func (ix *index) walkPath() string { return strings.TrimSuffix(ix.path, ".gob") + walkSuffix }

// encodeWalk returns the walk record of this call: nil when it did not
// walk (no clusters asked for, or taken from a record) or when what it
// saw cannot be vouched for (see above).
func (r *Repository) encodeWalk() []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.walked || r.walkRecorded {
		return nil
	}
	s := r.index.seen
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conflict || len(s.paths) < minIndexed {
		return nil
	}
	paths := make([]string, 0, len(s.paths))
	for p, o := range s.paths {
		if o.kind != obsAbsent && racy(o.stat, s.since) {
			return nil
		}
		paths = append(paths, p)
	}
	slices.Sort(paths)

	// Objects are stored once each and named by their place: an object
	// reached by several clusters (or twice by one, in two namespaces) is
	// one *Unstructured, as after a walk.
	place := map[*unstructured.Unstructured]int{}
	var table []any
	for _, c := range r.clusters {
		for _, o := range c.Objects {
			if _, ok := place[o.Unstructured]; !ok {
				place[o.Unstructured] = len(table)
				table = append(table, o.Object)
			}
		}
	}
	objects, err := appendValue(nil, table, 0)
	if err != nil {
		return nil // an object of a type the form cannot hold: walk again next time
	}
	broken := map[string]string{}
	r.cacheMu.Lock()
	for p, f := range r.files {
		if f.broken != nil {
			broken[p] = f.broken.Error()
		}
	}
	r.cacheMu.Unlock()

	w := walkWriter{b: make([]byte, 4, 64*len(paths)+len(objects))} // the checksum first
	w.uvarint(walkFormat)
	w.str(version.Version)
	w.str(r.root)
	w.uvarint(uint64(len(paths)))
	for _, p := range paths {
		o := s.paths[p]
		w.str(p)
		w.b = append(w.b, byte(o.kind))
		w.varint(o.stat.Size)
		w.varint(o.stat.Mtime)
		w.varint(o.stat.Ctime)
		w.uvarint(o.stat.Ino)
		w.uvarint(o.stat.Dev)
	}
	w.uvarint(uint64(len(broken)))
	for _, p := range slices.Sorted(maps.Keys(broken)) {
		w.str(p)
		w.str(broken[p])
	}
	w.b = append(w.b, objects...)
	w.uvarint(uint64(len(r.clusters)))
	for _, c := range r.clusters {
		w.str(c.Name)
		w.str(c.Path)
		w.str(c.Source)
		w.uvarint(uint64(len(c.Objects)))
		for _, o := range c.Objects {
			w.uvarint(uint64(place[o.Unstructured]))
			w.str(o.File)
			w.str(o.Namespace)
			w.str(o.By)
			w.str(o.Generated)
			var flags byte
			if o.fromEncrypted {
				flags |= 1
			}
			w.b = append(w.b, flags)
		}
	}
	binary.LittleEndian.PutUint32(w.b, crc32.Checksum(w.b[4:], castagnoli))
	return w.b
}

// castagnoli is the CRC-32C table: a record that does not match its
// checksum (a disk or copy gone wrong) is not read.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// readChecked reads a walk record and returns its body, when its
// checksum matches. The body is read into a string while the checksum is
// taken, in one pass and one copy.
func readChecked(name string) (string, error) {
	f, err := os.Open(name)
	if err != nil {
		return "", err
	}
	defer f.Close()
	var sum [4]byte
	if _, err := io.ReadFull(f, sum[:]); err != nil {
		return "", err
	}
	var body strings.Builder
	if fi, err := f.Stat(); err == nil {
		body.Grow(int(fi.Size()))
	}
	h := crc32.New(castagnoli)
	if _, err := io.Copy(&body, io.TeeReader(f, h)); err != nil {
		return "", err
	}
	if h.Sum32() != binary.LittleEndian.Uint32(sum[:]) {
		return "", errObjectEncoding
	}
	return body.String(), nil
}

// useWalkRecord takes the clusters from the walk record of an earlier
// call when every path it rests on is unchanged, and tells whether it
// did. The caller holds r.mu.
func (r *Repository) useWalkRecord() bool {
	if r.index == nil {
		return false
	}
	body, err := readChecked(r.index.walkPath())
	if err != nil {
		return false
	}
	rd := objectReader{s: body}
	paths, seen, err := rd.walkHeader(r.root)
	if err != nil {
		return false
	}
	// The stats are taken on other goroutines while the rest is decoded
	// here.
	var stale atomic.Bool
	var wg sync.WaitGroup
	workers := max(1, min(runtime.GOMAXPROCS(0), 4))
	for w := range workers {
		wg.Go(func() {
			for i := w; i < len(paths) && !stale.Load(); i += workers {
				abs := r.root
				if paths[i] != "." {
					abs += string(os.PathSeparator) + paths[i]
				}
				if lstatObserve(abs) != seen[i] {
					stale.Store(true)
				}
			}
		})
	}
	clusters, broken, err := rd.walkBody()
	wg.Wait()
	if err != nil || stale.Load() {
		return false
	}
	r.clusters, r.walkRecorded = clusters, true
	for p, msg := range broken {
		r.file(p).broken = errors.New(msg)
	}
	return true
}

// walkHeader reads a walk record's header and observations; a record of
// another format, version or root is an error.
func (rd *objectReader) walkHeader(root string) ([]string, []observation, error) {
	format, err := rd.uvarint()
	if err != nil || format != walkFormat {
		return nil, nil, errObjectEncoding
	}
	if v, err := rd.str(); err != nil || v != version.Version {
		return nil, nil, errObjectEncoding
	}
	if rt, err := rd.str(); err != nil || rt != root {
		return nil, nil, errObjectEncoding
	}
	n, err := rd.count()
	if err != nil {
		return nil, nil, err
	}
	paths, seen := make([]string, n), make([]observation, n)
	for i := range n {
		if paths[i], err = rd.str(); err != nil {
			return nil, nil, err
		}
		kind, err := rd.byte()
		if err != nil || obsKind(kind) > obsOther {
			return nil, nil, errObjectEncoding
		}
		o := observation{kind: obsKind(kind)}
		for _, v := range []*int64{&o.stat.Size, &o.stat.Mtime, &o.stat.Ctime} {
			if *v, err = rd.varint(); err != nil {
				return nil, nil, err
			}
		}
		for _, v := range []*uint64{&o.stat.Ino, &o.stat.Dev} {
			if *v, err = rd.uvarint(); err != nil {
				return nil, nil, err
			}
		}
		seen[i] = o
	}
	return paths, seen, nil
}

// walkBody reads what follows the observations: the broken
// kustomization files, the objects and the clusters.
func (rd *objectReader) walkBody() ([]*Cluster, map[string]string, error) {
	n, err := rd.count()
	if err != nil {
		return nil, nil, err
	}
	broken := make(map[string]string, n)
	for range n {
		p, err := rd.str()
		if err != nil {
			return nil, nil, err
		}
		if broken[p], err = rd.str(); err != nil {
			return nil, nil, err
		}
	}
	v, err := rd.value(0)
	if err != nil {
		return nil, nil, err
	}
	list, ok := v.([]any)
	if !ok {
		return nil, nil, errObjectEncoding
	}
	table := make([]*unstructured.Unstructured, len(list))
	for i, e := range list {
		m, ok := e.(map[string]any)
		if !ok {
			return nil, nil, errObjectEncoding
		}
		table[i] = &unstructured.Unstructured{Object: m}
	}
	if n, err = rd.count(); err != nil {
		return nil, nil, err
	}
	clusters := make([]*Cluster, n)
	for i := range clusters {
		c := &Cluster{}
		for _, s := range []*string{&c.Name, &c.Path, &c.Source} {
			if *s, err = rd.str(); err != nil {
				return nil, nil, err
			}
		}
		m, err := rd.count()
		if err != nil {
			return nil, nil, err
		}
		c.Objects = make([]*Object, m)
		for j := range c.Objects {
			at, err := rd.uvarint()
			if err != nil || at >= uint64(len(table)) {
				return nil, nil, errObjectEncoding
			}
			o := &Object{Unstructured: table[at]}
			for _, s := range []*string{&o.File, &o.Namespace, &o.By, &o.Generated} {
				if *s, err = rd.str(); err != nil {
					return nil, nil, err
				}
			}
			flags, err := rd.byte()
			if err != nil || flags > 1 {
				return nil, nil, errObjectEncoding
			}
			o.fromEncrypted = flags&1 != 0
			c.Objects[j] = o
		}
		clusters[i] = c
	}
	if rd.pos != len(rd.s) {
		return nil, nil, errObjectEncoding
	}
	return clusters, broken, nil
}

// walkWriter appends the parts of a walk record.
type walkWriter struct{ b []byte }

func (w *walkWriter) uvarint(x uint64) { w.b = binary.AppendUvarint(w.b, x) }
func (w *walkWriter) varint(x int64)   { w.b = binary.AppendVarint(w.b, x) }
func (w *walkWriter) str(s string)     { w.uvarint(uint64(len(s))); w.b = append(w.b, s...) }
