package artifactgenerator

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/bmatcuk/doublestar/v4"
	swapi "github.com/fluxcd/source-watcher/api/v2/v1beta1"

	"github.com/weirhq/weir/internal/artifact"
)

// copyError is a copy operation that the generator's spec and its sources'
// content cannot carry out: an alias no source has, a path that leaves its
// root, a glob that matches nothing. Retrying does not help until the spec
// or a source changes, and either queues the generator.
type copyError struct{ err error }

func (e *copyError) Error() string { return e.err.Error() }
func (e *copyError) Unwrap() error { return e.err }

func refuse(format string, args ...any) error {
	return &copyError{err: fmt.Errorf(format, args...)}
}

// build carries out the copy operations of one output artifact, in order,
// from the unpacked sources (by alias) into the folder dst: later
// operations overwrite what earlier ones copied, or merge into it.
func build(ctx context.Context, ops []swapi.CopyOperation, sources map[string]string, dst string) error {
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return fmt.Errorf("creating the staging folder: %w", err)
	}
	for _, op := range ops {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := copyOne(ctx, op, sources, dst); err != nil {
			return fmt.Errorf("failed to apply copy operation from '%s' to '%s': %w", op.From, op.To, err)
		}
	}
	return nil
}

// copyOne carries out one operation with cp's rules: a path that names a
// file or a folder is copied as that file or folder; a glob copies each
// match, "dir/**" copying the contents of dir rather than dir itself.
// Every read goes through an os.Root of the source and every write
// through one of dst, so that no path or symlink leads out of either.
func copyOne(ctx context.Context, op swapi.CopyOperation, sources map[string]string, dst string) error {
	alias, pattern, err := parseFrom(op.From)
	if err != nil {
		return err
	}
	dest, err := parseTo(op.To)
	if err != nil {
		return err
	}
	srcDir, ok := sources[alias]
	if !ok {
		return refuse("source alias '%s' not found (the generator's sources are %s)", alias, aliases(sources))
	}
	for _, p := range op.Exclude {
		if !doublestar.ValidatePattern(p) {
			return refuse("invalid exclude pattern '%s'", p)
		}
	}
	src, err := os.OpenRoot(srcDir)
	if err != nil {
		return fmt.Errorf("opening source '%s': %w", alias, err)
	}
	defer src.Close()
	out, err := os.OpenRoot(dst)
	if err != nil {
		return fmt.Errorf("opening the staging folder: %w", err)
	}
	defer out.Close()

	c := copier{ctx: ctx, op: op, src: src, out: out, outDir: dst}
	if !strings.ContainsAny(pattern, "*?[]") {
		return c.single(pattern, dest, strings.HasSuffix(op.To, "/"))
	}

	var matches []string
	if op.Strategy == swapi.ExtractStrategy {
		// Tarballs are looked for at any depth: "**" crosses folders.
		matches, err = doublestar.Glob(src.FS(), pattern)
	} else {
		// As Flux: fs.Glob, where "**" is one path element like "*", and a
		// matched folder is copied whole.
		matches, err = fs.Glob(src.FS(), pattern)
	}
	if err != nil {
		return refuse("invalid glob pattern '%s': %v", pattern, err)
	}
	if len(matches) == 0 {
		return refuse("no files match pattern '%s' in source '%s'", pattern, alias)
	}
	base := selectionRoot(pattern)
	kept := matches[:0]
	for _, m := range matches {
		if m == "." || m == ".." || excluded(m, base, op.Exclude) {
			continue
		}
		kept = append(kept, m)
	}
	if len(kept) == 0 {
		return refuse("all files matching pattern '%s' in source '%s' were excluded", pattern, alias)
	}
	for _, m := range kept {
		if err := ctx.Err(); err != nil {
			return err
		}
		if op.Strategy == swapi.ExtractStrategy {
			if !isTarball(m) {
				continue // a glob may match other files: they are skipped
			}
			if err := c.extract(m, dest); err != nil {
				return err
			}
			continue
		}
		target := globTarget(pattern, m, dest)
		if err := c.copyPath(m, target, base); err != nil {
			return fmt.Errorf("failed to copy file '%s' to '%s': %w", m, target, err)
		}
	}
	return nil
}

