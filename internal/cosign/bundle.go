package cosign

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	"github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/fulcio/certificate"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/verify"
)

// The sigstore bundles `cosign sign` attaches by default since cosign v3
// (--new-bundle-format): OCI 1.1 referrers of the signed manifest, each an
// image manifest whose only layer is a bundle.
const (
	// BundleArtifactType is the artifactType of the referrer and the
	// media type of its layer.
	BundleArtifactType = "application/vnd.dev.sigstore.bundle.v0.3+json"
	// bundleMediaTypePrefix starts the media type of every bundle version.
	bundleMediaTypePrefix = "application/vnd.dev.sigstore.bundle"
	// emptyConfigMediaType is the config of cosign's referrer manifest,
	// which some registries list as the referrer's artifactType.
	emptyConfigMediaType = "application/vnd.oci.empty.v1+json"
	// maxManifestSize bounds a referrer manifest: cosign's is under 1 KiB.
	maxManifestSize = 1 << 20
)

// attachedBundle is a sigstore bundle among the referrers of a manifest.
type attachedBundle struct {
	// Bundle is nil when the bundle cannot be read.
	Bundle *bundle.Bundle
	// Err says why the bundle cannot be read.
	Err error
}

// bundles reads the sigstore bundles attached to the manifest d, as
// `cosign verify` finds them: its referrers, from the registry's referrers
// API or, without one, from the sha256-<hex> referrers tag. A referrer that
// is not a sigstore bundle (another artifact type, or not one bundle
// layer) is passed over; one that is but cannot be read is returned with
// its error, for the message.
func bundles(ctx context.Context, d name.Digest, opts []remote.Option) ([]attachedBundle, error) {
	opts = append(opts[:len(opts):len(opts)], remote.WithContext(ctx))
	idx, err := remote.Referrers(d, opts...)
	if err != nil {
		var terr *transport.Error
		if errors.As(err, &terr) && terr.StatusCode == http.StatusNotFound {
			return nil, nil
		}
		return nil, fmt.Errorf("listing the referrers of '%s' for sigstore bundles: %w", d, err)
	}
	m, err := idx.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("listing the referrers of '%s' for sigstore bundles: %w", d, err)
	}
	var candidates []v1.Descriptor
	for _, desc := range m.Manifests {
		if maybeBundle(desc.ArtifactType) {
			candidates = append(candidates, desc)
		}
	}
	if len(candidates) > maxSignatures {
		return nil, fmt.Errorf("the referrers of '%s' hold %d sigstore bundles, more than the %d weir reads", d, len(candidates), maxSignatures)
	}
	var found []attachedBundle
	for _, desc := range candidates {
		b, isBundle, err := readBundle(d.Context().Digest(desc.Digest.String()), desc, opts)
		var terr *transport.Error
		switch {
		case errors.As(err, &terr) && terr.StatusCode == http.StatusNotFound:
			// Listed in the referrers tag, but deleted since.
			continue
		case errors.As(err, &terr):
			// The registry failed, not the bundle.
			return nil, fmt.Errorf("reading the sigstore bundle %s of '%s': %w", desc.Digest, d, err)
		case !isBundle:
			continue
		}
		found = append(found, attachedBundle{Bundle: b, Err: err})
	}
	return found, nil
}

// maybeBundle says whether a referrer of artifactType may be a sigstore
// bundle: registries list the artifactType of cosign's manifest, or the
// media type of its (empty) config, or nothing.
func maybeBundle(artifactType string) bool {
	return artifactType == "" || artifactType == emptyConfigMediaType || strings.HasPrefix(artifactType, bundleMediaTypePrefix)
}

