package artifact

import (
	"archive/tar"
	"compress/gzip"
	"context"
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
	"github.com/fluxcd/pkg/sourceignore"
	"github.com/fluxcd/pkg/sourceignore/gitignore"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// maxIgnoreFileSize bounds what is read of one .sourceignore file.
const maxIgnoreFileSize = 1 << 20

// maxExtractSize bounds the unpacked size of an artifact in Extract: an
// archive of a few MiB can unpack to far more. A variable so that tests can
// lower it.
var maxExtractSize int64 = 1 << 30

// maxExtractEntries bounds the number of entries Extract reads: empty
// files and folders cost no bytes but each costs an inode, and an archive
// of a few MiB can hold millions. A variable so that tests can lower it.
var maxExtractEntries = 1_000_000

// Ignore holds the rules that say which files of a tree stay out of its
// artifact. Build it with NewIgnore. The zero value applies Flux's default
// exclusions only.
type Ignore struct {
	matcher gitignore.Matcher
}

// NewIgnore returns the rules for the tree at dir, as Flux source-controller
// builds them:
//
//   - the patterns of every .sourceignore file in the tree, each applying to
//     its own folder and below (gitignore syntax; a deeper file wins);
//   - then spec, the object's spec.ignore text (gitignore syntax), which wins
//     over the files;
//   - VCS files (.git/, .gitignore, .gitmodules, .gitattributes) are always
//     excluded;
//   - Flux's other default exclusions (images, archives, CI folders such as
//     .github/, files such as .sops.yaml) apply only when the two sources
//     above give no pattern at all: any pattern replaces them, as in Flux.
//
// A .sourceignore that is a symlink is read only if it resolves to a regular
// file inside dir.
func NewIgnore(dir string, spec *string) (Ignore, error) {
	root, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return Ignore{}, fmt.Errorf("reading the ignore rules of %s: %w", dir, err)
	}
	ps, err := loadIgnoreFiles(root, root, nil)
	if err != nil {
		return Ignore{}, fmt.Errorf("reading the %s files of %s: %w", sourceignore.IgnoreFile, dir, err)
	}
	if spec != nil {
		ps = append(ps, sourceignore.ReadPatterns(strings.NewReader(*spec), nil)...)
	}
	if len(ps) == 0 {
		return Ignore{}, nil
	}
	return Ignore{matcher: sourceignore.NewMatcher(append(sourceignore.VCSPatterns(nil), ps...))}, nil
}

// KeepAll returns rules that leave nothing out, not even Flux's default
// exclusions: a Bucket's objects are filtered by its own rules as they are
// listed, and Flux archives what it downloaded as it is.
func KeepAll() Ignore {
	return Ignore{matcher: gitignore.NewMatcher(nil)}
}

// rules returns the matcher to apply, Flux's defaults for the zero value.
// It takes paths relative to the tree's root, split on "/".
func (i Ignore) rules() gitignore.Matcher {
	if i.matcher == nil {
		return sourceignore.NewDefaultMatcher(nil, nil)
	}
	return i.matcher
}

// loadIgnoreFiles reads the .sourceignore file of dir, then those of its
// sub-folders, depth first, in the order sourceignore.LoadIgnorePatterns
// uses, so that a deeper file comes later and wins.
func loadIgnoreFiles(root, dir string, domain []string) ([]gitignore.Pattern, error) {
	ps, err := readIgnoreFile(root, filepath.Join(dir, sourceignore.IgnoreFile), domain)
	if err != nil {
		return nil, err
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		if !e.IsDir() || e.Name() == ".git" {
			continue
		}
		sub, err := loadIgnoreFiles(root, filepath.Join(dir, e.Name()), append(slices.Clip(domain), e.Name()))
		if err != nil {
			return nil, err
		}
		ps = append(ps, sub...)
	}
	return ps, nil
}

