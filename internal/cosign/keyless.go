package cosign

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"

	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	protorekor "github.com/sigstore/protobuf-specs/gen/pb-go/rekor/v1"
	"github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/fulcio/certificate"
	"github.com/sigstore/sigstore-go/pkg/tlog"
	"github.com/sigstore/sigstore-go/pkg/verify"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
)

// The annotations of a keyless signature layer, besides the signature:
// the Fulcio certificate that signed it, the rest of its chain, and the
// Rekor entry of the signature with its signed entry timestamp (SET).
const (
	CertificateAnnotation = "dev.sigstore.cosign/certificate"
	ChainAnnotation       = "dev.sigstore.cosign/chain"
	BundleAnnotation      = "dev.sigstore.cosign/bundle"
)

// Identity is one entry of spec.verify.matchOIDCIdentity: regular
// expressions (Go syntax) that the OIDC issuer and the subject (the
// certificate's SAN) of a keyless signature must match. As in cosign they
// are not anchored: `^...$` matches a whole value.
type Identity struct {
	Issuer  string
	Subject string
}

func (i Identity) String() string {
	return fmt.Sprintf("issuer '%s' and subject '%s'", i.Issuer, i.Subject)
}

// Identities reads spec.verify.matchOIDCIdentity.
func Identities(m []sourcev1.OIDCIdentityMatch) []Identity {
	ids := make([]Identity, len(m))
	for i, id := range m {
		ids[i] = Identity{Issuer: id.Issuer, Subject: id.Subject}
	}
	return ids
}

// Signer is the identity of the certificate of a keyless signature.
type Signer struct {
	// Issuer is the OIDC issuer that vouched for the subject.
	Issuer string
	// Subject is the certificate's SAN: an email, a URI such as a CI
	// workflow.
	Subject string
}

// KeylessUnverifiedError says that no keyless signature of an artifact
// verifies against the trusted root with an expected identity: the message
// says what was found instead and names the identities expected.
type KeylessUnverifiedError struct {
	// Ref is the artifact's manifest, repository@sha256:<hex>.
	Ref string
	// Why is what was found instead of a good signature.
	Why        string
	Identities []Identity
}

func (e *KeylessUnverifiedError) Error() string {
	return fmt.Sprintf("no matching signatures were found for '%s': %s; %s", e.Ref, e.Why, describeIdentities(e.Identities))
}

func describeIdentities(ids []Identity) string {
	if len(ids) == 0 {
		return "expected identities: any (spec.verify.matchOIDCIdentity is empty)"
	}
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = id.String()
	}
	return "expected identities: " + strings.Join(s, ", or ")
}

// rekorBundle is the dev.sigstore.cosign/bundle annotation: the Rekor entry
// of a signature, as Rekor returned it to `cosign sign`.
type rekorBundle struct {
	SignedEntryTimestamp []byte `json:"SignedEntryTimestamp"`
	Payload              struct {
		Body           string `json:"body"`
		IntegratedTime int64  `json:"integratedTime"`
		LogIndex       int64  `json:"logIndex"`
		LogID          string `json:"logID"`
	} `json:"Payload"`
}