// readBundle reads the referrer ref: isBundle is false when it is not a
// sigstore bundle, as `cosign verify` reads one: one layer of a bundle
// media type.
func readBundle(ref name.Digest, desc v1.Descriptor, opts []remote.Option) (b *bundle.Bundle, isBundle bool, err error) {
	if desc.Size > maxManifestSize {
		return nil, false, nil
	}
	img, err := remote.Image(ref, opts...)
	if err != nil {
		return nil, false, err
	}
	m, err := img.Manifest()
	if err != nil {
		return nil, false, err
	}
	if len(m.Layers) != 1 || !strings.HasPrefix(string(m.Layers[0].MediaType), bundleMediaTypePrefix) {
		return nil, false, nil
	}
	if size := m.Layers[0].Size; size > maxPayloadSize {
		return nil, true, fmt.Errorf("a bundle of %d bytes, over the %d bytes limit", size, maxPayloadSize)
	}
	raw, err := readPayload(img, m.Layers[0])
	if err != nil {
		var terr *transport.Error
		if errors.As(err, &terr) {
			return nil, true, err
		}
		return nil, true, fmt.Errorf("a bundle that cannot be read (%w)", err)
	}
	b = &bundle.Bundle{}
	if err := b.UnmarshalJSON(raw); err != nil {
		return nil, true, fmt.Errorf("a bundle that is not a valid sigstore bundle (%w)", err)
	}
	return b, true, nil
}

// verifyBundleKeyed checks that b is signed with one of keys, as `cosign
// verify --key` checks a bundle: the signature alone, without a
// transparency log entry or a timestamp (source-controller ignores the
// transparency log with a key), and the signed content must be about the
// manifest d. Its error says what the bundle is, for the message.
func verifyBundleKeyed(keys []Key, b *bundle.Bundle, d name.Digest) (Key, error) {
	vc, err := b.VerificationContent()
	if err != nil {
		return Key{}, fmt.Errorf("a bundle without verification material (%w)", err)
	}
	if cert := vc.Certificate(); cert != nil {
		who := "a keyless bundle"
		if sum, err := certificate.SummarizeCertificate(cert); err == nil {
			who = fmt.Sprintf("a keyless bundle by subject '%s' with issuer '%s'", sum.SubjectAlternativeName, sum.Issuer)
		}
		return Key{}, errors.New(who + ", not one made with a key")
	}
	artifact, err := artifactPolicy(b)
	if err != nil {
		return Key{}, fmt.Errorf("a bundle %w", err)
	}
	for _, k := range keys {
		key := root.NewExpiringKey(k.verifier, time.Time{}, time.Time{})
		material := root.NewTrustedPublicKeyMaterial(func(string) (root.TimeConstrainedVerifier, error) { return key, nil })
		v, err := verify.NewVerifier(material, verify.WithNoObserverTimestamps())
		if err != nil {
			return Key{}, err
		}
		if _, err := v.Verify(b, verify.NewPolicy(artifact, verify.WithKey())); err != nil {
			continue
		}
		// The key signed this bundle: it must be about d.
		if err := checkBinding(b, d); err != nil {
			return Key{}, fmt.Errorf("a bundle by %s %w", k.Name, err)
		}
		return k, nil
	}
	return Key{}, errors.New("a bundle by another key")
}

