package artifact

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"

	"github.com/fluxcd/pkg/apis/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Unpack unpacks the tar.gz stream r, such as a layer pulled from an OCI
// registry, into dst with the guards of Store.Extract: no entry or symlink
// may land outside dst, and the unpacked size is bounded. what names the
// stream in errors ("layer sha256:…"). On error dst may hold part of the
// tree: unpack into a fresh folder and discard it on error.
func Unpack(ctx context.Context, r io.Reader, dst, what string) error {
	return unpack(ctx, r, dst, what)
}

// Copy stores the bytes of r as they are as an artifact of ref, with
// revision recorded as given: the counterpart of Archive for content that is
// already an archive, such as a Helm chart's .tgz pulled from an OCI
// registry. The file is written atomically as <sha256 hex>.tar.gz, so GC and
// Handler treat it as any other artifact. Store.MaxSize applies as in
// Archive.
func (s *Store) Copy(ctx context.Context, ref Ref, revision string, r io.Reader) (*meta.Artifact, error) {
	return s.copyAs(ctx, ref, revision, artifactExt, r)
}

// CopyYAML is Copy for a document that is not an archive, such as a Helm
// repository index: the file is named <sha256 hex>.yaml, and GC and Handler
// treat it as any other artifact.
func (s *Store) CopyYAML(ctx context.Context, ref Ref, revision string, r io.Reader) (*meta.Artifact, error) {
	return s.copyAs(ctx, ref, revision, yamlExt, r)
}

// copyAs writes r atomically as <sha256 hex><ext> in ref's folder.
func (s *Store) copyAs(ctx context.Context, ref Ref, revision, ext string, r io.Reader) (*meta.Artifact, error) {
	rel, objDir, err := s.folder(ref)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(objDir, 0o700); err != nil {
		return nil, fmt.Errorf("creating the artifact folder of %s: %w", ref, err)
	}
	tmp, err := os.CreateTemp(objDir, ".copy-*")
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
	if _, err := io.Copy(io.MultiWriter(h, out), ctxReader{ctx: ctx, r: r}); err != nil {
		return nil, fmt.Errorf("copying the artifact of %s: %w", ref, err)
	}
	if out.over {
		return nil, fmt.Errorf("copying the artifact of %s: %w", ref, &sizeError{size: out.n, limit: s.MaxSize})
	}
	if err := tmp.Close(); err != nil {
		return nil, fmt.Errorf("writing the artifact of %s: %w", ref, err)
	}
	sum := hex.EncodeToString(h.Sum(nil))
	name := sum + ext
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