// readIgnoreFile reads the patterns of the ignore file at p, if there is one.
// Anything but a regular file inside root (a fifo, a device, a link out of the
// tree) is passed over rather than read.
func readIgnoreFile(root, p string, domain []string) ([]gitignore.Pattern, error) {
	fi, err := os.Lstat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if fi.Mode()&fs.ModeSymlink != 0 {
		real, err := filepath.EvalSymlinks(p)
		if err != nil || !within(root, real) {
			return nil, nil
		}
		if fi, err = os.Stat(real); err != nil {
			return nil, nil
		}
		p = real
	}
	if !fi.Mode().IsRegular() {
		return nil, nil
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return sourceignore.ReadPatterns(io.LimitReader(f, maxIgnoreFileSize), domain), nil
}

// within reports whether p lies in root or is root; both must be clean
// absolute paths with symlinks resolved.
func within(root, p string) bool {
	rel, err := filepath.Rel(root, p)
	return err == nil && filepath.IsLocal(rel)
}

// entry is a file of the tree that goes into an archive.
type entry struct {
	name string // relative to the tree's root, slash form
	link string // target of a symlink, slash form; empty for a regular file
	size int64  // of a regular file, when the tree was walked
}

// Archive packs dir as a tar.gz, skipping paths matched by ignore, writes it
// atomically into the object's folder as <sha256 hex>.tar.gz and returns the
// artifact, with revision recorded as given.
//
// Only files go in: regular files, with their mode reduced to 0644 or 0755,
// and symlinks whose target stays inside dir, stored as symlinks. Symlinks
// that are absolute, climb out of dir, dangle or resolve outside it are left
// out, never followed. Entries are sorted and carry no times or owners, so the
// same tree always gives the same bytes, digest and file name.
//
// When Store.MaxTreeSize is set and the files of the tree come to more,
// or Store.MaxSize is set and the archive comes out larger, Archive fails
// with an error matching ErrTooLarge that gives both sizes, names the
// largest files and says to leave them out with spec.ignore, and leaves no
// file behind.
func (s *Store) Archive(ctx context.Context, ref Ref, revision, dir string, ignore Ignore) (*meta.Artifact, error) {
	rel, objDir, err := s.folder(ref)
	if err != nil {
		return nil, err
	}
	root, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return nil, fmt.Errorf("reading the source tree of %s: %w", ref, err)
	}
	if fi, err := os.Stat(root); err != nil {
		return nil, fmt.Errorf("reading the source tree of %s: %w", ref, err)
	} else if !fi.IsDir() {
		return nil, fmt.Errorf("the source tree of %s, %s, is not a folder", ref, dir)
	}
	entries, err := collect(ctx, root, ignore)
	if err != nil {
		return nil, fmt.Errorf("reading the source tree of %s: %w", ref, err)
	}
	largest, total := largestFiles(entries)
	if s.MaxTreeSize > 0 && total > s.MaxTreeSize {
		return nil, fmt.Errorf("archiving the source tree of %s: %w", ref, &treeSizeError{size: total, limit: s.MaxTreeSize, largest: largest})
	}

	if err := os.MkdirAll(objDir, 0o700); err != nil {
		return nil, fmt.Errorf("creating the artifact folder of %s: %w", ref, err)
	}
	tmp, err := os.CreateTemp(objDir, ".archive-*")
	if err != nil {
		return nil, fmt.Errorf("creating the artifact of %s: %w", ref, err)
	}
	renamed := false
	defer func() {
		if !renamed {
			_ = tmp.Close()
			_ = os.Remove(tmp.Name())
		}
	}()

	h := sha256.New()
	out := &cappedWriter{w: tmp, limit: s.MaxSize}
	if err := writeTarGz(ctx, io.MultiWriter(h, out), root, entries); err != nil {
		return nil, fmt.Errorf("archiving the source tree of %s: %w", ref, err)
	}
	if out.over {
		return nil, fmt.Errorf("archiving the source tree of %s: %w", ref, &sizeError{size: out.n, limit: s.MaxSize, largest: largest})
	}
	if err := tmp.Close(); err != nil {
		return nil, fmt.Errorf("writing the artifact of %s: %w", ref, err)
	}

	sum := hex.EncodeToString(h.Sum(nil))
	name := sum + artifactExt
	// Renaming over an artifact of the same content is harmless (same
	// bytes) and refreshes its time, which GC sorts by.
	if err := os.Rename(tmp.Name(), filepath.Join(objDir, name)); err != nil {
		return nil, fmt.Errorf("writing the artifact of %s: %w", ref, err)
	}
	renamed = true

	size := out.n
	artifactPath := path.Join(rel, name)
	return &meta.Artifact{
		Path:           artifactPath,
		URL:            s.url(artifactPath),
		Revision:       revision,
		Digest:         "sha256:" + sum,
		LastUpdateTime: metav1.Now(),
		Size:           &size,
	}, nil
}