// parseFrom splits "@alias/pattern", refusing a pattern that leaves the
// source's root.
func parseFrom(from string) (alias, pattern string, err error) {
	rest, ok := strings.CutPrefix(from, "@")
	if !ok {
		return "", "", refuse("invalid copy source '%s': source must start with '@'", from)
	}
	alias, pattern, ok = strings.Cut(rest, "/")
	if !ok {
		return "", "", refuse("invalid copy source '%s': source format must be '@alias/pattern'", from)
	}
	if !staysInside(pattern) {
		return "", "", refuse("invalid copy source '%s': the path leaves the root of source '%s'", from, alias)
	}
	return alias, pattern, nil
}

// parseTo returns the path inside the artifact of "@artifact/path",
// refusing one that leaves the artifact's root.
func parseTo(to string) (string, error) {
	rest, ok := strings.CutPrefix(to, "@artifact/")
	if !ok {
		return "", refuse("invalid copy destination '%s': destination must start with '@artifact/'", to)
	}
	if !staysInside(rest) {
		return "", refuse("invalid copy destination '%s': the path leaves the root of the artifact", to)
	}
	return path.Clean("./" + rest), nil
}

// staysInside reports whether the relative slash path p stays under its
// root once cleaned ("" and "." are the root itself).
func staysInside(p string) bool {
	if strings.HasPrefix(p, "/") || strings.Contains(p, "\\") {
		return false
	}
	c := path.Clean("./" + p)
	return c != ".." && !strings.HasPrefix(c, "../")
}

func aliases(sources map[string]string) string {
	names := make([]string, 0, len(sources))
	for a := range sources {
		names = append(names, "'"+a+"'")
	}
	slices.Sort(names)
	return strings.Join(names, ", ")
}

// copier copies from one source into the staging folder for one operation.
type copier struct {
	ctx    context.Context
	op     swapi.CopyOperation
	src    *os.Root
	out    *os.Root
	outDir string
}

// single copies a path that has no glob characters, as cp does: a file to
// dest (into it when dest ends with "/" or is a folder already), a folder
// as a sub-folder of dest.
func (c copier) single(p, dest string, destIsDir bool) error {
	p = path.Clean("./" + p)
	fi, err := c.src.Stat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return refuse("source '%s' does not exist", p)
	}
	if err != nil {
		return refuse("reading source '%s': %v", p, err)
	}
	if fi.IsDir() {
		if c.op.Strategy == swapi.ExtractStrategy {
			return refuse("extract strategy is not supported for directories, got '%s'", p)
		}
		return c.copyTree(p, path.Join(dest, path.Base(p)), p)
	}
	if excluded(p, ".", c.op.Exclude) {
		return nil
	}
	if c.op.Strategy == swapi.ExtractStrategy {
		if !isTarball(p) {
			return refuse("extract strategy requires tarball file (.tar.gz or .tgz), got '%s'", p)
		}
		return c.extract(p, dest)
	}
	target := dest
	if destIsDir {
		target = path.Join(dest, path.Base(p))
	} else if di, err := c.out.Stat(dest); err == nil && di.IsDir() {
		target = path.Join(dest, path.Base(p))
	}
	return c.copyPath(p, target, ".")
}

// copyPath copies the file or folder p to target; a YAML file is merged
// into an existing target with the Merge strategy.
func (c copier) copyPath(p, target, base string) error {
	fi, err := c.src.Stat(p)
	if err != nil {
		return refuse("reading source '%s': %v", p, err)
	}
	if fi.IsDir() {
		return c.copyTree(p, target, base)
	}
	if c.op.Strategy == swapi.MergeStrategy {
		if _, err := c.out.Stat(target); err == nil {
			return c.merge(p, target)
		}
	}
	return c.copyFile(p, target)
}

