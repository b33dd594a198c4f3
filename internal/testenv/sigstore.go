package testenv

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	ct "github.com/google/certificate-transparency-go"
	cttls "github.com/google/certificate-transparency-go/tls"
	ctx509util "github.com/google/certificate-transparency-go/x509util"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore/pkg/signature/payload"
)

// Sigstore is a private Sigstore instance for keyless signing in tests,
// made of its keys alone: a Fulcio-like certificate authority that issues
// short-lived certificates naming an OIDC identity, a Rekor-like
// transparency log key that signs entry timestamps (SETs), and a
// certificate transparency log key that signs the SCT embedded in each
// certificate. Nothing listens: signatures carry all that a verifier
// needs, as cosign attaches it.
type Sigstore struct {
	ca      *x509.Certificate
	caKey   *ecdsa.PrivateKey
	rekor   *ecdsa.PrivateKey
	ctlog   *ecdsa.PrivateKey
	created time.Time
	index   *atomic.Int64
}

// NewSigstore makes the keys of a private Sigstore instance.
func NewSigstore(t testing.TB) *Sigstore {
	t.Helper()
	key := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	s := &Sigstore{caKey: key(), rekor: key(), ctlog: key(), created: time.Now().Add(-time.Hour), index: new(atomic.Int64)}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{Organization: []string{"weir tests"}, CommonName: "fulcio"},
		NotBefore:             s.created,
		NotAfter:              s.created.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &s.caKey.PublicKey, s.caKey)
	if err != nil {
		t.Fatal(err)
	}
	if s.ca, err = x509.ParseCertificate(der); err != nil {
		t.Fatal(err)
	}
	return s
}

// OtherAuthority returns an instance with the same logs as s but another
// certificate authority, one s's trusted root does not name.
func (s *Sigstore) OtherAuthority(t testing.TB) *Sigstore {
	t.Helper()
	o := NewSigstore(t)
	o.rekor, o.ctlog, o.index = s.rekor, s.ctlog, s.index
	return o
}

// logID is the ID of a log key: the SHA-256 of its DER encoding.
func logID(t testing.TB, k *ecdsa.PrivateKey) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(der)
	return sum[:]
}

// TrustedRootJSON is the trusted_root.json of the instance, as `cosign
// trusted-root create` writes it.
func (s *Sigstore) TrustedRootJSON(t testing.TB) []byte {
	t.Helper()
	tlog := func(k *ecdsa.PrivateKey, url string) map[string]*root.TransparencyLog {
		id := logID(t, k)
		return map[string]*root.TransparencyLog{hex.EncodeToString(id): {
			BaseURL: url, ID: id, ValidityPeriodStart: s.created, HashFunc: crypto.SHA256,
			PublicKey: &k.PublicKey, SignatureHashFunc: crypto.SHA256,
		}}
	}
	tr, err := root.NewTrustedRoot(root.TrustedRootMediaType01,
		[]root.CertificateAuthority{&root.FulcioCertificateAuthority{Root: s.ca, ValidityPeriodStart: s.created, URI: "https://fulcio.weir.test"}},
		tlog(s.ctlog, "https://ctfe.weir.test"), nil, tlog(s.rekor, "https://rekor.weir.test"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := tr.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// KeylessSignature says whom CosignSignKeyless signs as, and how to spoil
// the signature.
type KeylessSignature struct {
	// Subject is the certificate's SAN: a URI (a CI workflow) or an email.
	Subject string
	// Issuer is the OIDC issuer written into the certificate.
	Issuer string
	// LoggedAt is the integrated time Rekor gives the entry; zero is now.
	// One after the certificate's 10 minutes makes a signature whose
	// certificate had expired when it was logged.
	LoggedAt time.Time
	// TamperSET changes the integrated time after Rekor signed the entry.
	TamperSET bool
}

// CosignSignKeyless signs the manifest digest ("sha256:<hex>") of repo
// as `cosign sign <host>/<repo>@<digest>` does with an OIDC identity: an
// ephemeral key, a 10-minute certificate from s's authority naming the
// subject and issuer (extensions 1.3.6.1.4.1.57264.1.1 and .1.8) with an
// SCT, a hashedrekord entry logged in s's Rekor, and the signature layer
// with the annotations cosign writes (signature, certificate, chain,
// bundle) appended to the sha256-<hex>.sig tag.
func (r *Registry) CosignSignKeyless(t testing.TB, repo, digest string, s *Sigstore, ks KeylessSignature) {
	t.Helper()
	ref, err := name.NewDigest(r.Host+"/"+repo+"@"+digest, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	p, err := payload.Cosign{Image: ref}.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	ephemeral, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	leaf := s.issue(t, &ephemeral.PublicKey, ks.Subject, ks.Issuer, now)
	sum := sha256.Sum256(p)
	sig, err := ecdsa.SignASN1(rand.Reader, ephemeral, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leaf.Raw})
	loggedAt := ks.LoggedAt
	if loggedAt.IsZero() {
		loggedAt = now
	}
	bundle := s.logEntry(t, hashedRekord(sum[:], sig, certPEM), loggedAt.Unix(), ks.TamperSET)
	r.appendSignature(t, ref, p, map[string]string{
		"dev.cosignproject.cosign/signature": base64.StdEncoding.EncodeToString(sig),
		"dev.sigstore.cosign/certificate":    string(certPEM),
		"dev.sigstore.cosign/chain":          string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.ca.Raw})),
		"dev.sigstore.cosign/bundle":         string(bundle),
	})
}

