package repo

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	kustypes "sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/yaml"
)

// maxFile bounds the size of one manifest file read.
const maxFile = 4 << 20

// errNotRegular says that a path is a symlink, a folder or a special file,
// which the model does not read.
var errNotRegular = errors.New("is not a regular file")

// kustomizationFiles are the names kustomize recognizes, in its order.
var kustomizationFiles = []string{"kustomization.yaml", "kustomization.yml", "Kustomization"}

// Repository is a cluster repository on disk. Its methods are safe for
// concurrent use; files are read on first use and cached for the life of
// the Repository (one CLI call), so a repository edited meanwhile is not
// seen.
type Repository struct {
	root string

	// mu serializes the model: the walk, and the order-dependent state of
	// files (file.parsed, file.objects, file.broken).
	mu       sync.Mutex
	clusters []*Cluster
	walked   bool

	// cacheMu guards the maps only; each entry loads once, on whichever
	// goroutine (the walk or a prefetch worker) asks first.
	cacheMu sync.Mutex
	dirs    map[string]*dir // by slash path relative to root
	files   map[string]*file

	// index, when UseIndex was called, gives what an earlier call made of
	// the files that did not change since (see index.go).
	index *index
	// walkRecorded says that the clusters came from the walk record of
	// an earlier call (see walkrecord.go), not from a walk.
	walkRecorded bool
}

// dir is one folder's listing, read once.
type dir struct {
	once    sync.Once
	entries []fs.DirEntry // sorted by name, as os.ReadDir gives them
	err     error
}

// file is one file, read and parsed once. The loads (read, decode,
// parseKustomization) are pure and may run ahead of the walk on another
// goroutine; what the walk has made of them is kept apart, under
// Repository.mu.
type file struct {
	readOnce sync.Once
	data     []byte
	err      error // reading it

	// From the index: old is the earlier call's entry of a file that did
	// not change, whose bytes are then read only when asked for (dataOnce,
	// dataErr); rec is this call's record, nil without an index.
	old      *indexEntry
	rec      *record
	dataOnce sync.Once
	dataErr  error

	decodeOnce sync.Once
	decoded    []*unstructured.Unstructured // the objects kept, when interesting

	kustOnce sync.Once
	kust     *kustypes.Kustomization
	kustErr  error

	// Guarded by Repository.mu.
	parsed  bool                         // objects was asked for
	objects []*unstructured.Unstructured // what it answered
	broken  error                        // the kustomization parse error, once the walk met it
}

// Open returns the repository rooted at root (a folder). Nothing is read
// until a method needs it.
func Open(root string) (*Repository, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("resolving the repository %s: %w", root, err)
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return nil, fmt.Errorf("opening the repository: %w", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("the repository %s is not a folder", root)
	}
	return &Repository{root: abs, dirs: map[string]*dir{}, files: map[string]*file{}}, nil
}

// Root is the repository's absolute path.
func (r *Repository) Root() string { return r.root }

// Rel returns p (absolute, or relative to the working folder) as a slash
// path relative to the root, or false when it is outside.
func (r *Repository) Rel(p string) (string, bool) {
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", false
	}
	rel, err := filepath.Rel(r.root, abs)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return "", false
	}
	return filepath.ToSlash(rel), true
}

// abs is the absolute path of a slash path relative to the root.
func (r *Repository) abs(rel string) string { return filepath.Join(r.root, filepath.FromSlash(rel)) }

// listing returns the folder's listing, read once.
func (r *Repository) listing(p string) *dir {
	r.cacheMu.Lock()
	d, ok := r.dirs[p]
	if !ok {
		d = &dir{}
		r.dirs[p] = d
	}
	r.cacheMu.Unlock()
	d.once.Do(func() {
		if r.index == nil {
			d.entries, d.err = os.ReadDir(r.abs(p))
			return
		}
		if entries, ok := r.index.listing(p, r.abs(p)); ok {
			d.entries = entries
			return
		}
		// The folder's stat is taken before it is listed: a change in
		// between leaves an older stat with the newer listing, which the
		// next call sees as changed.
		o := lstatObserve(r.abs(p))
		r.index.seen.add(p, o)
		d.entries, d.err = os.ReadDir(r.abs(p))
		if o.kind == obsDir && d.err == nil {
			r.index.recordListing(p, o.stat, d.entries, time.Now())
		}
	})
	return d
}