// VerifyKeyless checks that the manifest d carries a keyless cosign
// signature, as `cosign verify --certificate-identity-regexp
// --certificate-oidc-issuer-regexp` does and source-controller does without
// spec.verify.secretRef: a certificate that chains to a certificate
// authority of tr at the time Rekor logged the signature, with an embedded
// SCT from a certificate transparency log of tr; a signature by that
// certificate of a simple-signing payload naming d; the Rekor entry of
// that signature with its SET, signed by a transparency log of tr; and a
// certificate identity matching one of ids (any identity when ids is
// empty). Everything is checked offline, from the signature tag: Rekor is
// not queried. It returns the identity of the first signature that
// verifies. An *KeylessUnverifiedError says that there is none; other
// errors are failures to read the signatures.
func VerifyKeyless(ctx context.Context, d name.Digest, tr *TrustedRoot, ids []Identity, opts ...remote.Option) (Signer, error) {
	if tr == nil {
		return Signer{}, errors.New("no trusted root to verify with")
	}
	policy, err := identityPolicy(ids)
	if err != nil {
		return Signer{}, err
	}
	verifier, err := verify.NewVerifier(tr.material,
		verify.WithTransparencyLog(1), verify.WithIntegratedTimestamps(1), verify.WithSignedCertificateTimestamps(1))
	if err != nil {
		return Signer{}, fmt.Errorf("%s cannot verify signatures: %w", tr.Source, err)
	}
	unverified := func(format string, args ...any) error {
		return &KeylessUnverifiedError{Ref: d.String(), Why: fmt.Sprintf(format, args...), Identities: ids}
	}
	tag, img, m, err := signatures(ctx, d, opts)
	if errors.Is(err, errNotSigned) {
		return Signer{}, unverified("the artifact is not signed (no signature tag '%s')", tag.TagStr())
	}
	if err != nil {
		return Signer{}, err
	}
	var found []string
	for _, desc := range m.Layers {
		sig, ok := desc.Annotations[SignatureAnnotation]
		if !ok {
			continue
		}
		p, err := readPayload(img, desc)
		if err != nil {
			return Signer{}, fmt.Errorf("reading a signature of '%s': %w", d, err)
		}
		s, err := verifyKeylessOne(verifier, tr, policy, desc.Annotations, sig, p, d)
		if err == nil {
			return s, nil
		}
		if !slices.Contains(found, err.Error()) {
			found = append(found, err.Error())
		}
	}
	if len(found) == 0 {
		return Signer{}, unverified("tag '%s' holds no cosign signature", tag.TagStr())
	}
	return Signer{}, unverified("tag '%s' holds %s", tag.TagStr(), strings.Join(found, ", "))
}

// identityPolicy turns matchOIDCIdentity into sigstore-go's policy options.
func identityPolicy(ids []Identity) ([]verify.PolicyOption, error) {
	if len(ids) == 0 {
		// cosign checks no identity when none is given.
		return []verify.PolicyOption{verify.WithoutIdentitiesUnsafe()}, nil
	}
	var opts []verify.PolicyOption
	for i, id := range ids {
		if _, err := regexp.Compile(id.Issuer); err != nil {
			return nil, fmt.Errorf("matchOIDCIdentity[%d].issuer '%s' is not a valid regular expression: %w", i, id.Issuer, err)
		}
		if _, err := regexp.Compile(id.Subject); err != nil {
			return nil, fmt.Errorf("matchOIDCIdentity[%d].subject '%s' is not a valid regular expression: %w", i, id.Subject, err)
		}
		ci, err := verify.NewShortCertificateIdentity("", id.Issuer, "", id.Subject)
		if err != nil {
			return nil, fmt.Errorf("matchOIDCIdentity[%d]: %w", i, err)
		}
		opts = append(opts, verify.WithCertificateIdentity(ci))
	}
	return opts, nil
}

// verifyKeylessOne verifies one signature layer: its signature sig of
// payload p, its certificate and Rekor bundle in annotations. Its error
// says what the signature is, for the message.
func verifyKeylessOne(v *verify.Verifier, tr *TrustedRoot, policy []verify.PolicyOption, annotations map[string]string, sig string, p []byte, d name.Digest) (Signer, error) {
	certPEM, ok := annotations[CertificateAnnotation]
	if !ok {
		return Signer{}, errors.New("a signature made with a key, not a certificate")
	}
	certs, err := cryptoutils.UnmarshalCertificatesFromPEM([]byte(certPEM))
	if err != nil || len(certs) == 0 {
		return Signer{}, errors.New("a signature whose certificate cannot be read")
	}
	leaf := certs[0]
	who := "a signature by an unknown identity"
	var signer Signer
	if sum, err := certificate.SummarizeCertificate(leaf); err == nil {
		signer = Signer{Issuer: sum.Issuer, Subject: sum.SubjectAlternativeName}
		who = fmt.Sprintf("a signature by subject '%s' with issuer '%s'", signer.Subject, signer.Issuer)
	}
	raw, err := base64.StdEncoding.DecodeString(sig)
	if err != nil {
		return Signer{}, fmt.Errorf("%s whose signature is not base64", who)
	}
	entity, err := newLegacyEntity(leaf, raw, p, annotations[BundleAnnotation])
	if err != nil {
		return Signer{}, fmt.Errorf("%s %w", who, err)
	}
	_, err = v.Verify(entity, verify.NewPolicy(verify.WithArtifact(bytes.NewReader(p)), policy...))
	var noMatch *verify.ErrNoMatchingCertificateIdentity
	switch {
	case errors.As(err, &noMatch):
		return Signer{}, fmt.Errorf("%s, which matches none of the expected identities", who)
	case err != nil && strings.Contains(err.Error(), "failed to verify leaf certificate"):
		// sigstore-go does not say why the chain does not verify.
		return Signer{}, fmt.Errorf("%s whose certificate was not issued by a certificate authority of %s, or not valid when the signature was logged: %w", who, tr.Source, err)
	case err != nil:
		return Signer{}, fmt.Errorf("%s that does not verify: %w", who, err)
	}
	// The certificate signed this payload: it must be about d.
	if err := checkClaim(p, d); err != nil {
		return Signer{}, fmt.Errorf("%s %w", who, err)
	}
	return signer, nil
}