// collect walks the tree at root (symlinks resolved) and returns the entries
// of its archive, sorted by name.
func collect(ctx context.Context, root string, ignore Ignore) ([]entry, error) {
	var entries []entry
	rules := ignore.rules()
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if p == root {
			return nil
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		name := filepath.ToSlash(rel)
		if d.IsDir() {
			// Git's own folder is excluded by every rule set and can be
			// large: do not walk it. Other folders are walked even when
			// excluded, since a later "!pattern" may take a file back, as
			// in Flux.
			if d.Name() == ".git" {
				return filepath.SkipDir
			}
			return nil
		}
		if rules.Match(strings.Split(name, "/"), false) {
			return nil
		}
		switch {
		case d.Type().IsRegular():
			fi, err := d.Info()
			if err != nil {
				return err
			}
			entries = append(entries, entry{name: name, size: fi.Size()})
		case d.Type()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			if linkStaysInside(root, p, target) {
				entries = append(entries, entry{name: name, link: filepath.ToSlash(target)})
			}
		}
		// Devices, fifos and sockets have no place in a source artifact.
		return nil
	})
	slices.SortFunc(entries, func(a, b entry) int { return strings.Compare(a.name, b.name) })
	return entries, err
}

// linkStaysInside reports whether the symlink at p, pointing at target, is
// relative, stays under root when read as written, and resolves to a path
// under root once every link on its way is followed (a link through another
// link can climb out even when its text does not, as "l/.." with l -> ".").
func linkStaysInside(root, p, target string) bool {
	if target == "" || filepath.IsAbs(target) || strings.HasPrefix(target, "/") {
		return false
	}
	dir, err := filepath.Rel(root, filepath.Dir(p))
	if err != nil || !filepath.IsLocal(filepath.Join(dir, target)) {
		return false
	}
	real, err := filepath.EvalSymlinks(p)
	return err == nil && within(root, real)
}

// epoch is the time written in every archive header, so that times do not
// change the digest.
var epoch = time.Unix(0, 0).UTC()

// writeTarGz writes the entries of root as a tar.gz to w.
func writeTarGz(ctx context.Context, w io.Writer, root string, entries []entry) error {
	// Reads go through os.Root so that a file swapped for a symlink after
	// the walk cannot lead out of the tree.
	r, err := os.OpenRoot(root)
	if err != nil {
		return err
	}
	defer r.Close()

	gw := gzip.NewWriter(w)
	tw := tar.NewWriter(gw)
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := writeEntry(ctx, tw, r, e); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return gw.Close()
}

