package cosign

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/sigstore/sigstore/pkg/signature/payload"
)

// The format of the signatures `cosign sign` pushes.
const (
	// SimpleSigningMediaType is the media type of a signature layer.
	SimpleSigningMediaType = "application/vnd.dev.cosign.simplesigning.v1+json"
	// SignatureAnnotation holds the base64 signature of a layer's payload.
	SignatureAnnotation = "dev.cosignproject.cosign/signature"
	// SignatureTagSuffix ends the tag of an artifact's signatures.
	SignatureTagSuffix = ".sig"
)

// Bounds on what is read from the registry: a payload is a few hundred
// bytes, and an artifact signed more than maxSignatures times is not one
// weir will go through.
const (
	maxPayloadSize = 1 << 20
	maxSignatures  = 100
)

// SignatureTag is the tag that holds the signatures of the manifest d,
// sha256-<hex>.sig in d's repository.
func SignatureTag(d name.Digest) (name.Tag, error) {
	h, err := v1.NewHash(d.DigestStr())
	if err != nil {
		return name.Tag{}, fmt.Errorf("'%s' is not a valid digest: %w", d.DigestStr(), err)
	}
	return d.Context().Tag(h.Algorithm + "-" + h.Hex + SignatureTagSuffix), nil
}

// UnverifiedError says that no signature of a trusted key was found for an
// artifact: the message says what was found instead and names the keys.
type UnverifiedError struct {
	// Ref is the artifact's manifest, repository@sha256:<hex>.
	Ref string
	// Why is what was found instead of a good signature.
	Why  string
	Keys []Key
}

func (e *UnverifiedError) Error() string {
	return fmt.Sprintf("no matching signatures were found for '%s': %s; trusted keys: %s", e.Ref, e.Why, describeKeys(e.Keys))
}

// Verify checks that the manifest d carries a cosign signature made with
// one of keys, and returns the first key that verifies: a signature of
// its signature tag, or else a sigstore bundle among its referrers (see
// verifyBundleKeyed). opts reach d's registry (transport, credentials,
// context). An *UnverifiedError says that there is no such signature;
// other errors are failures to read them.
func Verify(ctx context.Context, d name.Digest, keys []Key, opts ...remote.Option) (Key, error) {
	if len(keys) == 0 {
		return Key{}, errors.New("no trusted public keys to verify with")
	}
	var sigs, inBundles []string
	tag, img, m, err := signatures(ctx, d, opts)
	hasTag := !errors.Is(err, errNotSigned)
	if hasTag && err != nil {
		return Key{}, err
	}
	for _, desc := range sigLayers(m) {
		p, err := readPayload(img, desc)
		if err != nil {
			return Key{}, fmt.Errorf("reading a signature of '%s': %w", d, err)
		}
		raw, err := base64.StdEncoding.DecodeString(desc.Annotations[SignatureAnnotation])
		if err != nil {
			raw = nil // verifies with no key
		}
		k, err := verifyOne(keys, raw, p, d)
		if err == nil {
			return k, nil
		}
		sigs = appendNew(sigs, err.Error())
	}
	attached, err := bundles(ctx, d, opts)
	if err != nil {
		return Key{}, err
	}
	for _, a := range attached {
		if a.Err != nil {
			inBundles = appendNew(inBundles, a.Err.Error())
			continue
		}
		k, err := verifyBundleKeyed(keys, a.Bundle, d)
		if err == nil {
			return k, nil
		}
		inBundles = appendNew(inBundles, err.Error())
	}
	return Key{}, &UnverifiedError{Ref: d.String(), Why: unverifiedWhy(tag, hasTag, sigs, inBundles), Keys: keys}
}

// sigLayers are the layers of the signature tag's manifest m (nil when
// there is no tag) that hold a signature.
func sigLayers(m *v1.Manifest) []v1.Descriptor {
	if m == nil {
		return nil
	}
	var layers []v1.Descriptor
	for _, desc := range m.Layers {
		if _, ok := desc.Annotations[SignatureAnnotation]; ok {
			layers = append(layers, desc)
		}
	}
	return layers
}

// appendNew appends s to list unless it is there already.
func appendNew(list []string, s string) []string {
	if slices.Contains(list, s) {
		return list
	}
	return append(list, s)
}

