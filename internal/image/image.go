// Package image builds weir's container image without Docker: a static
// weir binary per platform on an empty base, with the build machine's CA
// certificates, run as user 65532 with `weir controller` as its command,
// assembled with go-containerregistry into an OCI image index and written
// as an OCI image layout. Builds are reproducible: every timestamp is the
// one given (SOURCE_DATE_EPOCH in `make image`).
package image

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"path"
	"slices"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Paths and identity inside the image.
const (
	// Binary is where weir is in the image.
	Binary = "/usr/local/bin/weir"
	// CACerts is where the CA certificates are, where Go looks first.
	CACerts = "/etc/ssl/certs/ca-certificates.crt"
	// User is the numeric user and group weir runs as (no /etc/passwd
	// entry is needed for a numeric one).
	User = "65532:65532"
)

// Options say what goes into the image.
type Options struct {
	// Binaries maps each platform ("linux/amd64", "linux/arm64") to the
	// static weir binary built for it.
	Binaries map[string]string
	// CACerts is the CA bundle to copy in; "" means the build machine's
	// /etc/ssl/certs/ca-certificates.crt.
	CACerts string
	// Version, Revision and Source fill the OCI labels
	// org.opencontainers.image.version, .revision and .source.
	Version, Revision, Source string
	// Created is the time written into the image (layers, config);
	// the zero time means the Unix epoch, for reproducible builds.
	Created time.Time
	// Stored writes the layer gzip-framed but not compressed (deflate's
	// stored blocks): larger, much faster to build and read, for tests.
	Stored bool
}

// Build returns the image index holding one image per platform of
// o.Binaries.
func Build(o Options) (v1.ImageIndex, error) {
	if len(o.Binaries) == 0 {
		return nil, fmt.Errorf("no binary to put in the image")
	}
	certs := o.CACerts
	if certs == "" {
		certs = "/etc/ssl/certs/ca-certificates.crt"
	}
	caData, err := os.ReadFile(certs)
	if err != nil {
		return nil, fmt.Errorf("reading the CA certificates to put in the image: %w", err)
	}
	created := o.Created
	if created.IsZero() {
		created = time.Unix(0, 0).UTC()
	}
	platforms := make([]string, 0, len(o.Binaries))
	for p := range o.Binaries {
		platforms = append(platforms, p)
	}
	slices.Sort(platforms)
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	for _, p := range platforms {
		plat, err := v1.ParsePlatform(p)
		if err != nil {
			return nil, fmt.Errorf("platform %q: %w", p, err)
		}
		bin, err := os.ReadFile(o.Binaries[p])
		if err != nil {
			return nil, fmt.Errorf("reading the weir binary for %s: %w", p, err)
		}
		img, err := platformImage(o, *plat, bin, caData, created)
		if err != nil {
			return nil, fmt.Errorf("building the image for %s: %w", p, err)
		}
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: plat}})
	}
	return idx, nil
}

// platformImage is the image of one platform.
func platformImage(o Options, plat v1.Platform, bin, caData []byte, created time.Time) (v1.Image, error) {
	layerTar, err := rootFS(bin, caData, created)
	if err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	}, layerOptions(o)...)
	if err != nil {
		return nil, err
	}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err = mutate.Append(img, mutate.Addendum{Layer: layer, History: v1.History{
		Created: v1.Time{Time: created}, CreatedBy: "weir make image", Comment: "weir and CA certificates",
	}})
	if err != nil {
		return nil, err
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cfg = cfg.DeepCopy()
	cfg.Created = v1.Time{Time: created}
	cfg.OS, cfg.Architecture, cfg.Variant = plat.OS, plat.Architecture, plat.Variant
	cfg.Config.Entrypoint = []string{Binary}
	cfg.Config.Cmd = []string{"controller"}
	cfg.Config.User = User
	cfg.Config.WorkingDir = "/"
	cfg.Config.Env = []string{"PATH=/usr/local/bin", "SSL_CERT_FILE=" + CACerts}
	cfg.Config.Labels = map[string]string{
		"org.opencontainers.image.title":       "weir",
		"org.opencontainers.image.description": "a GitOps engine for Kubernetes that speaks Flux's APIs",
		"org.opencontainers.image.source":      o.Source,
		"org.opencontainers.image.revision":    o.Revision,
		"org.opencontainers.image.version":     o.Version,
		"org.opencontainers.image.created":     created.Format(time.RFC3339),
	}
	return mutate.ConfigFile(img, cfg)
}

// layerOptions are the layer's media type and compression.
func layerOptions(o Options) []tarball.LayerOption {
	opts := []tarball.LayerOption{tarball.WithMediaType(types.OCILayer)}
	if o.Stored {
		opts = append(opts, tarball.WithCompressionLevel(gzip.NoCompression))
	}
	return opts
}

// rootFS is the image's only layer: weir, the CA bundle and the folders
// they sit in, owned by root and readable by all; /tmp is writable for
// the user (the in-cluster Deployment mounts an emptyDir over it).
func rootFS(bin, caData []byte, created time.Time) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	dirs := map[string]bool{}
	addDir := func(d string, mode int64) error {
		if d == "/" || d == "." || dirs[d] {
			return nil
		}
		dirs[d] = true
		return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: strings.TrimPrefix(d, "/") + "/", Mode: mode, ModTime: created, Format: tar.FormatPAX})
	}
	addFile := func(p string, data []byte, mode int64) error {
		var parents []string
		for d := path.Dir(p); d != "/"; d = path.Dir(d) {
			parents = append(parents, d)
		}
		for i := len(parents) - 1; i >= 0; i-- {
			if err := addDir(parents[i], 0o755); err != nil {
				return err
			}
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: strings.TrimPrefix(p, "/"), Mode: mode, Size: int64(len(data)), ModTime: created, Format: tar.FormatPAX}); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	if err := addFile(CACerts, caData, 0o644); err != nil {
		return nil, err
	}
	if err := addDir("/tmp", 0o1777); err != nil {
		return nil, err
	}
	if err := addFile(Binary, bin, 0o755); err != nil {
		return nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// WriteLayout writes idx as an OCI image layout in dir, the form `crane
// push` and `skopeo copy oci:DIR` read. dir is created, or replaced when
// it holds an earlier layout; a folder holding anything else is refused.
func WriteLayout(dir string, idx v1.ImageIndex) error {
	entries, err := os.ReadDir(dir)
	if err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("reading %s: %w", dir, err)
	}
	if len(entries) > 0 {
		if _, err := os.Stat(path.Join(dir, "oci-layout")); err != nil {
			return fmt.Errorf("%s is not empty and holds no image layout: choose another folder", dir)
		}
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("clearing %s: %w", dir, err)
	}
	if _, err := layout.Write(dir, idx); err != nil {
		return fmt.Errorf("writing the image layout to %s: %w", dir, err)
	}
	return nil
}
