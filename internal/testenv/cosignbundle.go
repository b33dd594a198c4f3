package testenv

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
	protobundle "github.com/sigstore/protobuf-specs/gen/pb-go/bundle/v1"
	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	protodsse "github.com/sigstore/protobuf-specs/gen/pb-go/dsse"
	protorekor "github.com/sigstore/protobuf-specs/gen/pb-go/rekor/v1"
	"github.com/sigstore/rekor/pkg/util"
	"github.com/sigstore/sigstore/pkg/signature"
	"google.golang.org/protobuf/encoding/protojson"
)

// The sigstore bundle `cosign sign` attaches by default since cosign v3
// (--new-bundle-format): a referrer of the signed manifest whose only
// layer is the bundle.
const (
	// CosignBundleMediaType is the bundle layer's media type and the
	// referrer's artifactType.
	CosignBundleMediaType = "application/vnd.dev.sigstore.bundle.v0.3+json"
	// CosignSignPredicateType is the predicate type of the in-toto
	// statement `cosign sign` signs.
	CosignSignPredicateType = "https://sigstore.dev/cosign/sign/v1"
)

// cosignStatement is the in-toto statement `cosign sign
// --new-bundle-format` signs for the manifest digest ("sha256:<hex>").
func cosignStatement(t testing.TB, digest string) []byte {
	t.Helper()
	alg, hexDigest, ok := strings.Cut(digest, ":")
	if !ok {
		t.Fatalf("'%s' is not a digest", digest)
	}
	b, err := json.Marshal(map[string]any{
		"_type":         "https://in-toto.io/Statement/v1",
		"subject":       []any{map[string]any{"digest": map[string]string{alg: hexDigest}}},
		"predicateType": CosignSignPredicateType,
		"predicate":     map[string]any{},
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// CosignBundle is what `cosign sign --key cosign.key --tlog-upload=false`
// writes for the manifest digest ("sha256:<hex>") since cosign v3: a
// sigstore bundle (JSON) of a DSSE envelope of cosign's in-toto statement
// naming the digest, signed with key, whose verification material is the
// key's hint (the base64 SHA-256 of its DER encoding).
func (k *CosignKey) CosignBundle(t testing.TB, digest string) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(&k.Private.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	hint := sha256.Sum256(der)
	b := dsseBundle(t, k.Private, cosignStatement(t, digest))
	b.VerificationMaterial = &protobundle.VerificationMaterial{Content: &protobundle.VerificationMaterial_PublicKey{
		PublicKey: &protocommon.PublicKeyIdentifier{Hint: base64.StdEncoding.EncodeToString(hint[:])},
	}}
	return marshalBundle(t, b)
}

// MessageBundle is a sigstore bundle of a message signature with key of
// the blob whose SHA-256 is digest ("sha256:<hex>"), as `cosign sign-blob
// --new-bundle-format --key cosign.key --tlog-upload=false` writes for a
// manifest saved to a file: no statement, the signature is over the
// manifest itself.
func (k *CosignKey) MessageBundle(t testing.TB, digest string) []byte {
	t.Helper()
	sum, err := hex.DecodeString(strings.TrimPrefix(digest, "sha256:"))
	if err != nil {
		t.Fatal(err)
	}
	sig, err := ecdsa.SignASN1(rand.Reader, k.Private, sum)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&k.Private.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	hint := sha256.Sum256(der)
	return marshalBundle(t, &protobundle.Bundle{
		MediaType: CosignBundleMediaType,
		VerificationMaterial: &protobundle.VerificationMaterial{Content: &protobundle.VerificationMaterial_PublicKey{
			PublicKey: &protocommon.PublicKeyIdentifier{Hint: base64.StdEncoding.EncodeToString(hint[:])},
		}},
		Content: &protobundle.Bundle_MessageSignature{MessageSignature: &protocommon.MessageSignature{
			MessageDigest: &protocommon.HashOutput{Algorithm: protocommon.HashAlgorithm_SHA2_256, Digest: sum}, Signature: sig,
		}},
	})
}

// CosignBundle is what `cosign sign` writes with an OIDC identity for the
// manifest digest since cosign v3: a sigstore bundle of a DSSE envelope of
// cosign's in-toto statement, signed with an ephemeral key certified by
// s's authority for ks's subject and issuer (with an SCT), and the Rekor
// entry of the envelope (dsse v0.0.1) with its SET and its inclusion
// proof under a checkpoint signed by s's Rekor.
func (s *Sigstore) CosignBundle(t testing.TB, digest string, ks KeylessSignature) []byte {
	t.Helper()
	ephemeral, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	b := dsseBundle(t, ephemeral, cosignStatement(t, digest))
	leaf := s.issue(t, &ephemeral.PublicKey, ks.Subject, ks.Issuer, time.Now())
	b.VerificationMaterial = &protobundle.VerificationMaterial{Content: &protobundle.VerificationMaterial_Certificate{
		Certificate: &protocommon.X509Certificate{RawBytes: leaf.Raw},
	}}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leaf.Raw})
	b.VerificationMaterial.TlogEntries = []*protorekor.TransparencyLogEntry{s.logEnvelope(t, b.GetDsseEnvelope(), certPEM, ks)}
	return marshalBundle(t, b)
}

// dsseBundle is a v0.3 bundle of statement in a DSSE envelope signed with
// key (ECDSA over the SHA-256 of the envelope's pre-authentication
// encoding), without its verification material.
func dsseBundle(t testing.TB, key *ecdsa.PrivateKey, statement []byte) *protobundle.Bundle {
	t.Helper()
	const payloadType = "application/vnd.in-toto+json"
	pae := fmt.Appendf(nil, "DSSEv1 %d %s %d %s", len(payloadType), payloadType, len(statement), statement)
	sum := sha256.Sum256(pae)
	sig, err := ecdsa.SignASN1(rand.Reader, key, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	return &protobundle.Bundle{
		MediaType: CosignBundleMediaType,
		Content: &protobundle.Bundle_DsseEnvelope{DsseEnvelope: &protodsse.Envelope{
			Payload: statement, PayloadType: payloadType, Signatures: []*protodsse.Signature{{Sig: sig}},
		}},
	}
}

func marshalBundle(t testing.TB, b *protobundle.Bundle) []byte {
	t.Helper()
	j, err := protojson.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	return j
}

// AttachBundle pushes bundle as a referrer of the manifest digest of repo,
// as cosign v3 does: an OCI image manifest with artifactType
// CosignBundleMediaType, an empty config, the bundle as its only layer and
// the manifest as its subject. go-containerregistry also adds it to the
// sha256-<hex> referrers tag for a registry without the referrers API.
func (r *Registry) AttachBundle(t testing.TB, repo, digest string, bundle []byte) {
	t.Helper()
	ref, err := name.NewDigest(r.Host+"/"+repo+"@"+digest, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	opts := []remote.Option{remote.WithContext(context.Background()), remote.WithTransport(r.reg.Transport()), remote.WithAuth(r.reg.Auth())}
	subject, err := remote.Head(ref, opts...)
	if err != nil {
		t.Fatal(err)
	}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, "application/vnd.oci.empty.v1+json")
	img, err = mutate.Append(img, mutate.Addendum{Layer: static.NewLayer(bundle, CosignBundleMediaType)})
	if err != nil {
		t.Fatal(err)
	}
	img = mutate.Annotations(img, map[string]string{
		"org.opencontainers.image.created":  time.Now().UTC().Format(time.RFC3339),
		"dev.sigstore.bundle.content":       "dsse-envelope",
		"dev.sigstore.bundle.predicateType": CosignSignPredicateType,
	}).(v1.Image)
	img = mutate.Subject(img, v1.Descriptor{MediaType: subject.MediaType, Digest: subject.Digest, Size: subject.Size}).(v1.Image)
	img = artifactTyped{img, CosignBundleMediaType}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref.Context().Digest(d.String()), img, opts...); err != nil {
		t.Fatal(err)
	}
}

// artifactTyped adds the artifactType of an OCI 1.1 manifest to an image.
type artifactTyped struct {
	v1.Image
	artifactType string
}

func (a artifactTyped) RawManifest() ([]byte, error) {
	m, err := a.Manifest()
	if err != nil {
		return nil, err
	}
	m = m.DeepCopy()
	m.ArtifactType = a.artifactType
	return json.Marshal(m)
}

func (a artifactTyped) Digest() (v1.Hash, error) {
	raw, err := a.RawManifest()
	if err != nil {
		return v1.Hash{}, err
	}
	h, _, err := v1.SHA256(strings.NewReader(string(raw)))
	return h, err
}

func (a artifactTyped) Size() (int64, error) {
	raw, err := a.RawManifest()
	return int64(len(raw)), err
}

// logEnvelope logs a DSSE envelope signed by the certificate certPEM in
// s's Rekor, as a tree of that one entry, and returns the entry as a
// bundle holds it.
func (s *Sigstore) logEnvelope(t testing.TB, env *protodsse.Envelope, certPEM []byte, ks KeylessSignature) *protorekor.TransparencyLogEntry {
	t.Helper()
	envJSON, err := protojson.Marshal(env)
	if err != nil {
		t.Fatal(err)
	}
	envSum, payloadSum := sha256.Sum256(envJSON), sha256.Sum256(env.Payload)
	// The canonical body of Rekor's dsse v0.0.1 entry.
	body := fmt.Appendf(nil, `{"apiVersion":"0.0.1","kind":"dsse","spec":{"envelopeHash":{"algorithm":"sha256","value":"%s"},"payloadHash":{"algorithm":"sha256","value":"%s"},"signatures":[{"signature":"%s","verifier":"%s"}]}}`,
		hex.EncodeToString(envSum[:]), hex.EncodeToString(payloadSum[:]),
		base64.StdEncoding.EncodeToString(env.Signatures[0].Sig), base64.StdEncoding.EncodeToString(certPEM))
	loggedAt := ks.LoggedAt
	if loggedAt.IsZero() {
		loggedAt = time.Now()
	}
	e, set := s.signEntry(t, body, loggedAt.Unix(), ks.TamperSET)
	// The root of a tree of one entry is the entry's leaf hash (RFC 6962).
	root := sha256.Sum256(append([]byte{0}, body...))
	signer, err := signature.LoadECDSASignerVerifier(s.rekor, crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	checkpoint, err := util.CreateAndSignCheckpoint(context.Background(), "rekor.weir.test", 1, 1, root[:], signer)
	if err != nil {
		t.Fatal(err)
	}
	return &protorekor.TransparencyLogEntry{
		LogIndex:          e.LogIndex,
		LogId:             &protocommon.LogId{KeyId: logID(t, s.rekor)},
		KindVersion:       &protorekor.KindVersion{Kind: "dsse", Version: "0.0.1"},
		IntegratedTime:    e.IntegratedTime,
		InclusionPromise:  &protorekor.InclusionPromise{SignedEntryTimestamp: set},
		InclusionProof:    &protorekor.InclusionProof{LogIndex: 0, RootHash: root[:], TreeSize: 1, Checkpoint: &protorekor.Checkpoint{Envelope: string(checkpoint)}},
		CanonicalizedBody: body,
	}
}
