// Package gitsig checks the OpenPGP signatures of Git commits and tags
// against a set of trusted public keys, as GitRepository's spec.verify asks.
//
// Keys come from a Secret's data, one armored key ring per entry (what
// `gpg --export --armor` writes). Verify reports which trusted key made a
// signature, or, when none did, what was found instead: no signature, a
// signature by another key, or a signature of a kind weir cannot check. The
// errors name keys by their 16-hex-digit key ID, as `gpg --keyid-format long`
// shows them, so that a user can tell which key was expected.
package gitsig

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	pgperrors "github.com/ProtonMail/go-crypto/openpgp/errors"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// sshKeySuffix marks SSH public keys in a verification Secret, as Flux
// reads it; weir does not verify SSH signatures, so they are not key rings.
const sshKeySuffix = ".sshpub"

// pgpSignatureHeader starts an armored OpenPGP signature.
const pgpSignatureHeader = "-----BEGIN PGP SIGNATURE-----"

// ErrUnsigned is returned when the object carries no signature.
var ErrUnsigned = errors.New("it is not signed")

// Keys are the trusted OpenPGP public keys.
type Keys struct {
	ring openpgp.EntityList
}

// ReadKeys reads every entry of a Secret's data as an armored key ring,
// except the SSH keys (names ending in .sshpub) that Flux also accepts
// there. An entry that is not a key ring is an error that names it.
func ReadKeys(data map[string][]byte) (*Keys, error) {
	names := make([]string, 0, len(data))
	for name := range data {
		if !strings.HasSuffix(name, sshKeySuffix) {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	k := &Keys{}
	for _, name := range names {
		ring, err := openpgp.ReadArmoredKeyRing(bytes.NewReader(data[name]))
		if err != nil {
			return nil, fmt.Errorf("'%s' is not an armored OpenPGP public key: %w", name, err)
		}
		k.ring = append(k.ring, ring...)
	}
	if len(k.ring) == 0 {
		return nil, errors.New("it holds no OpenPGP public key")
	}
	return k, nil
}

// String lists the keys by ID with the name of their first identity:
// "3CB12BA185C47B67 (Alice <alice@example.com>), ...".
func (k *Keys) String() string {
	parts := make([]string, 0, len(k.ring))
	for _, e := range k.ring {
		s := e.PrimaryKey.KeyIdString()
		if id := firstIdentity(e); id != "" {
			s += " (" + id + ")"
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, ", ")
}

func firstIdentity(e *openpgp.Entity) string {
	names := make([]string, 0, len(e.Identities))
	for name := range e.Identities {
		names = append(names, name)
	}
	sort.Strings(names)
	if len(names) == 0 {
		return ""
	}
	return names[0]
}

// VerifyCommit checks the commit's signature and returns the ID of the
// trusted key that made it.
func (k *Keys) VerifyCommit(c *object.Commit) (string, error) {
	payload := &plumbing.MemoryObject{}
	if err := c.EncodeWithoutSignature(payload); err != nil {
		return "", fmt.Errorf("encoding commit '%s': %w", c.Hash, err)
	}
	return k.verify(c.PGPSignature, payload)
}

// VerifyTag checks an annotated tag's signature and returns the ID of the
// trusted key that made it.
func (k *Keys) VerifyTag(t *object.Tag) (string, error) {
	payload := &plumbing.MemoryObject{}
	if err := t.EncodeWithoutSignature(payload); err != nil {
		return "", fmt.Errorf("encoding tag '%s': %w", t.Name, err)
	}
	return k.verify(t.PGPSignature, payload)
}

func (k *Keys) verify(sig string, payload *plumbing.MemoryObject) (string, error) {
	sig = strings.TrimSpace(sig)
	switch {
	case sig == "":
		return "", ErrUnsigned
	case !strings.HasPrefix(sig, pgpSignatureHeader):
		return "", fmt.Errorf("it has %s signature; weir verifies OpenPGP signatures only", kind(sig))
	case strings.Count(sig, pgpSignatureHeader) > 1:
		// As go-git: several signatures cannot be reduced to one signer.
		return "", errors.New("it has more than one signature")
	}
	r, err := payload.Reader()
	if err != nil {
		return "", err
	}
	defer r.Close()
	signer, err := openpgp.CheckArmoredDetachedSignature(k.ring, r, strings.NewReader(sig), nil)
	if err == nil {
		return signer.PrimaryKey.KeyIdString(), nil
	}
	issuer := issuerOf(sig)
	if errors.Is(err, pgperrors.ErrUnknownIssuer) {
		if issuer == "" {
			return "", errors.New("it is signed by a key that the signature does not name, and no trusted key verifies it")
		}
		return "", fmt.Errorf("it is signed by key %s, which is not a trusted key", issuer)
	}
	if issuer != "" {
		return "", fmt.Errorf("the signature by key %s does not verify: %w", issuer, err)
	}
	return "", fmt.Errorf("the signature does not verify: %w", err)
}

// issuerOf reads the key ID a signature names, or "" when it names none
// or cannot be read.
func issuerOf(sig string) string {
	block, err := armor.Decode(strings.NewReader(sig))
	if err != nil {
		return ""
	}
	p, err := packet.Read(io.LimitReader(block.Body, 1<<20))
	if err != nil {
		return ""
	}
	s, ok := p.(*packet.Signature)
	if !ok {
		return ""
	}
	if len(s.IssuerFingerprint) >= 8 {
		fp := s.IssuerFingerprint
		if s.Version == 4 {
			return fmt.Sprintf("%X", fp[len(fp)-8:])
		}
		return fmt.Sprintf("%X", fp[:8])
	}
	if s.IssuerKeyId != nil {
		return fmt.Sprintf("%016X", *s.IssuerKeyId)
	}
	return ""
}

// kind names a signature that is not OpenPGP, as Git tells them apart.
func kind(sig string) string {
	switch {
	case strings.HasPrefix(sig, "-----BEGIN SSH SIGNATURE-----"):
		return "an SSH"
	case strings.HasPrefix(sig, "-----BEGIN SIGNED MESSAGE-----"):
		return "an X.509"
	}
	return "an unknown kind of"
}
