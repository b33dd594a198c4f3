package artifact

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/fluxcd/pkg/apis/meta"
)

// defaultKeep is the number of artifacts GC keeps per object when Store.Keep
// is 0: the newest, plus one back for consumers still fetching it.
const defaultKeep = 2

// artifactExt ends the name of every archive artifact, yamlExt that of a
// YAML document (a Helm repository index); anything else in an object's
// folder is not an artifact (temporary files start with a dot).
const (
	artifactExt = ".tar.gz"
	yamlExt     = ".yaml"
)

// isArtifactName says whether a file name of an object's folder is one of
// its artifacts.
func isArtifactName(name string) bool {
	return !strings.HasPrefix(name, ".") && (strings.HasSuffix(name, artifactExt) || strings.HasSuffix(name, yamlExt))
}

// staleTempAge is how old a leftover temporary file must be before GC removes
// it. Archive removes its own on every path; only a crash leaves one behind.
const staleTempAge = time.Hour

// Store keeps artifacts under Root as Root/<kind>/<namespace>/<name>/<file>,
// kind lowercased (e.g. "gitrepository").
//
// The zero value of every field but Root works.
type Store struct {
	// Root is the folder on disk that holds the artifacts.
	Root string
	// BaseURL is the address the store is served at, e.g.
	// "http://127.0.0.1:9090"; an artifact's URL is BaseURL + "/" + its Path.
	BaseURL string
	// Keep is the number of artifacts GC keeps per object; 0 means 2 (the
	// newest, plus one back).
	Keep int
	// MaxSize is the largest size in bytes of one archive (compressed); 0
	// means no limit.
	MaxSize int64
	// MaxTreeSize is the largest total size in bytes of the files of a
	// tree that Archive packs, before compression; 0 means no limit. weir
	// sets it to what a render reads into memory (render.MaxSourceSize),
	// so that a tree no Kustomization could render fails at its source,
	// naming its largest files, instead of failing every Kustomization.
	MaxTreeSize int64
}

// Ref names the object that owns artifacts.
type Ref struct{ Kind, Namespace, Name string }

// String returns the reference as Flux prints it, e.g.
// "GitRepository/flux-system/podinfo".
func (r Ref) String() string {
	return r.Kind + "/" + r.Namespace + "/" + r.Name
}

// dir returns the folder of the object relative to the store's root, in
// slash form, after checking that each part is one plain path element.
func (r Ref) dir() (string, error) {
	parts := []struct{ what, value string }{
		{"kind", r.Kind}, {"namespace", r.Namespace}, {"name", r.Name},
	}
	for _, p := range parts {
		if p.value == "" {
			return "", fmt.Errorf("invalid object reference %s: the %s is empty", r, p.what)
		}
		if p.value == "." || p.value == ".." || strings.ContainsAny(p.value, "/\\\x00") {
			return "", fmt.Errorf("invalid object reference %s: the %s %q is not a plain name", r, p.what, p.value)
		}
	}
	return path.Join(strings.ToLower(r.Kind), r.Namespace, r.Name), nil
}

// folder returns the object's folder, relative to Root in slash form and on
// disk.
func (s *Store) folder(ref Ref) (rel, abs string, err error) {
	if s.Root == "" {
		return "", "", errors.New("the artifact store has no root folder set")
	}
	if rel, err = ref.dir(); err != nil {
		return "", "", err
	}
	return rel, filepath.Join(s.Root, filepath.FromSlash(rel)), nil
}

// Path returns the local file path of an artifact of the store, or "" for a
// nil artifact. The path always lies under Root: ".." elements in a.Path
// cannot climb above it.
func (s *Store) Path(a *meta.Artifact) string {
	if a == nil {
		return ""
	}
	return filepath.Join(s.Root, filepath.FromSlash(path.Clean("/"+a.Path)))
}

