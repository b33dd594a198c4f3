package ociregistry

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Media types of the artifacts `flux push artifact` and `helm push` write.
const (
	FluxConfigMediaType  = "application/vnd.cncf.flux.config.v1+json"
	FluxContentMediaType = "application/vnd.cncf.flux.content.v1.tar+gzip"
	HelmConfigMediaType  = "application/vnd.cncf.helm.config.v1+json"
	HelmChartMediaType   = "application/vnd.cncf.helm.chart.content.v1.tar+gzip"
)

// PushDir pushes the folder dir to repo:tag as `flux push artifact` does:
// one layer, a tar.gz of the folder's files, under Flux's media types, with
// the given manifest annotations. It returns the manifest digest
// ("sha256:<hex>"). The same files and annotations always give the same
// digest.
func (r *Registry) PushDir(ctx context.Context, repo, tag, dir string, annotations map[string]string) (string, error) {
	layer, err := TarGz(dir, "")
	if err != nil {
		return "", err
	}
	return r.push(ctx, repo, tag, []byte("{}"), FluxConfigMediaType, layer, FluxContentMediaType, annotations)
}

// push uploads the config and the layer and tags a manifest of them.
func (r *Registry) push(ctx context.Context, repo, tag string, config []byte, configType string, layer []byte, layerType string, annotations map[string]string) (string, error) {
	ref, err := name.NewTag(r.Host+"/"+repo+":"+tag, name.Insecure)
	if err != nil {
		return "", fmt.Errorf("%s:%s is not a valid image reference: %w", repo, tag, err)
	}
	opts := []remote.Option{remote.WithContext(ctx), remote.WithTransport(r.transport), remote.WithAuth(r.Auth())}
	cfg := static.NewLayer(config, types.MediaType(configType))
	content := static.NewLayer(layer, types.MediaType(layerType))
	m := v1.Manifest{SchemaVersion: 2, MediaType: types.OCIManifestSchema1, Annotations: annotations}
	for i, l := range []v1.Layer{cfg, content} {
		if err := remote.WriteLayer(ref.Context(), l, opts...); err != nil {
			return "", fmt.Errorf("pushing a blob to %s: %w", ref, err)
		}
		// A static layer knows its digest, size and media type: these
		// cannot fail.
		d, _ := l.Digest()
		size, _ := l.Size()
		mt, _ := l.MediaType()
		desc := v1.Descriptor{MediaType: mt, Size: size, Digest: d}
		if i == 0 {
			m.Config = desc
		} else {
			m.Layers = append(m.Layers, desc)
		}
	}
	raw, err := json.Marshal(m)
	if err != nil {
		return "", fmt.Errorf("encoding the manifest of %s: %w", ref, err)
	}
	if err := remote.Put(ref, rawManifest(raw), opts...); err != nil {
		return "", fmt.Errorf("pushing the manifest of %s: %w", ref, err)
	}
	h, _, err := v1.SHA256(bytes.NewReader(raw))
	if err != nil {
		return "", fmt.Errorf("hashing the manifest of %s: %w", ref, err)
	}
	return h.String(), nil
}

// rawManifest is an OCI image manifest as bytes, for remote.Put.
type rawManifest []byte

func (m rawManifest) RawManifest() ([]byte, error)        { return m, nil }
func (m rawManifest) MediaType() (types.MediaType, error) { return types.OCIManifestSchema1, nil }

// TarGz packs the regular files and folders of dir, sorted, without times
// or owners, under the folder prefix ("" for the archive's root), so that
// the same files give the same bytes. It is the layer PushDir pushes; with
// a chart's name as prefix, it lays a chart out as `helm package` does,
// without Helm's checks (PackageChart makes them).
func TarGz(dir, prefix string) ([]byte, error) {
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		if rel == "." {
			if prefix == "" {
				return nil
			}
			return tw.WriteHeader(&tar.Header{Name: path.Clean(prefix) + "/", Typeflag: tar.TypeDir, Mode: 0o755})
		}
		name := path.Join(prefix, filepath.ToSlash(rel))
		switch {
		case d.IsDir():
			return tw.WriteHeader(&tar.Header{Name: name + "/", Typeflag: tar.TypeDir, Mode: 0o755})
		case d.Type().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			if err := tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(b))}); err != nil {
				return err
			}
			_, err = tw.Write(b)
			return err
		}
		// Symlinks and other special files are left out, as Flux does.
		return nil
	})
	if err == nil {
		err = tw.Close()
	}
	if err == nil {
		err = gz.Close()
	}
	if err != nil {
		return nil, fmt.Errorf("packing %s: %w", dir, err)
	}
	return buf.Bytes(), nil
}
