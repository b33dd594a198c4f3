package cosign

import (
	"crypto"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"

	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"
	corev1 "k8s.io/api/core/v1"
)

// Key is a trusted public key, as `cosign generate-key-pair` writes it to
// cosign.pub (PEM, PKIX): ECDSA, RSA or Ed25519.
type Key struct {
	// Name is where the key came from: its entry in the Secret, such as
	// cosign.pub.
	Name string
	// Fingerprint is "sha256:" and the first 16 hex digits of the SHA-256
	// of the key's DER encoding, which `openssl pkey -pubin -outform DER
	// -in cosign.pub | sha256sum` prints in full.
	Fingerprint string

	verifier signature.Verifier
}

// String names the key in messages: its name and fingerprint.
func (k Key) String() string { return fmt.Sprintf("%s (%s)", k.Name, k.Fingerprint) }

// ParseKey reads a PEM public key; name says where it came from.
func ParseKey(name string, pemKey []byte) (Key, error) {
	pub, err := cryptoutils.UnmarshalPEMToPublicKey(pemKey)
	if err != nil {
		return Key{}, fmt.Errorf("'%s' is not a PEM public key: %w", name, err)
	}
	der, err := cryptoutils.MarshalPublicKeyToDER(pub)
	if err != nil {
		return Key{}, fmt.Errorf("'%s' is not a public key cosign can use: %w", name, err)
	}
	// cosign signs the SHA-256 of the payload, whatever the key type.
	v, err := signature.LoadVerifier(pub, crypto.SHA256)
	if err != nil {
		return Key{}, fmt.Errorf("'%s' is not a public key cosign can use: %w", name, err)
	}
	sum := sha256.Sum256(der)
	return Key{Name: name, Fingerprint: "sha256:" + hex.EncodeToString(sum[:8]), verifier: v}, nil
}

// KeysFromSecret reads every entry of s whose name ends in .pub, as
// source-controller does, sorted by name. A Secret without one, or an
// entry that is not a public key, is an error that names the Secret.
func KeysFromSecret(s *corev1.Secret) ([]Key, error) {
	var names []string
	for k := range s.Data {
		if strings.HasSuffix(k, ".pub") {
			names = append(names, k)
		}
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("no public keys found in secret '%s/%s': give each key an entry whose name ends in .pub", s.Namespace, s.Name)
	}
	sort.Strings(names)
	keys := make([]Key, 0, len(names))
	for _, n := range names {
		k, err := ParseKey(n, s.Data[n])
		if err != nil {
			return nil, fmt.Errorf("secret '%s/%s': %w", s.Namespace, s.Name, err)
		}
		keys = append(keys, k)
	}
	return keys, nil
}

// describeKeys lists keys for a message.
func describeKeys(keys []Key) string {
	s := make([]string, len(keys))
	for i, k := range keys {
		s[i] = k.String()
	}
	return strings.Join(s, ", ")
}
