package testenv

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/sigstore/sigstore/pkg/signature/payload"
)

// CosignKey is a key pair as `cosign generate-key-pair` makes one: ECDSA
// P-256, the public half as the PEM of cosign.pub.
type CosignKey struct {
	Private *ecdsa.PrivateKey
	// PublicPEM is the content of cosign.pub.
	PublicPEM []byte
}

// NewCosignKey makes a key pair for a test.
func NewCosignKey(t testing.TB) *CosignKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return &CosignKey{Private: k, PublicPEM: pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})}
}

// CosignSign signs the manifest digest ("sha256:<hex>") of repo with key
// and pushes the signature as `cosign sign --key cosign.key
// --tlog-upload=false <host>/<repo>@<digest>` does: a simple-signing
// payload naming the digest, signed (ECDSA over its SHA-256) into the
// layer's dev.cosignproject.cosign/signature annotation, appended to the
// OCI image tagged sha256-<hex>.sig in the same repository.
func (r *Registry) CosignSign(t testing.TB, repo, digest string, key *CosignKey) {
	t.Helper()
	ref, err := name.NewDigest(r.Host+"/"+repo+"@"+digest, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	p, err := payload.Cosign{Image: ref}.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(p)
	sig, err := ecdsa.SignASN1(rand.Reader, key.Private, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	r.appendSignature(t, ref, p, map[string]string{"dev.cosignproject.cosign/signature": base64.StdEncoding.EncodeToString(sig)})
}

// appendSignature appends a signature layer with payload p and annotations
// to the signature tag of ref, as cosign adds to the signatures already
// there.
func (r *Registry) appendSignature(t testing.TB, ref name.Digest, p []byte, annotations map[string]string) {
	t.Helper()
	layer := static.NewLayer(p, "application/vnd.dev.cosign.simplesigning.v1+json")
	tag := ref.Context().Tag(strings.Replace(ref.DigestStr(), ":", "-", 1) + ".sig")
	opts := []remote.Option{remote.WithContext(context.Background()), remote.WithTransport(r.reg.Transport()), remote.WithAuth(r.reg.Auth())}
	base, err := remote.Image(tag, opts...)
	var terr *transport.Error
	switch {
	case errors.As(err, &terr) && terr.StatusCode == http.StatusNotFound:
		base = mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	case err != nil:
		t.Fatal(err)
	}
	img, err := mutate.Append(base, mutate.Addendum{Layer: layer, Annotations: annotations})
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(tag, img, opts...); err != nil {
		t.Fatal(err)
	}
}

// Digest returns the manifest digest repo:tag points to.
func (r *Registry) Digest(t testing.TB, repo, tag string) string {
	t.Helper()
	ref, err := name.NewTag(r.Host+"/"+repo+":"+tag, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	desc, err := remote.Head(ref, remote.WithTransport(r.reg.Transport()), remote.WithAuth(r.reg.Auth()))
	if err != nil {
		t.Fatal(err)
	}
	return desc.Digest.String()
}
