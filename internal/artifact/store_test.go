package artifact

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fluxcd/pkg/apis/meta"
)

var podinfo = Ref{Kind: "GitRepository", Namespace: "flux-system", Name: "podinfo"}

func newStore(t *testing.T) *Store {
	t.Helper()
	return &Store{Root: filepath.Join(t.TempDir(), "store"), BaseURL: "http://127.0.0.1:9090/"}
}

// writeTree creates the files (slash paths, parents made as needed) under dir.
func writeTree(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// archived is one entry of an archive as a consumer reads it.
type archived struct {
	hdr     *tar.Header
	content string
}

// readArchive returns the entries of the tar.gz at p, by name, and their
// names in archive order.
func readArchive(t *testing.T, p string) (map[string]archived, []string) {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	entries := map[string]archived{}
	var order []string
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		entries[hdr.Name] = archived{hdr, string(b)}
		order = append(order, hdr.Name)
	}
	return entries, order
}

// artifactFiles lists the file names in the object's folder.
func artifactFiles(t *testing.T, s *Store, ref Ref) []string {
	t.Helper()
	rel, err := ref.dir()
	if err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(filepath.Join(s.Root, filepath.FromSlash(rel)))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func archive(t *testing.T, s *Store, ref Ref, dir string) *meta.Artifact {
	t.Helper()
	ignore, err := NewIgnore(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	a, err := s.Archive(context.Background(), ref, "main@sha1:0123", dir, ignore)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestSameTreeGivesSameArtifact(t *testing.T) {
	s := newStore(t)
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{
		"deploy/app.yaml":        "kind: Deployment\n",
		"deploy/service.yaml":    "kind: Service\n",
		"kustomization.yaml":     "resources: [deploy]\n",
		"scripts/check.sh":       "#!/bin/sh\n",
		"deploy/zz/config.yaml":  "kind: ConfigMap\n",
		"deploy-extra/keep.yaml": "kind: Namespace\n",
	})
	if err := os.Chmod(filepath.Join(dir, "scripts/check.sh"), 0o700); err != nil {
		t.Fatal(err)
	}
	first := archive(t, s, podinfo, dir)

	// What a checkout changes without changing content: times, the
	// permission bits that are not the executable ones.
	later := time.Now().Add(time.Hour)
	for _, name := range []string{"deploy/app.yaml", "kustomization.yaml", "scripts/check.sh"} {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.Chtimes(p, later, later); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(filepath.Join(dir, "deploy/app.yaml"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(dir, "scripts/check.sh"), 0o755); err != nil {
		t.Fatal(err)
	}
	second := archive(t, s, podinfo, dir)

	if first.Digest != second.Digest || first.Path != second.Path {
		t.Errorf("same tree archived twice gave %s (%s) then %s (%s)", first.Digest, first.Path, second.Digest, second.Path)
	}
	if files := artifactFiles(t, s, podinfo); len(files) != 1 {
		t.Errorf("store holds %v for one tree archived twice, want one file", files)
	}

	writeTree(t, dir, map[string]string{"deploy/app.yaml": "kind: Deployment\nspec: {}\n"})
	third := archive(t, s, podinfo, dir)
	if third.Digest == first.Digest {
		t.Errorf("a changed file left the digest at %s", third.Digest)
	}
}

func TestArchiveRecordsTheArtifact(t *testing.T) {
	s := newStore(t)
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{"app.yaml": "kind: Deployment\n"})
	before := time.Now().Add(-time.Second)
	a, err := s.Archive(context.Background(), podinfo, "main@sha1:8d3f4a", dir, Ignore{})
	if err != nil {
		t.Fatal(err)
	}

	content, err := os.ReadFile(s.Path(a))
	if err != nil {
		t.Fatalf("artifact file: %v", err)
	}
	sum := sha256.Sum256(content)
	wantDigest := "sha256:" + hex.EncodeToString(sum[:])
	if a.Digest != wantDigest {
		t.Errorf("Digest = %s, the file's sha256 is %s", a.Digest, wantDigest)
	}
	wantPath := "gitrepository/flux-system/podinfo/" + hex.EncodeToString(sum[:]) + ".tar.gz"
	if a.Path != wantPath {
		t.Errorf("Path = %q, want %q", a.Path, wantPath)
	}
	if want := "http://127.0.0.1:9090/" + wantPath; a.URL != want {
		t.Errorf("URL = %q, want %q", a.URL, want)
	}
	if s.Path(a) != filepath.Join(s.Root, filepath.FromSlash(wantPath)) {
		t.Errorf("Path(a) = %q, not under the store's root as %s", s.Path(a), wantPath)
	}
	if a.Revision != "main@sha1:8d3f4a" {
		t.Errorf("Revision = %q", a.Revision)
	}
	if a.Size == nil || *a.Size != int64(len(content)) {
		t.Errorf("Size = %v, the file has %d bytes", a.Size, len(content))
	}
	if a.LastUpdateTime.Time.Before(before) {
		t.Errorf("LastUpdateTime = %v, not set to now", a.LastUpdateTime)
	}
	if a.Metadata != nil {
		t.Errorf("Metadata = %v, want none", a.Metadata)
	}
}

func TestHas(t *testing.T) {
	s := newStore(t)
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{"app.yaml": "kind: Deployment\n"})
	a := archive(t, s, podinfo, dir)
	if !s.Has(a) {
		t.Fatal("Has is false for an artifact just archived")
	}

	escaping := a.DeepCopy()
	escaping.Path = "../" + a.Path
	if s.Has(escaping) {
		t.Error("Has is true for a path outside the store")
	}

	// Same size, one byte changed: only the digest can tell.
	content, err := os.ReadFile(s.Path(a))
	if err != nil {
		t.Fatal(err)
	}
	content[len(content)-1] ^= 0xff
	if err := os.WriteFile(s.Path(a), content, 0o600); err != nil {
		t.Fatal(err)
	}
	if s.Has(a) {
		t.Error("Has is true for a file whose content changed")
	}

	if err := os.Remove(s.Path(a)); err != nil {
		t.Fatal(err)
	}
	if s.Has(a) {
		t.Error("Has is true for a file that is gone")
	}
}

func TestGC(t *testing.T) {
	tests := []struct {
		name    string
		keep    int
		current int // index into the artifacts, oldest first
		want    []int
	}{
		{name: "default keeps two, current is newest", keep: 0, current: 3, want: []int{2, 3}},
		{name: "old current is kept besides the newest", keep: 0, current: 0, want: []int{0, 2, 3}},
		{name: "keep one", keep: 1, current: 3, want: []int{3}},
		{name: "keep more than there are", keep: 10, current: 3, want: []int{0, 1, 2, 3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStore(t)
			s.Keep = tt.keep
			dir := t.TempDir()
			var artifacts []*meta.Artifact
			start := time.Now().Add(-time.Hour)
			for i := range 4 {
				writeTree(t, dir, map[string]string{"app.yaml": strings.Repeat("x", i+1)})
				a := archive(t, s, podinfo, dir)
				at := start.Add(time.Duration(i) * time.Minute)
				if err := os.Chtimes(s.Path(a), at, at); err != nil {
					t.Fatal(err)
				}
				artifacts = append(artifacts, a)
			}
			// Another object's artifacts are not this object's to collect.
			other := Ref{Kind: "GitRepository", Namespace: "flux-system", Name: "other"}
			otherArtifact := archive(t, s, other, dir)

			removed, err := s.GC(podinfo, artifacts[tt.current])
			if err != nil {
				t.Fatal(err)
			}
			var wantRemoved []string
			for i, a := range artifacts {
				kept := slices.Contains(tt.want, i)
				if kept != s.Has(a) {
					t.Errorf("artifact %d (age rank %d): in store = %v, want %v", i, 3-i, s.Has(a), kept)
				}
				if !kept {
					wantRemoved = append(wantRemoved, a.Path)
				}
			}
			slices.Sort(removed)
			slices.Sort(wantRemoved)
			if !slices.Equal(removed, wantRemoved) {
				t.Errorf("GC reported %v removed, want %v", removed, wantRemoved)
			}
			if !s.Has(otherArtifact) {
				t.Error("GC of one object removed another's artifact")
			}
		})
	}
}

func TestGCRemovesStaleTemporaryFiles(t *testing.T) {
	s := newStore(t)
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{"app.yaml": "a"})
	a := archive(t, s, podinfo, dir)
	folder := filepath.Dir(s.Path(a))
	stale, fresh := filepath.Join(folder, ".archive-1"), filepath.Join(folder, ".archive-2")
	for _, p := range []string{stale, fresh} {
		if err := os.WriteFile(p, []byte("partial"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	old := time.Now().Add(-2 * time.Hour)
	if err := os.Chtimes(stale, old, old); err != nil {
		t.Fatal(err)
	}
	removed, err := s.GC(podinfo, a)
	if err != nil {
		t.Fatal(err)
	}
	if len(removed) != 0 {
		t.Errorf("GC reported %v, want no artifact removed", removed)
	}
	if _, err := os.Stat(stale); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stale temporary file still there: %v", err)
	}
	if _, err := os.Stat(fresh); err != nil {
		t.Errorf("a temporary file that may be in use was removed: %v", err)
	}
}

func TestGCWithoutArtifacts(t *testing.T) {
	s := newStore(t)
	removed, err := s.GC(podinfo, nil)
	if err != nil || len(removed) != 0 {
		t.Errorf("GC of an object with no artifacts = %v, %v; want nothing, no error", removed, err)
	}
}

func TestRemove(t *testing.T) {
	s := newStore(t)
	dir := t.TempDir()
	other := Ref{Kind: "GitRepository", Namespace: "flux-system", Name: "podinfo-2"}
	var mine []*meta.Artifact
	for _, content := range []string{"a", "b"} {
		writeTree(t, dir, map[string]string{"app.yaml": content})
		mine = append(mine, archive(t, s, podinfo, dir))
	}
	theirs := archive(t, s, other, dir)

	if err := s.Remove(podinfo); err != nil {
		t.Fatal(err)
	}
	for _, a := range mine {
		if s.Has(a) {
			t.Errorf("%s still in the store", a.Path)
		}
	}
	if _, err := os.Stat(filepath.Dir(s.Path(mine[0]))); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the object's folder is still there: %v", err)
	}
	if !s.Has(theirs) {
		t.Error("removing one object removed another's artifact")
	}
	if err := s.Remove(podinfo); err != nil {
		t.Errorf("removing an object twice: %v", err)
	}
}

func TestRefMustBePlainNames(t *testing.T) {
	s := newStore(t)
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{"app.yaml": "a"})
	for _, ref := range []Ref{
		{Kind: "GitRepository", Namespace: "flux-system", Name: ""},
		{Kind: "GitRepository", Namespace: "..", Name: "podinfo"},
		{Kind: "GitRepository", Namespace: "flux-system", Name: "../../etc"},
		{Kind: "", Namespace: "flux-system", Name: "podinfo"},
	} {
		if _, err := s.Archive(context.Background(), ref, "r", dir, Ignore{}); err == nil {
			t.Errorf("Archive accepted %#v", ref)
		}
		if err := s.Remove(ref); err == nil {
			t.Errorf("Remove accepted %#v", ref)
		}
	}
	if entries, err := os.ReadDir(filepath.Dir(s.Root)); err != nil || len(entries) != 0 {
		t.Errorf("bad references left %v next to the store (%v)", entries, err)
	}
}

func TestPathStaysUnderRoot(t *testing.T) {
	s := &Store{Root: "/var/lib/weir"}
	a := &meta.Artifact{Path: "../../etc/passwd"}
	if got := s.Path(a); !strings.HasPrefix(got, "/var/lib/weir/") {
		t.Errorf("Path(%q) = %q, outside the root", a.Path, got)
	}
}

// sha256Hex is a helper for crafted artifacts.
func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// tarEntry is one entry of a crafted archive.
type tarEntry struct {
	name, link, content string
	typ                 byte
}

// craft writes a tar.gz made of entries into the store, as if Archive had
// written it, and returns its artifact.
func craft(t *testing.T, s *Store, entries []tarEntry) *meta.Artifact {
	t.Helper()
	var buf bytes.Buffer
	gw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gw)
	for _, e := range entries {
		hdr := &tar.Header{Name: e.name, Typeflag: e.typ, Linkname: e.link, Mode: 0o644, Size: int64(len(e.content))}
		if e.typ != tar.TypeReg {
			hdr.Size = 0
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if e.typ == tar.TypeReg {
			if _, err := tw.Write([]byte(e.content)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gw.Close(); err != nil {
		t.Fatal(err)
	}
	b := buf.Bytes()
	sum := sha256Hex(b)
	size := int64(len(b))
	a := &meta.Artifact{Path: "gitrepository/flux-system/crafted/" + sum + ".tar.gz", Digest: "sha256:" + sum, Size: &size}
	if err := os.MkdirAll(filepath.Dir(s.Path(a)), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(s.Path(a), b, 0o600); err != nil {
		t.Fatal(err)
	}
	return a
}

func TestStoreWithoutRootRefusesToWork(t *testing.T) {
	cwd := t.TempDir()
	t.Chdir(cwd)
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{"app.yaml": "a"})
	s := &Store{}
	if _, err := s.Archive(context.Background(), podinfo, "r", dir, Ignore{}); err == nil {
		t.Error("Archive worked without a root folder")
	}
	if _, err := s.GC(podinfo, nil); err == nil {
		t.Error("GC worked without a root folder")
	}
	if err := s.Remove(podinfo); err == nil {
		t.Error("Remove worked without a root folder")
	}
	if entries, _ := os.ReadDir(cwd); len(entries) != 0 {
		t.Errorf("a store without root wrote %v into the working folder", entries)
	}
	if s.Has(nil) || s.Path(nil) != "" {
		t.Error("a nil artifact is reported as present")
	}
}