// legacyEntity is a signature `cosign sign` pushed to the signature tag,
// seen as sigstore-go's signed entity: a message signature of the payload
// by the certificate, with one Rekor entry that carries an inclusion
// promise (its SET), as a v0.1 Sigstore bundle would hold it.
type legacyEntity struct {
	verify.BaseSignedEntity
	cert  *x509.Certificate
	sig   *bundle.MessageSignature
	entry *tlog.Entry
}

// newLegacyEntity reads the Rekor bundle annotation of a signature; its
// error completes "a signature by ...".
func newLegacyEntity(cert *x509.Certificate, sig, p []byte, bundleJSON string) (*legacyEntity, error) {
	if bundleJSON == "" {
		return nil, errors.New("without a transparency log entry (the dev.sigstore.cosign/bundle annotation; weir does not query Rekor)")
	}
	var b rekorBundle
	if err := json.Unmarshal([]byte(bundleJSON), &b); err != nil {
		return nil, fmt.Errorf("whose transparency log entry cannot be read: %w", err)
	}
	body, err := base64.StdEncoding.DecodeString(b.Payload.Body)
	if err != nil {
		return nil, fmt.Errorf("whose transparency log entry cannot be read: the body is not base64: %w", err)
	}
	logID, err := hex.DecodeString(b.Payload.LogID)
	if err != nil {
		return nil, fmt.Errorf("whose transparency log entry cannot be read: the log ID is not hex: %w", err)
	}
	var kind struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
	}
	if err := json.Unmarshal(body, &kind); err != nil {
		return nil, fmt.Errorf("whose transparency log entry cannot be read: %w", err)
	}
	entry, err := tlog.ParseTransparencyLogEntry(&protorekor.TransparencyLogEntry{
		LogIndex:          b.Payload.LogIndex,
		LogId:             &protocommon.LogId{KeyId: logID},
		KindVersion:       &protorekor.KindVersion{Kind: kind.Kind, Version: kind.APIVersion},
		IntegratedTime:    b.Payload.IntegratedTime,
		InclusionPromise:  &protorekor.InclusionPromise{SignedEntryTimestamp: b.SignedEntryTimestamp},
		CanonicalizedBody: body,
	})
	if err != nil {
		return nil, fmt.Errorf("whose transparency log entry cannot be read: %w", err)
	}
	sum := sha256.Sum256(p)
	return &legacyEntity{
		cert:  cert,
		sig:   bundle.NewMessageSignature(sum[:], "SHA2_256", sig),
		entry: entry,
	}, nil
}

func (e *legacyEntity) HasInclusionPromise() bool { return true }

func (e *legacyEntity) VerificationContent() (verify.VerificationContent, error) {
	return bundle.NewCertificate(e.cert), nil
}

func (e *legacyEntity) SignatureContent() (verify.SignatureContent, error) { return e.sig, nil }

func (e *legacyEntity) Timestamps() ([][]byte, error) { return nil, nil }

func (e *legacyEntity) TlogEntries() ([]*tlog.Entry, error) { return []*tlog.Entry{e.entry}, nil }

func (e *legacyEntity) Version() (string, error) { return "v0.1", nil }