// writeEntry writes one entry: its header, with normalised mode and no time
// or owner, then for a regular file its content.
func writeEntry(ctx context.Context, tw *tar.Writer, r *os.Root, e entry) error {
	hdr := &tar.Header{Name: e.name, ModTime: epoch}
	if e.link != "" {
		hdr.Typeflag = tar.TypeSymlink
		hdr.Linkname = e.link
		hdr.Mode = 0o777
		return tw.WriteHeader(hdr)
	}

	f, err := r.Open(filepath.FromSlash(e.name))
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%s changed while it was being archived", e.name)
	}
	hdr.Typeflag = tar.TypeReg
	hdr.Size = fi.Size()
	hdr.Mode = 0o644
	if fi.Mode().Perm()&0o111 != 0 {
		hdr.Mode = 0o755
	}
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	if _, err := io.CopyN(tw, ctxReader{ctx, f}, hdr.Size); err != nil {
		return fmt.Errorf("reading %s: %w", e.name, err)
	}
	return nil
}

// ctxReader stops a long copy when its context is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// cappedWriter writes to w until limit bytes (0: no limit) would be passed,
// then only counts, so that the error can tell the full size.
type cappedWriter struct {
	w     io.Writer
	limit int64
	n     int64
	over  bool
}

func (c *cappedWriter) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	if c.limit > 0 && c.n > c.limit {
		c.over = true
	}
	if c.over {
		return len(p), nil
	}
	return c.w.Write(p)
}

// Extract unpacks an artifact of the store into dst, creating dst if needed;
// it is used to copy one source's tree into a sub-path of another's. It first
// checks the artifact's digest, then refuses entries that would land outside
// dst (absolute names, ".." climbing out), symlinks that are absolute or lead
// out of dst, and an unpacked size over 1 GiB or over a million entries. Regular files, folders and
// symlinks are unpacked; other entry types are skipped. On error dst may hold
// part of the tree: extract into a fresh folder and discard it on error.
func (s *Store) Extract(ctx context.Context, a *meta.Artifact, dst string) error {
	if err := s.verify(a); err != nil {
		return fmt.Errorf("cannot extract: %w", err)
	}
	p, err := s.localPath(a)
	if err != nil {
		return err
	}
	f, err := os.Open(p)
	if err != nil {
		return fmt.Errorf("opening artifact %s: %w", a.Path, err)
	}
	defer f.Close()
	return unpack(ctx, f, dst, "artifact "+a.Path)
}

// unpack unpacks the tar.gz stream r into dst with Extract's guards; what
// names the stream in errors ("artifact <path>").
func unpack(ctx context.Context, r io.Reader, dst, what string) error {
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return fmt.Errorf("creating %s: %w", dst, err)
	}
	realDst, err := filepath.EvalSymlinks(dst)
	if err != nil {
		return fmt.Errorf("opening %s: %w", dst, err)
	}
	// Every write goes through os.Root: the kernel-checked guard against a
	// path that reaches out of dst through a symlink.
	root, err := os.OpenRoot(realDst)
	if err != nil {
		return fmt.Errorf("opening %s: %w", dst, err)
	}
	defer root.Close()

	gz, err := gzip.NewReader(ctxReader{ctx: ctx, r: r})
	if err != nil {
		return fmt.Errorf("%s is not a gzip archive: %w", what, err)
	}
	x := extractor{root: root, what: what, dst: dst}
	err = x.entries(ctx, tar.NewReader(gz))
	// Links are checked on every path: one that leads out through another
	// must not stay behind when a later entry fails.
	if lerr := x.checkLinks(realDst); err == nil {
		err = lerr
	}
	return err
}

// entries unpacks every entry of tr.
func (x *extractor) entries(ctx context.Context, tr *tar.Reader) error {
	for n := 0; ; n++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("reading %s: %w", x.what, err)
		}
		if n == maxExtractEntries {
			return fmt.Errorf("%s holds more than %d entries; refusing to extract it into %s", x.what, maxExtractEntries, x.dst)
		}
		if err := x.entry(hdr, tr); err != nil {
			return err
		}
	}
}

// extractor unpacks entries into root and remembers what it has done.
type extractor struct {
	root  *os.Root
	what  string // "artifact <store path>", for errors
	dst   string // as the caller named it, for errors
	size  int64  // bytes unpacked so far
	links []string
}