// readDir lists a folder, cached; a missing folder lists nothing.
func (r *Repository) readDir(dir string) []fs.DirEntry { return r.listing(dir).entries }

// entry returns the entry of the slash path in its folder's listing; ok
// is false when the folder could not be listed or does not hold it.
func (r *Repository) entry(p string) (e fs.DirEntry, ok bool) {
	if p == "." {
		return nil, false
	}
	d := r.listing(path.Dir(p))
	if d.err != nil {
		return nil, false
	}
	name := path.Base(p)
	i, found := slices.BinarySearchFunc(d.entries, name, func(e fs.DirEntry, name string) int { return strings.Compare(e.Name(), name) })
	if !found {
		return nil, false
	}
	return d.entries[i], true
}

// isDir tells whether the slash path is a folder (symlinks not followed:
// they could leave the root). The type comes from the folder's listing,
// which does not follow symlinks either; os.Lstat answers what the
// listing cannot.
func (r *Repository) isDir(p string) bool {
	if e, ok := r.entry(p); ok {
		return e.IsDir()
	}
	if r.index != nil {
		o := lstatObserve(r.abs(p))
		r.index.seen.add(p, o)
		return o.kind == obsDir
	}
	fi, err := os.Lstat(r.abs(p))
	return err == nil && fi.IsDir()
}

// kustomizationFile returns the kustomization file of dir, "" when none.
func (r *Repository) kustomizationFile(dir string) string {
	for _, e := range r.readDir(dir) {
		if !e.IsDir() && slices.Contains(kustomizationFiles, e.Name()) {
			return path.Join(dir, e.Name())
		}
	}
	return ""
}

// file returns the cache entry of the slash path, loading nothing.
func (r *Repository) file(p string) *file {
	r.cacheMu.Lock()
	defer r.cacheMu.Unlock()
	f, ok := r.files[p]
	if !ok {
		f = &file{}
		r.files[p] = f
	}
	return f
}

// load returns the file at the slash path, read once; a file that cannot
// be read, is not regular (a symlink included) or is too large holds
// nothing.
func (r *Repository) load(p string) *file {
	f := r.file(p)
	f.readOnce.Do(func() {
		if e, ok := r.entry(p); ok && !e.Type().IsRegular() {
			// Known from the listing: not even opened.
			f.err = fmt.Errorf("%s is not a regular file", p)
			return
		}
		if r.index != nil {
			if rec, old, ok := r.index.lookup(p, r.abs(p)); ok {
				f.rec, f.old = rec, old
				r.index.seen.add(p, observation{kind: obsFile, stat: rec.entry.Stat})
				return
			}
		}
		var st fileStat
		f.data, st, f.err = readRegularStat(r.abs(p))
		if errors.Is(f.err, errNotRegular) {
			f.err = fmt.Errorf("%s %w", p, errNotRegular)
		}
		switch {
		case r.index == nil:
		case f.err == nil:
			r.index.seen.add(p, observation{kind: obsFile, stat: st})
			f.rec = r.index.start(p, st, time.Now())
		default:
			r.index.seen.add(p, lstatObserve(r.abs(p)))
		}
	})
	return f
}

// bytes returns the bytes of a loaded file, read now when the index
// vouched for what was made of them and they were not needed until now.
func (f *file) bytes(r *Repository, p string) ([]byte, error) {
	if f.err != nil {
		return nil, f.err
	}
	if f.old == nil {
		return f.data, nil
	}
	f.dataOnce.Do(func() {
		f.data, f.dataErr = readRegular(r.abs(p))
		if errors.Is(f.dataErr, errNotRegular) {
			f.dataErr = fmt.Errorf("%s %w", p, errNotRegular)
		}
	})
	return f.data, f.dataErr
}

