package artifact

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var chartRef = Ref{Kind: "OCIRepository", Namespace: "flux-system", Name: "podinfo"}

func TestCopyStoresTheBytesAsTheyAre(t *testing.T) {
	s := newStore(t)
	content := []byte("\x1f\x8b not really a chart, kept byte for byte")
	a, err := s.Copy(context.Background(), chartRef, "6.5.0@sha256:abc", bytes.NewReader(content))
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(s.Path(a))
	if err != nil || !bytes.Equal(got, content) {
		t.Fatalf("stored %q, %v; want the bytes given", got, err)
	}
	if a.Digest != "sha256:"+sha256Hex(content) || *a.Size != int64(len(content)) || a.Revision != "6.5.0@sha256:abc" {
		t.Errorf("artifact = %+v", a)
	}
	if !strings.HasPrefix(a.Path, "ocirepository/flux-system/podinfo/") || a.URL != "http://127.0.0.1:9090/"+a.Path {
		t.Errorf("artifact path %q, URL %q", a.Path, a.URL)
	}
	if !s.Has(a) {
		t.Error("the store does not have the copied artifact")
	}
}

func TestCopyOverTheLimitLeavesNothing(t *testing.T) {
	s := newStore(t)
	s.MaxSize = 10
	_, err := s.Copy(context.Background(), chartRef, "r", bytes.NewReader(make([]byte, 11)))
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Copy of 11 bytes under a 10-byte limit: %v", err)
	}
	entries, _ := os.ReadDir(filepath.Join(s.Root, "ocirepository", "flux-system", "podinfo"))
	if len(entries) != 0 {
		t.Errorf("a refused copy left %v behind", entries)
	}
}

func TestUnpackRefusesEscapes(t *testing.T) {
	s := newStore(t)
	a := craft(t, s, []tarEntry{{name: "ok.yaml", content: "ok", typ: tar.TypeReg}, {name: "../evil", content: "pwned", typ: tar.TypeReg}})
	f, err := os.Open(s.Path(a))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	parent := t.TempDir()
	err = Unpack(context.Background(), f, filepath.Join(parent, "dst"), "layer sha256:0123")
	if err == nil || !strings.Contains(err.Error(), `layer sha256:0123 holds the entry "../evil"`) {
		t.Fatalf("Unpack of an escaping entry: %v", err)
	}
	if _, err := os.Lstat(filepath.Join(parent, "evil")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a file was written outside the destination: %v", err)
	}
}

func TestCopyYAMLIsAnArtifactGCCounts(t *testing.T) {
	s := newStore(t)
	s.Keep = 1
	ref := Ref{Kind: "HelmRepository", Namespace: "flux-system", Name: "podinfo"}
	first, err := s.CopyYAML(context.Background(), ref, "sha256:1", strings.NewReader(`{"apiVersion":"v1"}`))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(first.Path, ".yaml") || !s.Has(first) {
		t.Fatalf("index artifact %+v: want a .yaml file the store has", first)
	}
	// Archive sets modification times; make the order plain for GC.
	old := time.Now().Add(-time.Minute)
	if err := os.Chtimes(s.Path(first), old, old); err != nil {
		t.Fatal(err)
	}
	second, err := s.CopyYAML(context.Background(), ref, "sha256:2", strings.NewReader(`{"apiVersion":"v1","entries":{}}`))
	if err != nil {
		t.Fatal(err)
	}
	removed, err := s.GC(ref, second)
	if err != nil || len(removed) != 1 || removed[0] != first.Path {
		t.Fatalf("GC removed %v, %v; want the older index %s", removed, err, first.Path)
	}
	if !s.Has(second) {
		t.Error("GC removed the current index")
	}
}
