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
