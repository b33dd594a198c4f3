package cosign_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/weirhq/weir/internal/cosign"
	"github.com/weirhq/weir/internal/testenv"
)

func keysSecret(t *testing.T, keys map[string]*testenv.CosignKey) []cosign.Key {
	t.Helper()
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "keys"}, Data: map[string][]byte{"README": []byte("not a key")}}
	for n, k := range keys {
		s.Data[n] = k.PublicPEM
	}
	got, err := cosign.KeysFromSecret(s)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func TestVerifyAcceptsOnlyASignatureOfATrustedKeyForTheDigest(t *testing.T) {
	reg := testenv.NewRegistry(t, "", "")
	trusted, other := testenv.NewCosignKey(t), testenv.NewCosignKey(t)
	keys := keysSecret(t, map[string]*testenv.CosignKey{"cosign.pub": trusted})
	opts := []remote.Option{remote.WithTransport(reg.Registry().Transport())}
	push := func(repo, content string) name.Digest {
		d := reg.PushFiles(t, repo, "latest", map[string]string{"a.yaml": content}, nil)
		ref, err := name.NewDigest(reg.Host+"/"+repo+"@"+d, name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		return ref
	}

	signed := push("signed", "a")
	reg.CosignSign(t, "signed", signed.DigestStr(), other)
	reg.CosignSign(t, "signed", signed.DigestStr(), trusted)
	k, err := cosign.Verify(context.Background(), signed, keys, opts...)
	if err != nil {
		t.Fatalf("a signature of the trusted key is refused: %v", err)
	}
	if k.Name != "cosign.pub" || !strings.HasPrefix(k.Fingerprint, "sha256:") {
		t.Errorf("verified with %v", k)
	}

	byOther := push("other", "b")
	reg.CosignSign(t, "other", byOther.DigestStr(), other)
	// The trusted key's signature of another manifest, put at this one's
	// signature tag.
	copied := push("copied", "c")
	reg.CosignSign(t, "copied", signed.DigestStr(), trusted)
	from, _ := cosign.SignatureTag(copied.Context().Digest(signed.DigestStr()))
	to, _ := cosign.SignatureTag(copied)
	img, err := remote.Image(from, opts...)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(to, img, opts...); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name string
		ref  name.Digest
		want string
	}{
		{"unsigned", push("unsigned", "d"), "the artifact is not signed (no signature tag 'sha256-"},
		{"signed by another key", byOther, "holds a signature by another key"},
		{"a signature of another digest", copied, "holds a signature by cosign.pub for digest '" + signed.DigestStr() + "', not this one; trusted keys"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := cosign.Verify(context.Background(), tc.ref, keys, opts...)
			var ue *cosign.UnverifiedError
			if !errors.As(err, &ue) {
				t.Fatalf("got %v, want an UnverifiedError", err)
			}
			msg := err.Error()
			t.Log(msg)
			for _, want := range []string{"no matching signatures were found for '" + tc.ref.String() + "'", tc.want, "trusted keys: cosign.pub (" + keys[0].Fingerprint + ")"} {
				if !strings.Contains(msg, want) {
					t.Errorf("message %q does not say %q", msg, want)
				}
			}
		})
	}
}

func TestKeysFromSecretNamesWhatIsWrong(t *testing.T) {
	for _, tc := range []struct {
		name string
		data map[string][]byte
		want string
	}{
		{"no key", map[string][]byte{"cosign.key": []byte("x")}, "no public keys found in secret 'ns/keys'"},
		{"not a key", map[string][]byte{"bad.pub": []byte("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")}, "secret 'ns/keys': 'bad.pub' is not a PEM public key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := cosign.KeysFromSecret(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "keys"}, Data: tc.data})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want %q", err, tc.want)
			}
		})
	}
}