// read returns the bytes of the file at the slash path (see load), as
// the walk sees them: a kustomization file that did not parse holds
// nothing either. The caller holds r.mu.
func (r *Repository) read(p string) ([]byte, error) {
	f := r.load(p)
	if f.err != nil {
		return nil, f.err
	}
	if f.broken != nil {
		return nil, f.broken
	}
	return f.bytes(r, p)
}

// keptKind finds, at the start of a line (a document's top level) or as
// JSON, the kinds of the objects the model keeps.
var keptKind = regexp.MustCompile(`(?m)(^kind:|"kind":)\s*["']?(ConfigMap|Secret|Kustomization|FluxInstance|GitRepository|OCIRepository|HelmRepository|HelmChart|Bucket)\b`)

// interesting tells, from its bytes alone, whether a file may hold an
// object the model keeps: a Flux Kustomization or source, a FluxInstance,
// a ConfigMap or a Secret. Other files (HelmReleases, Deployments, CRDs)
// are never parsed.
func interesting(data []byte) bool { return keptKind.Match(data) }

// decode returns the objects of a loaded file that the model keeps (see
// interesting), decoded once.
func (f *file) decode(r *Repository, p string) []*unstructured.Unstructured {
	f.decodeOnce.Do(func() {
		if f.old != nil && f.old.Decoded {
			if objs, err := f.old.objects(); err == nil {
				f.decoded = objs
				return
			}
		}
		data, err := f.bytes(r, p)
		if err != nil {
			return
		}
		if interesting(data) {
			f.decoded = Decode(data)
		}
		f.rec.setObjects(f.decoded)
	})
	return f.decoded
}

// parseKustomization returns a loaded kustomization file, parsed once.
func (f *file) parseKustomization(r *Repository, p string) (*kustypes.Kustomization, error) {
	f.kustOnce.Do(func() {
		if f.old != nil && f.old.Parsed {
			if k, parseErr, ok := f.old.kustomization(); ok {
				f.kust, f.kustErr = k, parseErr
				return
			}
		}
		data, err := f.bytes(r, p)
		if err != nil {
			f.kustErr = err
			return
		}
		k := &kustypes.Kustomization{}
		if err := yaml.Unmarshal(data, k); err != nil {
			f.kustErr = fmt.Errorf("%s does not parse: %w", p, err)
			f.rec.setKustomization(nil, f.kustErr)
			return
		}
		k.FixKustomization()
		f.kust = k
		f.rec.setKustomization(k, nil)
	})
	return f.kust, f.kustErr
}

// objects returns the objects of the YAML file at the slash path that the
// model keeps (see interesting), parsed once; none once the walk has met
// it as a kustomization file that does not parse. The caller holds r.mu.
func (r *Repository) objects(p string) []*unstructured.Unstructured {
	f := r.load(p)
	if !f.parsed {
		f.parsed = true
		if f.broken == nil {
			f.objects = f.decode(r, p)
		}
	}
	return f.objects
}

// kustomization returns the parsed kustomization file at the slash path.
// The caller holds r.mu.
func (r *Repository) kustomization(p string) (*kustypes.Kustomization, error) {
	f := r.load(p)
	if f.broken != nil {
		return nil, f.broken
	}
	k, err := f.parseKustomization(r, p)
	if err != nil && f.err == nil {
		f.broken = err
	}
	return k, err
}

// Decode returns the Kubernetes objects of a multi-document YAML stream,
// skipping documents that are not objects (no kind or apiVersion) or do
// not parse.
func Decode(b []byte) []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	rd := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(b)))
	for {
		doc, err := rd.Read()
		if errors.Is(err, io.EOF) || err != nil {
			return out
		}
		obj, ok := decodeObject(doc)
		if !ok {
			continue
		}
		u := &unstructured.Unstructured{Object: obj}
		if u.GetKind() == "" || u.GetAPIVersion() == "" {
			continue
		}
		out = append(out, u)
	}
}