// copyTree copies the folder p to target, leaving out excluded paths.
func (c copier) copyTree(p, target, base string) error {
	return fs.WalkDir(c.src.FS(), p, func(name string, d fs.DirEntry, err error) error {
		if err != nil {
			return refuse("reading source '%s': %v", name, err)
		}
		if err := c.ctx.Err(); err != nil {
			return err
		}
		rel, err := filepath.Rel(p, name)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if rel == "." {
			return c.mkdir(target)
		}
		if excluded(name, base, c.op.Exclude) {
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			return c.mkdir(path.Join(target, rel))
		}
		return c.copyFile(name, path.Join(target, rel))
	})
}

func (c copier) mkdir(p string) error {
	if p == "." || p == "" {
		return nil
	}
	if err := c.out.MkdirAll(p, 0o755); err != nil {
		return fmt.Errorf("creating '%s' in the artifact: %w", p, err)
	}
	return nil
}

// copyFile copies the regular file p to target with its mode; anything
// else (a symlink to a folder) is left out.
func (c copier) copyFile(p, target string) error {
	in, err := c.src.Open(p)
	if err != nil {
		return refuse("reading source '%s': %v", p, err)
	}
	defer in.Close()
	fi, err := in.Stat()
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return nil
	}
	if err := c.mkdir(path.Dir(target)); err != nil {
		return err
	}
	out, err := c.out.OpenFile(target, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, fi.Mode().Perm())
	if err != nil {
		return fmt.Errorf("writing '%s' in the artifact: %w", target, err)
	}
	if _, err := io.Copy(out, ctxReader{c.ctx, in}); err != nil {
		out.Close()
		return fmt.Errorf("writing '%s' in the artifact: %w", target, err)
	}
	if err := out.Chmod(fi.Mode().Perm()); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// extract unpacks the tarball p into dest, with the artifact store's
// guards: no entry or link may land outside the staging folder.
func (c copier) extract(p, dest string) error {
	f, err := c.src.Open(p)
	if err != nil {
		return refuse("reading source '%s': %v", p, err)
	}
	defer f.Close()
	if err := c.mkdir(dest); err != nil {
		return err
	}
	if err := artifact.Unpack(c.ctx, f, filepath.Join(c.outDir, filepath.FromSlash(dest)), "tarball "+p); err != nil {
		return refuse("failed to extract tarball '%s' to '%s': %v", p, dest, err)
	}
	return nil
}

// globTarget is where a glob match goes: "dir/**" copies the contents of
// dir, so the match loses the dir/ prefix; other matches keep their path.
func globTarget(pattern, match, dest string) string {
	if prefix, ok := strings.CutSuffix(pattern, "/**"); ok {
		if rel, ok := strings.CutPrefix(match, prefix+"/"); ok {
			return path.Join(dest, rel)
		}
	}
	return path.Join(dest, match)
}

// selectionRoot is the literal part of pattern before its first glob
// element: exclude patterns also match paths relative to it.
func selectionRoot(pattern string) string {
	var parts []string
	for _, part := range strings.Split(path.Clean("./"+pattern), "/") {
		if strings.ContainsAny(part, "*?[]") {
			break
		}
		parts = append(parts, part)
	}
	if len(parts) == 0 {
		return "."
	}
	return path.Join(parts...)
}

// excluded reports whether p, relative to the source's root, matches an
// exclude pattern, either as it is or relative to base; a pattern without
// "/" also matches the file name at any depth.
func excluded(p, base string, patterns []string) bool {
	if len(patterns) == 0 {
		return false
	}
	if matchesAny(p, patterns) {
		return true
	}
	if base == "." || base == "" {
		return false
	}
	rel, ok := strings.CutPrefix(p, base+"/")
	return ok && matchesAny(rel, patterns)
}

func matchesAny(p string, patterns []string) bool {
	name := path.Base(p)
	for _, pat := range patterns {
		if doublestar.MatchUnvalidated(pat, p) {
			return true
		}
		if !strings.Contains(pat, "/") && doublestar.MatchUnvalidated(pat, name) {
			return true
		}
	}
	return false
}

// isTarball reports whether p is named as a gzipped tarball, as Flux
// recognises them (`flux build artifact`, `helm package`).
func isTarball(p string) bool {
	l := strings.ToLower(p)
	return strings.HasSuffix(l, ".tar.gz") || strings.HasSuffix(l, ".tgz")
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
