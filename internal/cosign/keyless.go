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
// not queried. Without such a signature, the sigstore bundles among d's
// referrers are checked the same way (see verifyBundleKeyless). It returns
// the identity of the first signature that verifies. An
// *KeylessUnverifiedError says that there is none; other errors are
// failures to read the signatures.
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
	var sigs, inBundles []string
	tag, img, m, err := signatures(ctx, d, opts)
	hasTag := !errors.Is(err, errNotSigned)
	if hasTag && err != nil {
		return Signer{}, err
	}
	for _, desc := range sigLayers(m) {
		p, err := readPayload(img, desc)
		if err != nil {
			return Signer{}, fmt.Errorf("reading a signature of '%s': %w", d, err)
		}
		s, err := verifyKeylessOne(verifier, tr, policy, desc.Annotations, desc.Annotations[SignatureAnnotation], p, d)
		if err == nil {
			return s, nil
		}
		sigs = appendNew(sigs, err.Error())
	}
	attached, err := bundles(ctx, d, opts)
	if err != nil {
		return Signer{}, err
	}
	for _, a := range attached {
		if a.Err != nil {
			inBundles = appendNew(inBundles, a.Err.Error())
			continue
		}
		s, err := verifyBundleKeyless(tr, policy, a.Bundle, d)
		if err == nil {
			return s, nil
		}
		inBundles = appendNew(inBundles, err.Error())
	}
	return Signer{}, &KeylessUnverifiedError{Ref: d.String(), Why: unverifiedWhy(tag, hasTag, sigs, inBundles), Identities: ids}
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
	if _, err = v.Verify(entity, verify.NewPolicy(verify.WithArtifact(bytes.NewReader(p)), policy...)); err != nil {
		return Signer{}, keylessFailure(who, tr, err)
	}
	// The certificate signed this payload: it must be about d.
	if err := checkClaim(p, d); err != nil {
		return Signer{}, fmt.Errorf("%s %w", who, err)
	}
	return signer, nil
}

// keylessFailure words the error of sigstore-go's verifier for a
// signature or bundle described by who ("a signature by subject ...").
func keylessFailure(who string, tr *TrustedRoot, err error) error {
	var noMatch *verify.ErrNoMatchingCertificateIdentity
	switch {
	case errors.As(err, &noMatch):
		return fmt.Errorf("%s, which matches none of the expected identities", who)
	case strings.Contains(err.Error(), "failed to verify leaf certificate"):
		// sigstore-go does not say why the chain does not verify.
		return fmt.Errorf("%s whose certificate was not issued by a certificate authority of %s, or not valid when it was logged: %w", who, tr.Source, err)
	default:
		return fmt.Errorf("%s that does not verify: %w", who, err)
	}
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