// entry unpacks one tar entry.
func (x *extractor) entry(hdr *tar.Header, r io.Reader) error {
	name, err := localName(hdr.Name)
	if err != nil {
		return x.refuse(hdr.Name, err.Error())
	}
	if name == "." {
		return nil
	}
	switch hdr.Typeflag {
	case tar.TypeDir:
		return x.wrap(hdr.Name, x.root.MkdirAll(name, 0o755))
	case tar.TypeReg:
		if hdr.Size < 0 || hdr.Size > maxExtractSize-x.size {
			return fmt.Errorf("%s unpacks to more than %s; refusing to extract it into %s",
				x.what, humanSize(maxExtractSize), x.dst)
		}
		x.size += hdr.Size
		return x.wrap(hdr.Name, x.file(name, hdr, r))
	case tar.TypeSymlink:
		target := hdr.Linkname
		if target == "" || path.IsAbs(target) || filepath.IsAbs(filepath.FromSlash(target)) ||
			!filepath.IsLocal(filepath.Join(filepath.Dir(name), filepath.FromSlash(target))) {
			return x.refuse(hdr.Name, fmt.Sprintf("it is a symlink to %q, out of the folder", target))
		}
		if err := x.clear(name); err != nil {
			return x.wrap(hdr.Name, err)
		}
		if err := x.root.MkdirAll(filepath.Dir(name), 0o755); err != nil {
			return x.wrap(hdr.Name, err)
		}
		x.links = append(x.links, name)
		return x.wrap(hdr.Name, x.root.Symlink(filepath.FromSlash(target), name))
	default:
		// Hard links, devices and fifos: never written by Archive, and
		// not needed by any consumer.
		return nil
	}
}

// file writes a regular file's content, replacing whatever non-folder was
// at name.
func (x *extractor) file(name string, hdr *tar.Header, r io.Reader) error {
	if err := x.clear(name); err != nil {
		return err
	}
	if err := x.root.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		return err
	}
	mode := fs.FileMode(0o644)
	if hdr.Mode&0o111 != 0 {
		mode = 0o755
	}
	f, err := x.root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := io.CopyN(f, r, hdr.Size); err != nil {
		_ = f.Close()
		return err
	}
	if err := f.Chmod(mode); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

// clear removes a symlink or file at name so that the entry replaces it
// rather than writing through it.
func (x *extractor) clear(name string) error {
	fi, err := x.root.Lstat(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if fi.IsDir() {
		return errors.New("a folder is in the way")
	}
	return x.root.Remove(name)
}

// checkLinks resolves every symlink unpacked, now that the whole tree is
// there: a link can be harmless on its own and lead out of dst through
// another ("l/.." with l -> "."). It removes every link that does and
// refuses the archive for the first. Dangling links point nowhere and stay.
func (x *extractor) checkLinks(realDst string) error {
	var first error
	for _, l := range x.links {
		real, err := filepath.EvalSymlinks(filepath.Join(realDst, l))
		if err != nil || within(realDst, real) {
			continue
		}
		_ = x.root.Remove(l)
		if first == nil {
			first = x.refuse(filepath.ToSlash(l), "it is a symlink that resolves out of the folder")
		}
	}
	return first
}

func (x *extractor) refuse(name, why string) error {
	return fmt.Errorf("%s holds the entry %q and %s; refusing to extract it into %s", x.what, name, why, x.dst)
}

func (x *extractor) wrap(name string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("extracting %q of %s into %s: %w", name, x.what, x.dst, err)
}

// localName turns a tar entry name into a local path under the destination,
// or says why it cannot be one.
func localName(name string) (string, error) {
	if name == "" {
		return "", errors.New("its name is empty")
	}
	if path.IsAbs(name) || filepath.IsAbs(filepath.FromSlash(name)) {
		return "", errors.New("its path is absolute")
	}
	p := filepath.FromSlash(path.Clean(name))
	if !filepath.IsLocal(p) {
		return "", errors.New("its path leads out of the folder")
	}
	return p, nil
}