// issue makes a Fulcio-like certificate for pub, valid 10 minutes from
// now, with an SCT of s's certificate transparency log embedded.
func (s *Sigstore) issue(t testing.TB, pub *ecdsa.PublicKey, subject, issuer string, now time.Time) *x509.Certificate {
	t.Helper()
	issuerV2, err := asn1.MarshalWithParams(issuer, "utf8")
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(now.UnixNano()),
		NotBefore:    now.Add(-time.Minute),
		NotAfter:     now.Add(10 * time.Minute),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning},
		ExtraExtensions: []pkix.Extension{
			{Id: asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, 1}, Value: []byte(issuer)},
			{Id: asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, 8}, Value: issuerV2},
		},
	}
	if u, err := url.Parse(subject); err == nil && u.Scheme != "" && !strings.Contains(subject, "@") {
		tmpl.URIs = []*url.URL{u}
	} else {
		tmpl.EmailAddresses = []string{subject}
	}
	// The SCT signs the certificate without its SCT extension (RFC 6962
	// 3.2), which is what the certificate is before the extension is
	// added.
	pre, err := x509.CreateCertificate(rand.Reader, tmpl, s.ca, pub, s.caKey)
	if err != nil {
		t.Fatal(err)
	}
	preCert, err := x509.ParseCertificate(pre)
	if err != nil {
		t.Fatal(err)
	}
	sct := ct.SignedCertificateTimestamp{SCTVersion: ct.V1, Timestamp: uint64(now.UnixMilli())}
	copy(sct.LogID.KeyID[:], logID(t, s.ctlog))
	input, err := ct.SerializeSCTSignatureInput(sct, ct.LogEntry{Leaf: ct.MerkleTreeLeaf{
		Version: ct.V1, LeafType: ct.TimestampedEntryLeafType,
		TimestampedEntry: &ct.TimestampedEntry{Timestamp: sct.Timestamp, EntryType: ct.PrecertLogEntryType, PrecertEntry: &ct.PreCert{
			IssuerKeyHash: sha256.Sum256(s.ca.RawSubjectPublicKeyInfo), TBSCertificate: preCert.RawTBSCertificate,
		}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	digest := sha256.Sum256(input)
	sctSig, err := ecdsa.SignASN1(rand.Reader, s.ctlog, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	sct.Signature = ct.DigitallySigned{Algorithm: cttls.SignatureAndHashAlgorithm{Hash: cttls.SHA256, Signature: cttls.ECDSA}, Signature: sctSig}
	list, err := ctx509util.MarshalSCTsIntoSCTList([]*ct.SignedCertificateTimestamp{&sct})
	if err != nil {
		t.Fatal(err)
	}
	rawList, err := cttls.Marshal(*list)
	if err != nil {
		t.Fatal(err)
	}
	ext, err := asn1.Marshal(rawList)
	if err != nil {
		t.Fatal(err)
	}
	tmpl.ExtraExtensions = append(tmpl.ExtraExtensions, pkix.Extension{Id: asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 11129, 2, 4, 2}, Value: ext})
	der, err := x509.CreateCertificate(rand.Reader, tmpl, s.ca, pub, s.caKey)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return leaf
}

// hashedRekord is the canonical body of Rekor's hashedrekord v0.0.1 entry
// for a signature of the payload whose SHA-256 is sum.
func hashedRekord(sum, sig, certPEM []byte) []byte {
	return fmt.Appendf(nil, `{"apiVersion":"0.0.1","kind":"hashedrekord","spec":{"data":{"hash":{"algorithm":"sha256","value":"%s"}},"signature":{"content":"%s","publicKey":{"content":"%s"}}}}`,
		hex.EncodeToString(sum), base64.StdEncoding.EncodeToString(sig), base64.StdEncoding.EncodeToString(certPEM))
}

// rekorEntry is a Rekor entry as its SET signs it; its fields are in the
// order of canonical JSON (RFC 8785): sorted keys.
type rekorEntry struct {
	Body           string `json:"body"`
	IntegratedTime int64  `json:"integratedTime"`
	LogID          string `json:"logID"`
	LogIndex       int64  `json:"logIndex"`
}

// signEntry logs body in s's Rekor at integratedTime: the entry and its
// SET, the signature of the log key over the canonical JSON of the entry.
// tamper changes the integrated time after the SET is made.
func (s *Sigstore) signEntry(t testing.TB, body []byte, integratedTime int64, tamper bool) (rekorEntry, []byte) {
	t.Helper()
	e := rekorEntry{base64.StdEncoding.EncodeToString(body), integratedTime, hex.EncodeToString(logID(t, s.rekor)), s.index.Add(1)}
	canonical, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	digest := sha256.Sum256(canonical)
	set, err := ecdsa.SignASN1(rand.Reader, s.rekor, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	if tamper {
		e.IntegratedTime++
	}
	return e, set
}

// logEntry logs body in s's Rekor at integratedTime and returns the
// dev.sigstore.cosign/bundle annotation: the entry and its SET.
func (s *Sigstore) logEntry(t testing.TB, body []byte, integratedTime int64, tamper bool) []byte {
	t.Helper()
	e, set := s.signEntry(t, body, integratedTime, tamper)
	b, err := json.Marshal(map[string]any{"SignedEntryTimestamp": set, "Payload": e})
	if err != nil {
		t.Fatal(err)
	}
	return b
}