// unverifiedWhy says what an artifact carries instead of a good
// signature: the signatures of its signature tag, if it has one, and its
// sigstore bundles, each as "a signature by ..." or "a bundle by ...".
func unverifiedWhy(tag name.Tag, hasTag bool, sigs, bundles []string) string {
	if !hasTag && len(bundles) == 0 {
		return fmt.Sprintf("the artifact is not signed (no signature tag '%s' and no sigstore bundle among its referrers)", tag.TagStr())
	}
	var parts []string
	switch {
	case hasTag && len(sigs) == 0:
		parts = append(parts, fmt.Sprintf("tag '%s' holds no cosign signature", tag.TagStr()))
	case hasTag:
		parts = append(parts, fmt.Sprintf("tag '%s' holds %s", tag.TagStr(), strings.Join(sigs, ", ")))
	}
	if len(bundles) > 0 {
		parts = append(parts, "its referrers hold "+strings.Join(bundles, ", "))
	}
	return strings.Join(parts, ", and ")
}

// errNotSigned says that an artifact has no signature tag.
var errNotSigned = errors.New("no signature tag")

// signatures reads the manifest at the signature tag of d: errNotSigned
// when there is none.
func signatures(ctx context.Context, d name.Digest, opts []remote.Option) (name.Tag, v1.Image, *v1.Manifest, error) {
	tag, err := SignatureTag(d)
	if err != nil {
		return tag, nil, nil, err
	}
	opts = append(opts, remote.WithContext(ctx))
	img, err := remote.Image(tag, opts...)
	if err != nil {
		var terr *transport.Error
		if errors.As(err, &terr) && terr.StatusCode == http.StatusNotFound {
			return tag, nil, nil, errNotSigned
		}
		return tag, nil, nil, fmt.Errorf("fetching the signatures of '%s' from tag '%s': %w", d, tag.TagStr(), err)
	}
	m, err := img.Manifest()
	if err != nil {
		return tag, nil, nil, fmt.Errorf("reading the signatures of '%s' from tag '%s': %w", d, tag.TagStr(), err)
	}
	if len(m.Layers) > maxSignatures {
		return tag, nil, nil, fmt.Errorf("tag '%s' holds %d signatures, more than the %d weir reads", tag.TagStr(), len(m.Layers), maxSignatures)
	}
	return tag, img, m, nil
}

// verifyOne returns the key that made signature sig of payload p, if the
// payload names the manifest d; else an error that says what the
// signature is, for the message.
func verifyOne(keys []Key, sig, p []byte, d name.Digest) (Key, error) {
	for _, k := range keys {
		if k.verifier.VerifySignature(bytes.NewReader(sig), bytes.NewReader(p)) != nil {
			continue
		}
		// The key signed this payload: it must be about d.
		if err := checkClaim(p, d); err != nil {
			return Key{}, fmt.Errorf("a signature by %s %w", k.Name, err)
		}
		return k, nil
	}
	return Key{}, errors.New("a signature by another key")
}

// readPayload reads a signature layer's payload, bounded.
func readPayload(img v1.Image, desc v1.Descriptor) ([]byte, error) {
	if desc.Size > maxPayloadSize {
		return nil, fmt.Errorf("a signature payload of %d bytes is over the %d bytes limit", desc.Size, maxPayloadSize)
	}
	l, err := img.LayerByDigest(desc.Digest)
	if err != nil {
		return nil, err
	}
	rc, err := l.Compressed()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	// Read to the end, so that go-containerregistry checks the digest.
	b, err := io.ReadAll(io.LimitReader(rc, maxPayloadSize+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxPayloadSize {
		return nil, fmt.Errorf("a signature payload is over the %d bytes limit", maxPayloadSize)
	}
	return b, nil
}

// checkClaim checks that a signed simple-signing payload names the
// manifest d, as cosign's claim verifier does: a good signature of
// another artifact's manifest does not vouch for this one.
func checkClaim(p []byte, d name.Digest) error {
	var claim payload.SimpleContainerImage
	if err := json.Unmarshal(p, &claim); err != nil {
		return fmt.Errorf("over a payload that is not a cosign simple-signing payload: %w", err)
	}
	if got := claim.Critical.Image.DockerManifestDigest; got != d.DigestStr() {
		return fmt.Errorf("for digest '%s', not this one", got)
	}
	return nil
}