// localPath is Path for callers that act on the file: it refuses a path that
// does not name a file inside the store instead of clamping it.
func (s *Store) localPath(a *meta.Artifact) (string, error) {
	if a == nil {
		return "", errors.New("no artifact given")
	}
	if s.Root == "" {
		return "", errors.New("the artifact store has no root folder set")
	}
	p := filepath.FromSlash(a.Path)
	if !filepath.IsLocal(p) {
		return "", fmt.Errorf("artifact path %q is not a file of the store", a.Path)
	}
	return filepath.Join(s.Root, p), nil
}

// url returns the address the artifact at rel (slash form) is served at.
func (s *Store) url(rel string) string {
	return strings.TrimRight(s.BaseURL, "/") + "/" + rel
}

// Has reports whether the artifact's file exists and its digest still
// matches: a stat and a size check first, then the digest recomputed.
func (s *Store) Has(a *meta.Artifact) bool {
	return s.verify(a) == nil
}

// verify checks that the artifact's file is in the store, has the recorded
// size and the recorded digest.
func (s *Store) verify(a *meta.Artifact) error {
	p, err := s.localPath(a)
	if err != nil {
		return err
	}
	algo, want, ok := strings.Cut(a.Digest, ":")
	if !ok || algo != "sha256" {
		return fmt.Errorf("artifact %s has digest %q; only sha256 digests are supported", a.Path, a.Digest)
	}
	fi, err := os.Lstat(p)
	if err != nil {
		return fmt.Errorf("artifact %s is missing from the store: %w", a.Path, err)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("artifact %s is not a regular file", a.Path)
	}
	if a.Size != nil && *a.Size != fi.Size() {
		return fmt.Errorf("artifact %s is %d bytes, its record says %d", a.Path, fi.Size(), *a.Size)
	}
	got, err := fileDigest(p)
	if err != nil {
		return fmt.Errorf("reading artifact %s: %w", a.Path, err)
	}
	if got != want {
		return fmt.Errorf("artifact %s does not match its digest %s: its content changed", a.Path, a.Digest)
	}
	return nil
}

