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

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	kustypes "sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/yaml"
)

// maxFile bounds the size of one manifest file read.
const maxFile = 4 << 20

// kustomizationFiles are the names kustomize recognizes, in its order.
var kustomizationFiles = []string{"kustomization.yaml", "kustomization.yml", "Kustomization"}

// Repository is a cluster repository on disk. Its methods are safe for
// concurrent use; files are read on first use and cached for the life of
// the Repository (one CLI call), so a repository edited meanwhile is not
// seen.
type Repository struct {
	root string

	mu       sync.Mutex
	dirs     map[string][]fs.DirEntry // by slash path relative to root
	files    map[string]*file
	clusters []*Cluster
	walked   bool
}

// file is one YAML file, read and parsed once.
type file struct {
	data    []byte
	objects []*unstructured.Unstructured // nil until parsed
	parsed  bool
	kust    *kustypes.Kustomization // for kustomization files
	err     error
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
	return &Repository{root: abs, dirs: map[string][]fs.DirEntry{}, files: map[string]*file{}}, nil
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

// readDir lists a folder, cached; a missing folder lists nothing.
func (r *Repository) readDir(dir string) []fs.DirEntry {
	if e, ok := r.dirs[dir]; ok {
		return e
	}
	entries, _ := os.ReadDir(r.abs(dir))
	r.dirs[dir] = entries
	return entries
}

// isDir tells whether the slash path is a folder (symlinks not followed:
// they could leave the root).
func (r *Repository) isDir(p string) bool {
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

// read returns the file at the slash path, read once; a file that cannot
// be read, is not regular or is too large holds nothing.
func (r *Repository) read(p string) *file {
	if f, ok := r.files[p]; ok {
		return f
	}
	f := &file{}
	r.files[p] = f
	fi, err := os.Lstat(r.abs(p))
	switch {
	case err != nil:
		f.err = err
	case !fi.Mode().IsRegular():
		f.err = fmt.Errorf("%s is not a regular file", p)
	case fi.Size() > maxFile:
		f.err = fmt.Errorf("%s is larger than %d MiB", p, maxFile>>20)
	default:
		f.data, f.err = os.ReadFile(r.abs(p))
	}
	return f
}

// keptKind finds, at the start of a line (a document's top level) or as
// JSON, the kinds of the objects the model keeps.
var keptKind = regexp.MustCompile(`(?m)(^kind:|"kind":)\s*["']?(ConfigMap|Secret|Kustomization|FluxInstance|GitRepository|OCIRepository|HelmRepository|HelmChart|Bucket)\b`)

// interesting tells, from its bytes alone, whether a file may hold an
// object the model keeps: a Flux Kustomization or source, a FluxInstance,
// a ConfigMap or a Secret. Other files (HelmReleases, Deployments, CRDs)
// are never parsed.
func interesting(data []byte) bool { return keptKind.Match(data) }

// objects returns the objects of the YAML file at the slash path that the
// model keeps (see interesting), parsed once.
func (r *Repository) objects(p string) []*unstructured.Unstructured {
	f := r.read(p)
	if !f.parsed {
		f.parsed = true
		if f.err == nil && interesting(f.data) {
			f.objects = Decode(f.data)
		}
	}
	return f.objects
}

// kustomization returns the parsed kustomization file at the slash path.
func (r *Repository) kustomization(p string) (*kustypes.Kustomization, error) {
	f := r.read(p)
	if f.err != nil {
		return nil, f.err
	}
	if f.kust == nil {
		k := &kustypes.Kustomization{}
		if err := yaml.Unmarshal(f.data, k); err != nil {
			f.err = fmt.Errorf("%s does not parse: %w", p, err)
			return nil, f.err
		}
		k.FixKustomization()
		f.kust = k
	}
	return f.kust, nil
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
		u := &unstructured.Unstructured{}
		if err := utilyaml.Unmarshal(doc, &u.Object); err != nil || u.Object == nil || u.GetKind() == "" || u.GetAPIVersion() == "" {
			continue
		}
		out = append(out, u)
	}
}