// verifyBundleKeyless checks b as `cosign verify
// --certificate-identity-regexp --certificate-oidc-issuer-regexp` checks a
// bundle, and as VerifyKeyless checks a signature: a certificate of tr's
// authorities with an SCT of its CT logs, a transparency log entry of
// tr's Rekor (with its integrated time, or with an RFC 3161 timestamp of
// tr's timestamp authorities when the entries are Rekor v2's and carry no
// time), an identity matching policy, and signed content about the
// manifest d. Its error says what the bundle is, for the message.
func verifyBundleKeyless(tr *TrustedRoot, policy []verify.PolicyOption, b *bundle.Bundle, d name.Digest) (Signer, error) {
	vc, err := b.VerificationContent()
	if err != nil {
		return Signer{}, fmt.Errorf("a bundle without verification material (%w)", err)
	}
	cert := vc.Certificate()
	if cert == nil {
		return Signer{}, errors.New("a bundle made with a key, not a certificate")
	}
	who := "a bundle by an unknown identity"
	var signer Signer
	if sum, err := certificate.SummarizeCertificate(cert); err == nil {
		signer = Signer{Issuer: sum.Issuer, Subject: sum.SubjectAlternativeName}
		who = fmt.Sprintf("a bundle by subject '%s' with issuer '%s'", signer.Subject, signer.Issuer)
	}
	opts := []verify.VerifierOption{verify.WithTransparencyLog(1), verify.WithSignedCertificateTimestamps(1)}
	if rekorV2Only(b) {
		// Rekor v2 gives no time: cosign then asks for a signed one.
		opts = append(opts, verify.WithSignedTimestamps(1))
	} else {
		opts = append(opts, verify.WithIntegratedTimestamps(1))
	}
	v, err := verify.NewVerifier(tr.material, opts...)
	if err != nil {
		return Signer{}, fmt.Errorf("%s cannot verify signatures: %w", tr.Source, err)
	}
	artifact, err := artifactPolicy(b)
	if err != nil {
		return Signer{}, fmt.Errorf("%s %w", who, err)
	}
	if _, err := v.Verify(b, verify.NewPolicy(artifact, policy...)); err != nil {
		return Signer{}, keylessFailure(who, tr, err)
	}
	// The certificate signed this bundle: it must be about d.
	if err := checkBinding(b, d); err != nil {
		return Signer{}, fmt.Errorf("%s %w", who, err)
	}
	return signer, nil
}

// rekorV2Only says whether every transparency log entry of b is Rekor v2's,
// which has no integrated time.
func rekorV2Only(b *bundle.Bundle) bool {
	entries, err := b.TlogEntries()
	if err != nil || len(entries) == 0 {
		return false
	}
	for _, e := range entries {
		if !e.IntegratedTime().IsZero() {
			return false
		}
	}
	return true
}

// artifactPolicy is what b's signature is checked over. A DSSE envelope's
// signature covers its statement, checked here without the artifact, then
// bound to the manifest by checkBinding; a message signature covers the
// digest it names, which checkBinding compares to the manifest's. Its
// error completes "a bundle ...".
func artifactPolicy(b *bundle.Bundle) (verify.ArtifactPolicyOption, error) {
	sc, err := b.SignatureContent()
	if err != nil {
		return nil, fmt.Errorf("without a signature (%w)", err)
	}
	if sc.EnvelopeContent() != nil {
		return verify.WithoutArtifactUnsafe(), nil
	}
	msg := sc.MessageSignatureContent()
	if msg.DigestAlgorithm() != protocommon.HashAlgorithm_SHA2_256.String() {
		return nil, fmt.Errorf("signing a %s digest, not a manifest's sha256", msg.DigestAlgorithm())
	}
	return verify.WithArtifactDigest("sha256", msg.Digest()), nil
}

// checkBinding checks that the verified content of b is about the manifest
// d, as cosign's claim verifier does for a bundle: an in-toto statement
// with d among its subjects, or a message signature of d. Its error
// completes "a bundle by ...".
func checkBinding(b *bundle.Bundle, d name.Digest) error {
	h, err := v1.NewHash(d.DigestStr())
	if err != nil {
		return fmt.Errorf("for '%s', which is not a digest", d.DigestStr())
	}
	sc, err := b.SignatureContent()
	if err != nil {
		return err
	}
	if env := sc.EnvelopeContent(); env != nil {
		st, err := env.Statement()
		if err != nil {
			return fmt.Errorf("whose envelope holds no in-toto statement: %w", err)
		}
		var names []string
		for _, s := range st.GetSubject() {
			for alg, hexDigest := range s.GetDigest() {
				if alg == h.Algorithm && strings.EqualFold(hexDigest, h.Hex) {
					return nil
				}
				names = append(names, alg+":"+hexDigest)
			}
		}
		if len(names) == 0 {
			return errors.New("whose statement names no digest")
		}
		return fmt.Errorf("for digest '%s', not this one", strings.Join(names, "', '"))
	}
	got := "sha256:" + hex.EncodeToString(sc.MessageSignatureContent().Digest())
	if got != h.String() {
		return fmt.Errorf("for digest '%s', not this one", got)
	}
	return nil
}
