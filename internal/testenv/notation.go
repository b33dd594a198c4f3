package testenv

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net/http"
	"strings"
	"testing"
	"time"

	notationgo "github.com/notaryproject/notation-go"
	notationregistry "github.com/notaryproject/notation-go/registry"
	"github.com/notaryproject/notation-go/signer"
	"oras.land/oras-go/v2/registry/remote"
	"oras.land/oras-go/v2/registry/remote/auth"
)

// NotationSigner is a signing key and its certificate chain, as a
// certificate authority issues them for `notation sign`: an ECDSA P-256
// leaf certificate for code signing, issued by a root CA of its own.
type NotationSigner struct {
	// Subject is the leaf certificate's subject, as a trust policy's
	// x509.subject identity names it: "CN=<name>,O=weir tests,ST=WA,C=US".
	Subject string
	// CACertPEM is the root CA's certificate, for the verify Secret.
	CACertPEM []byte

	key   *ecdsa.PrivateKey
	chain []*x509.Certificate
}

// NewNotationSigner makes a root CA named after cn and a code-signing
// certificate with subject CN=cn,O=weir tests,ST=WA,C=US that it issues.
func NewNotationSigner(t testing.TB, cn string) *NotationSigner {
	t.Helper()
	newKey := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	caKey, key := newKey(), newKey()
	now := time.Now()
	ca := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: cn + " root CA", Organization: []string{"weir tests"}, Province: []string{"WA"}, Country: []string{"US"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLen:            1,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	leaf := &x509.Certificate{
		SerialNumber:          big.NewInt(2),
		Subject:               pkix.Name{CommonName: cn, Organization: []string{"weir tests"}, Province: []string{"WA"}, Country: []string{"US"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning},
		BasicConstraintsValid: true,
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leaf, caCert, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	leafCert, err := x509.ParseCertificate(leafDER)
	if err != nil {
		t.Fatal(err)
	}
	return &NotationSigner{
		Subject:   leafCert.Subject.String(),
		CACertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		key:       key,
		chain:     []*x509.Certificate{leafCert, caCert},
	}
}

// NotationTrustPolicy is a trustpolicy.json with one statement, "weir",
// at the given level (strict, permissive, audit or skip), for the given
// registry scopes (host:port/repository, or "*"), trusting the
// certificates of trust store ca:weir and the given x509.subject
// identities ("*" for any).
func NotationTrustPolicy(t testing.TB, level string, scopes []string, subjects ...string) []byte {
	t.Helper()
	ids := make([]string, len(subjects))
	for i, s := range subjects {
		ids[i] = s
		if s != "*" {
			ids[i] = "x509.subject: " + s
		}
	}
	b, err := json.Marshal(map[string]any{
		"version": "1.0",
		"trustPolicies": []map[string]any{{
			"name":                  "weir",
			"registryScopes":        scopes,
			"signatureVerification": map[string]string{"level": level},
			"trustStores":           []string{"ca:weir"},
			"trustedIdentities":     ids,
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// NotationSign signs the manifest digest ("sha256:<hex>") of repo with s
// and pushes the signature as `notation sign <host>/<repo>@<digest>` does,
// with notation-go and oras-go: a JWS envelope in a signature manifest
// whose subject is the signed manifest, found through the referrers of
// its digest (the sha256-<hex> referrers tag, as the registry has no
// referrers API).
func (r *Registry) NotationSign(t testing.TB, repo, digest string, s *NotationSigner) {
	t.Helper()
	ctx := context.Background()
	sg, err := signer.NewGenericSigner(s.key, s.chain)
	if err != nil {
		t.Fatal(err)
	}
	target, err := remote.NewRepository(r.Host + "/" + repo)
	if err != nil {
		t.Fatal(err)
	}
	target.PlainHTTP = r.reg.CACertPEM() == nil
	client := &auth.Client{Client: &http.Client{Transport: r.reg.Transport()}, Cache: auth.NewCache()}
	if a, err := r.reg.Auth().Authorization(); err == nil && a.Username != "" {
		client.Credential = auth.StaticCredential(r.Host, auth.Credential{Username: a.Username, Password: a.Password})
	}
	target.Client = client
	_, err = notationgo.Sign(ctx, sg, notationregistry.NewRepository(target), notationgo.SignOptions{
		SignerSignOptions: notationgo.SignerSignOptions{SignatureMediaType: "application/jose+json"},
		ArtifactReference: r.Host + "/" + repo + "@" + digest,
	})
	if err != nil && !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("notation sign %s@%s: %v", repo, digest, err)
	}
}
