package notation

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	_ "github.com/notaryproject/notation-core-go/signature/cose" // COSE envelopes
	_ "github.com/notaryproject/notation-core-go/signature/jws"  // JWS envelopes
	notationgo "github.com/notaryproject/notation-go"
	"github.com/notaryproject/notation-go/registry"
	"github.com/notaryproject/notation-go/verifier/trustpolicy"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// ArtifactType is the artifact type of a notation signature manifest.
const ArtifactType = registry.ArtifactTypeNotation

// Bounds on what is read from the registry, notation-go's own: a
// signature manifest and its envelope are a few kilobytes.
const (
	maxManifestSize = 4 << 20
	maxEnvelopeSize = 32 << 20
	// maxSignatureAttempts is how many signatures are tried before giving
	// up, source-controller's number.
	maxSignatureAttempts = 3
)

// Result is what a verification established.
type Result int

const (
	// Verified: a signature the trust policy trusts was found.
	Verified Result = iota + 1
	// Skipped: the trust policy's statement for the artifact has level
	// skip, or level audit and the signature's authenticity failed, so
	// nothing was verified and nothing is refused (source-controller's
	// "ignored" result).
	Skipped
)

// UnverifiedError says that no signature the trust policy trusts was
// found for an artifact: what notation-go found instead, and what the
// policy expects.
type UnverifiedError struct {
	// Ref is the artifact's manifest, repository@sha256:<hex>.
	Ref string
	// Why is notation-go's account of what it found.
	Why string
	// Expected is what the applicable trust policy statement trusts.
	Expected string
}

func (e *UnverifiedError) Error() string {
	return fmt.Sprintf("%s; %s", e.Why, e.Expected)
}

// Verify checks that the manifest d carries a notation signature that p
// trusts. opts reach d's registry (transport, credentials, context). An
// *UnverifiedError says that there is no such signature; other errors are
// failures to read the signatures.
func Verify(ctx context.Context, d name.Digest, p *Policy, opts ...remote.Option) (Result, error) {
	if p == nil || p.verifier == nil {
		return 0, errors.New("no trust policy to verify with")
	}
	repo := &repository{repo: d.Context(), opts: append(opts, remote.WithContext(ctx))}
	ref := d.String()
	_, outcomes, err := notationgo.Verify(ctx, p.verifier, repo, notationgo.VerifyOptions{
		ArtifactReference:    ref,
		MaxSignatureAttempts: maxSignatureAttempts,
	})
	if repo.err != nil {
		return 0, fmt.Errorf("reading the notation signatures of '%s': %w", ref, repo.err)
	}
	if err != nil {
		return 0, &UnverifiedError{Ref: ref, Why: oneLine(err), Expected: p.expectation(ref)}
	}
	if len(outcomes) == 0 {
		return 0, &UnverifiedError{Ref: ref, Why: fmt.Sprintf("signature verification failed for all the signatures associated with %s", ref), Expected: p.expectation(ref)}
	}
	o := outcomes[0]
	if o.VerificationLevel == trustpolicy.LevelSkip {
		return Skipped, nil
	}
	for _, r := range o.VerificationResults {
		if r.Error != nil && r.Type == trustpolicy.TypeAuthenticity {
			return Skipped, nil
		}
	}
	return Verified, nil
}

// oneLine joins the lines of notation-go's joined errors.
func oneLine(err error) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(err.Error(), "\n", "; ")), " ")
}

// repository reads signatures for notation-go with go-containerregistry,
// over the options the reconciler reaches the registry with. It keeps the
// first registry failure, which notation-go flattens into text, so that
// the caller can word it.
type repository struct {
	repo name.Repository
	opts []remote.Option
	err  error
}

var _ registry.Repository = (*repository)(nil)

func (r *repository) fail(err error) error {
	if r.err == nil {
		r.err = err
	}
	return err
}

// Resolve implements registry.Repository: the descriptor of a digest or
// tag, from a HEAD request.
func (r *repository) Resolve(_ context.Context, reference string) (ocispec.Descriptor, error) {
	var ref name.Reference = r.repo.Tag(reference)
	if strings.Contains(reference, ":") {
		ref = r.repo.Digest(reference)
	}
	desc, err := remote.Head(ref, r.opts...)
	if err != nil {
		return ocispec.Descriptor{}, r.fail(err)
	}
	return ociDescriptor(*desc), nil
}

