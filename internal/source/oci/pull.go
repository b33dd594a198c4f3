package oci

import (
	"context"
	"fmt"
	"io"
	"path/filepath"

	"github.com/fluxcd/pkg/apis/meta"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/weirhq/weir/internal/artifact"
)

// pullError is a failure to pull or unpack, with the condition and reason
// source-controller gives it.
type pullError struct {
	condition, reason string
	err               error
}

func (e *pullError) Error() string { return e.err.Error() }
func (e *pullError) Unwrap() error { return e.err }

func layerError(err error) error {
	return &pullError{sourcev1.FetchFailedCondition, sourcev1.OCILayerOperationFailedReason, err}
}

// pull fetches the manifest of the target by digest (so that what is stored
// is what was resolved, even if the tag moves meanwhile), then the selected
// layer, and stores it: unpacked and archived minus ignored files
// ("extract"), or as it is ("copy"). The manifest's annotations become the
// artifact's metadata.
func (r *Reconciler) pull(ctx context.Context, obj *sourcev1.OCIRepository, g *registry, tgt target, scratch string) (*meta.Artifact, error) {
	manifestRef := g.repo.Digest(tgt.digest.String())
	img, err := remote.Image(manifestRef, g.options(ctx)...)
	if err != nil {
		return nil, &pullError{sourcev1.FetchFailedCondition, sourcev1.OCIPullFailedReason,
			fmt.Errorf("failed to pull artifact from '%s': %w", obj.Spec.URL, g.describe(ctx, err, manifestRef))}
	}
	manifest, err := img.Manifest()
	if err != nil {
		return nil, layerError(fmt.Errorf("failed to parse artifact manifest: %w", err))
	}
	desc, layer, err := selectLayer(obj, manifest, img)
	if err != nil {
		return nil, layerError(err)
	}
	blob, err := layer.Compressed()
	if err != nil {
		return nil, &pullError{sourcev1.FetchFailedCondition, sourcev1.OCIPullFailedReason,
			fmt.Errorf("failed to pull layer %s from '%s': %w", desc.Digest, obj.Spec.URL, g.describe(ctx, err, g.repo.Digest(desc.Digest.String())))}
	}
	defer blob.Close()

	var art *meta.Artifact
	switch op := obj.GetLayerOperation(); op {
	case sourcev1.OCILayerCopy:
		if limit := r.Store.MaxSize; limit > 0 && desc.Size > limit {
			return nil, fmt.Errorf("layer %s is %d bytes, over the %d bytes limit set by --artifact-max-size: %w",
				desc.Digest, desc.Size, limit, artifact.ErrTooLarge)
		}
		// Reading to the end lets go-containerregistry check the digest.
		if art, err = r.Store.Copy(ctx, storeRef(obj), tgt.revision(), blob); err != nil {
			return nil, fmt.Errorf("unable to copy artifact to storage: %w", err)
		}
	case sourcev1.OCILayerExtract:
		dir := filepath.Join(scratch, "content")
		if err := artifact.Unpack(ctx, blob, dir, "layer "+desc.Digest.String()); err != nil {
			return nil, layerError(fmt.Errorf("failed to extract layer contents from artifact: %w", err))
		}
		// The rest of the stream (padding, the gzip trailer) is read so
		// that go-containerregistry checks the layer's digest.
		if _, err := io.Copy(io.Discard, blob); err != nil {
			return nil, layerError(fmt.Errorf("failed to read layer %s: %w", desc.Digest, err))
		}
		ignore, err := artifact.NewIgnore(dir, obj.Spec.Ignore)
		if err != nil {
			return nil, fmt.Errorf("reading ignore rules: %w", err)
		}
		if art, err = r.Store.Archive(ctx, storeRef(obj), tgt.revision(), dir, ignore); err != nil {
			return nil, fmt.Errorf("unable to archive artifact to storage: %w", err)
		}
	default:
		return nil, layerError(fmt.Errorf("unsupported layer operation: %s", op))
	}
	art.Metadata = manifest.Annotations
	return art, nil
}

// selectLayer returns the layer spec.layerSelector.mediaType selects (see
// SelectLayer).
func selectLayer(obj *sourcev1.OCIRepository, m *v1.Manifest, img v1.Image) (v1.Descriptor, v1.Layer, error) {
	desc, err := SelectLayer(m, obj.GetLayerMediaType())
	if err != nil {
		return v1.Descriptor{}, nil, err
	}
	layer, err := img.LayerByDigest(desc.Digest)
	if err != nil {
		return v1.Descriptor{}, nil, fmt.Errorf("failed to find layer %s in artifact: %w", desc.Digest, err)
	}
	return desc, layer, nil
}

// SelectLayer returns the first layer of mediaType in a manifest, or its
// first layer when mediaType is empty, as source-controller does for
// spec.layerSelector.
func SelectLayer(m *v1.Manifest, mediaType string) (v1.Descriptor, error) {
	if len(m.Layers) == 0 {
		return v1.Descriptor{}, fmt.Errorf("no layers found in artifact")
	}
	if mediaType == "" {
		return m.Layers[0], nil
	}
	for _, l := range m.Layers {
		if string(l.MediaType) == mediaType {
			return l, nil
		}
	}
	return v1.Descriptor{}, fmt.Errorf("failed to find layer with media type '%s' in artifact", mediaType)
}