// fileDigest returns the hex sha256 of the file at p.
func fileDigest(p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// GC removes the object's artifacts other than the Keep newest (by
// modification time, which Archive sets), never the one named current. It
// returns the store paths (as in meta.Artifact.Path) of the files it removed.
// Temporary files left behind by a crash are removed too once they are an
// hour old.
func (s *Store) GC(ref Ref, current *meta.Artifact) (removed []string, err error) {
	rel, dir, err := s.folder(ref)
	if err != nil {
		return nil, err
	}
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("listing the artifacts of %s: %w", ref, err)
	}

	keep := s.Keep
	if keep <= 0 {
		keep = defaultKeep
	}
	currentName := ""
	if current != nil && path.Dir(current.Path) == rel {
		currentName = path.Base(current.Path)
	}

	type file struct {
		name    string
		modTime time.Time
	}
	var artifacts []file
	var garbage []string
	var errs []error
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		info, err := e.Info()
		if err != nil {
			if !errors.Is(err, fs.ErrNotExist) {
				errs = append(errs, err)
			}
			continue
		}
		switch {
		case strings.HasPrefix(e.Name(), "."):
			if time.Since(info.ModTime()) > staleTempAge {
				garbage = append(garbage, e.Name())
			}
		case isArtifactName(e.Name()):
			artifacts = append(artifacts, file{e.Name(), info.ModTime()})
		}
	}

	// Newest first; the name breaks ties so that the outcome is stable.
	slices.SortFunc(artifacts, func(a, b file) int {
		if c := b.modTime.Compare(a.modTime); c != 0 {
			return c
		}
		return strings.Compare(a.name, b.name)
	})
	for i, f := range artifacts {
		if i >= keep && f.name != currentName {
			garbage = append(garbage, f.name)
		}
	}

	for _, name := range garbage {
		if err := os.Remove(filepath.Join(dir, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
			continue
		}
		if !strings.HasPrefix(name, ".") {
			removed = append(removed, path.Join(rel, name))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return removed, fmt.Errorf("removing old artifacts of %s: %w", ref, err)
	}
	return removed, nil
}

// Remove deletes every artifact of the object and its folder. Removing an
// object that has no artifacts is not an error.
func (s *Store) Remove(ref Ref) error {
	_, dir, err := s.folder(ref)
	if err != nil {
		return err
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("removing the artifacts of %s: %w", ref, err)
	}
	return nil
}

// ErrTooLarge is matched, with errors.Is, by the error Archive returns for a
// tree whose archive is over Store.MaxSize. Retrying does not help: the
// source must shrink or the limit must grow.
var ErrTooLarge = errors.New("artifact over the size limit")

// sizeError tells how large an archive came out and what the limit is,
// and for a tree, its largest files and how to leave them out.
type sizeError struct {
	size, limit int64
	largest     []entry // of a tree, largest first; none for a copy
}

func (e *sizeError) Error() string {
	size, limit := sizes(e.size, e.limit)
	return fmt.Sprintf("artifact is %s, over the %s limit set by --artifact-max-size%s", size, limit, leaveOut(e.largest))
}

func (e *sizeError) Is(target error) bool { return target == ErrTooLarge }

// treeSizeError tells that the files of a tree come to more than
// Store.MaxTreeSize, and which are the largest.
type treeSizeError struct {
	size, limit int64
	largest     []entry
}

func (e *treeSizeError) Error() string {
	size, limit := sizes(e.size, e.limit)
	return fmt.Sprintf("its files come to %s, over the %s a source tree may hold (the most a Kustomization renders)%s", size, limit, leaveOut(e.largest))
}

func (e *treeSizeError) Is(target error) bool { return target == ErrTooLarge }

// sizes writes a size and its limit for a person, in bytes when rounding
// would make them look equal.
func sizes(size, limit int64) (string, string) {
	s, l := humanSize(size), humanSize(limit)
	if s == l {
		return fmt.Sprintf("%d bytes", size), fmt.Sprintf("%d bytes", limit)
	}
	return s, l
}

// leaveOut names the largest files of a tree and says how to leave them
// out of its artifact; "" when there are none.
func leaveOut(largest []entry) string {
	if len(largest) == 0 {
		return ""
	}
	names := make([]string, len(largest))
	for i, e := range largest {
		names[i] = fmt.Sprintf("%s (%s)", e.name, humanSize(e.size))
	}
	return "; its largest files: " + strings.Join(names, ", ") + ". Leave files that are not needed out of the artifact with spec.ignore (or a .sourceignore file)"
}

// maxNamedFiles is how many of its largest files a size error names.
const maxNamedFiles = 3

// largestFiles returns the regular files among entries, largest first, at
// most maxNamedFiles, and the total size of them all.
func largestFiles(entries []entry) (largest []entry, total int64) {
	for _, e := range entries {
		if e.link != "" {
			continue
		}
		total += e.size
		i := len(largest)
		for i > 0 && largest[i-1].size < e.size {
			i--
		}
		if i < maxNamedFiles {
			largest = slices.Insert(largest, i, e)
			largest = largest[:min(len(largest), maxNamedFiles)]
		}
	}
	return largest, total
}

// humanSize writes n bytes the way a person reads them: "512 bytes",
// "10 MiB", "12.3 MiB". It rounds: sizeError falls back to bytes when that
// hides a difference.
func humanSize(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d bytes", n)
	}
	units := []string{"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"}
	v := float64(n) / unit
	i := 0
	for v >= unit && i < len(units)-1 {
		v /= unit
		i++
	}
	// One decimal, dropped when it is zero: "10 MiB", not "10.0 MiB".
	return strings.TrimSuffix(fmt.Sprintf("%.1f", v), ".0") + " " + units[i]
}