// ListSignatures implements registry.Repository: the referrers of desc of
// the notation artifact type, from the referrers API or the referrers tag.
func (r *repository) ListSignatures(_ context.Context, desc ocispec.Descriptor, fn func([]ocispec.Descriptor) error) error {
	opts := append(r.opts[:len(r.opts):len(r.opts)], remote.WithFilter("artifactType", ArtifactType))
	idx, err := remote.Referrers(r.repo.Digest(desc.Digest.String()), opts...)
	if err != nil {
		return r.fail(err)
	}
	m, err := idx.IndexManifest()
	if err != nil {
		return r.fail(err)
	}
	sigs := make([]ocispec.Descriptor, 0, len(m.Manifests))
	for _, d := range m.Manifests {
		sigs = append(sigs, ociDescriptor(d))
	}
	return fn(sigs)
}

// FetchSignatureBlob implements registry.Repository: the envelope of a
// signature manifest, its only layer, bounded.
func (r *repository) FetchSignatureBlob(_ context.Context, desc ocispec.Descriptor) ([]byte, ocispec.Descriptor, error) {
	if desc.MediaType != ocispec.MediaTypeImageManifest {
		return nil, ocispec.Descriptor{}, fmt.Errorf("a signature manifest must be of type %q, not %q", ocispec.MediaTypeImageManifest, desc.MediaType)
	}
	if desc.Size > maxManifestSize {
		return nil, ocispec.Descriptor{}, fmt.Errorf("signature manifest too large: %d bytes", desc.Size)
	}
	got, err := remote.Get(r.repo.Digest(desc.Digest.String()), r.opts...)
	if err != nil {
		return nil, ocispec.Descriptor{}, r.fail(err)
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(got.Manifest, &m); err != nil {
		return nil, ocispec.Descriptor{}, fmt.Errorf("reading signature manifest %s: %w", desc.Digest, err)
	}
	if len(m.Layers) != 1 {
		return nil, ocispec.Descriptor{}, fmt.Errorf("signature manifest requires exactly one signature envelope blob, got %d", len(m.Layers))
	}
	env := m.Layers[0]
	if env.Size > maxEnvelopeSize {
		return nil, ocispec.Descriptor{}, fmt.Errorf("signature blob too large: %d bytes", env.Size)
	}
	h, err := v1.NewHash(env.Digest.String())
	if err != nil {
		return nil, ocispec.Descriptor{}, fmt.Errorf("signature manifest %s: %w", desc.Digest, err)
	}
	l, err := remote.Layer(r.repo.Digest(h.String()), r.opts...)
	if err != nil {
		return nil, ocispec.Descriptor{}, r.fail(err)
	}
	rc, err := l.Compressed()
	if err != nil {
		return nil, ocispec.Descriptor{}, r.fail(err)
	}
	defer rc.Close()
	// Read to the end, so that go-containerregistry checks the digest.
	b, err := io.ReadAll(io.LimitReader(rc, env.Size+1))
	if err != nil {
		return nil, ocispec.Descriptor{}, r.fail(err)
	}
	if int64(len(b)) != env.Size {
		return nil, ocispec.Descriptor{}, fmt.Errorf("signature blob %s is %d bytes, its manifest says %d", env.Digest, len(b), env.Size)
	}
	return b, env, nil
}

// PushSignature implements registry.Repository; weir verifies, it does not
// sign.
func (r *repository) PushSignature(context.Context, string, []byte, ocispec.Descriptor, map[string]string) (ocispec.Descriptor, ocispec.Descriptor, error) {
	return ocispec.Descriptor{}, ocispec.Descriptor{}, errors.New("weir does not push signatures")
}

// ociDescriptor converts a go-containerregistry descriptor.
func ociDescriptor(d v1.Descriptor) ocispec.Descriptor {
	return ocispec.Descriptor{
		MediaType:    string(d.MediaType),
		Digest:       digest.Digest(d.Digest.String()),
		Size:         d.Size,
		Annotations:  d.Annotations,
		ArtifactType: d.ArtifactType,
	}
}
