package image

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
)

// The layout holds one image per platform, each running weir controller
// as user 65532 with the OCI labels, weir executable at Binary and the CA
// bundle; building twice gives the same digest.
func TestImageLayout(t *testing.T) {
	dir := t.TempDir()
	bins := map[string]string{}
	for _, p := range []string{"linux/amd64", "linux/arm64"} {
		f := filepath.Join(dir, filepath.Base(p))
		if err := os.WriteFile(f, []byte("weir for "+p), 0o755); err != nil {
			t.Fatal(err)
		}
		bins[p] = f
	}
	ca := filepath.Join(dir, "ca.crt")
	if err := os.WriteFile(ca, []byte("-----BEGIN CERTIFICATE-----\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	o := Options{Binaries: bins, CACerts: ca, Version: "1.2.3", Revision: "abc", Source: "https://github.com/weirhq/weir"}
	idx, err := Build(o)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "layout")
	if err := WriteLayout(out, idx); err != nil {
		t.Fatal(err)
	}
	read, err := layout.ImageIndexFromPath(out)
	if err != nil {
		t.Fatal(err)
	}
	lidx := read
	im, err := lidx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	var platforms []string
	for _, d := range im.Manifests {
		platforms = append(platforms, d.Platform.String())
		img, err := lidx.Image(d.Digest)
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		c := cfg.Config
		if !slices.Equal(c.Entrypoint, []string{Binary}) || !slices.Equal(c.Cmd, []string{"controller"}) || c.User != "65532:65532" {
			t.Errorf("%s: entrypoint %v cmd %v user %q", d.Platform, c.Entrypoint, c.Cmd, c.User)
		}
		if cfg.OS+"/"+cfg.Architecture != d.Platform.String() {
			t.Errorf("%s: config says %s/%s", d.Platform, cfg.OS, cfg.Architecture)
		}
		for k, v := range map[string]string{"org.opencontainers.image.version": "1.2.3", "org.opencontainers.image.revision": "abc", "org.opencontainers.image.source": "https://github.com/weirhq/weir"} {
			if c.Labels[k] != v {
				t.Errorf("%s: label %s = %q, want %q", d.Platform, k, c.Labels[k], v)
			}
		}
		files := layerFiles(t, img)
		if f := files[Binary[1:]]; f == nil || string(f.data) != "weir for "+d.Platform.String() || f.mode != 0o755 {
			t.Errorf("%s: the binary in the image is %+v", d.Platform, f)
		}
		if f := files[CACerts[1:]]; f == nil || !bytes.HasPrefix(f.data, []byte("-----BEGIN CERTIFICATE")) {
			t.Errorf("%s: no CA bundle at %s", d.Platform, CACerts)
		}
	}
	slices.Sort(platforms)
	if !slices.Equal(platforms, []string{"linux/amd64", "linux/arm64"}) {
		t.Errorf("platforms %v", platforms)
	}

	again, err := Build(o)
	if err != nil {
		t.Fatal(err)
	}
	d1, _ := idx.Digest()
	d2, _ := again.Digest()
	if d1 != d2 {
		t.Errorf("two builds of the same input differ: %s and %s", d1, d2)
	}

	// A folder holding something else is not replaced.
	other := filepath.Join(dir, "other")
	if err := os.MkdirAll(other, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(other, "notes.txt"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := WriteLayout(other, idx); err == nil {
		t.Error("WriteLayout replaced a folder that held no image layout")
	}
}

type tarFile struct {
	data []byte
	mode int64
}

// layerFiles reads every regular file of the image's layers.
func layerFiles(t *testing.T, img v1.Image) map[string]*tarFile {
	t.Helper()
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]*tarFile{}
	for _, l := range layers {
		rc, err := l.Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		tr := tar.NewReader(rc)
		for {
			h, err := tr.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			if h.Typeflag == tar.TypeReg {
				b, _ := io.ReadAll(tr)
				files[h.Name] = &tarFile{data: b, mode: h.Mode}
			}
		}
		rc.Close()
	}
	return files
}
