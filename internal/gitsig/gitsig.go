// Package gitsig checks the signatures of Git commits and tags, OpenPGP or
// SSH, against a set of trusted public keys, as GitRepository's spec.verify
// asks.
//
// Keys come from a Secret's data as Flux reads it: entries whose name ends
// in .sshpub hold SSH public keys (authorized_keys lines), every other
// entry an armored OpenPGP key ring (what `gpg --export --armor` writes).
// A verification reports which trusted key made a signature, or, when none
// did, what was found instead: no signature, a signature by another key, or
// a signature of a kind weir cannot check. OpenPGP keys are named by their
// 16-hex-digit key ID (`gpg --keyid-format long`), SSH keys by their SHA256
// fingerprint (`ssh-keygen -l`), so that a user can tell which key was
// expected.
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
	"github.com/hiddeco/sshsig"
	"golang.org/x/crypto/ssh"
)

// sshKeySuffix marks SSH public keys in a verification Secret, as Flux
// reads it.
const sshKeySuffix = ".sshpub"

// The armor headers of the signatures Git makes.
const (
	pgpSignatureHeader = "-----BEGIN PGP SIGNATURE-----"
	sshSignatureHeader = "-----BEGIN SSH SIGNATURE-----"
)

// sshNamespace is the namespace Git signs commits and tags in.
const sshNamespace = "git"

// ErrUnsigned is returned when the object carries no signature.
var ErrUnsigned = errors.New("it is not signed")

// Keys are the trusted OpenPGP public keys.
type Keys struct {
	ring openpgp.EntityList
	ssh  []ssh.PublicKey
}

// ReadKeys reads a Secret's data: SSH public keys from the entries whose
// name ends in .sshpub, an armored key ring from every other. As in Flux,
// an entry that cannot be read is passed over when others give keys; when
// none does, the error names the entries and why.
func ReadKeys(data map[string][]byte) (*Keys, error) {
	names := make([]string, 0, len(data))
	for name := range data {
		names = append(names, name)
	}
	sort.Strings(names)
	k := &Keys{}
	var unread []error
	for _, name := range names {
		if strings.HasSuffix(name, sshKeySuffix) {
			keys, err := readAuthorizedKeys(data[name])
			if err != nil {
				unread = append(unread, fmt.Errorf("'%s' is not a list of SSH public keys: %w", name, err))
				continue
			}
			k.ssh = append(k.ssh, keys...)
			continue
		}
		ring, err := openpgp.ReadArmoredKeyRing(bytes.NewReader(data[name]))
		if err != nil {
			unread = append(unread, fmt.Errorf("'%s' is not an armored OpenPGP public key: %w", name, err))
			continue
		}
		k.ring = append(k.ring, ring...)
	}
	if len(k.ring) == 0 && len(k.ssh) == 0 {
		if len(unread) > 0 {
			return nil, errors.Join(unread...)
		}
		return nil, errors.New("it holds no public key")
	}
	return k, nil
}

// readAuthorizedKeys parses authorized_keys lines, skipping blank lines and
// comments.
func readAuthorizedKeys(b []byte) ([]ssh.PublicKey, error) {
	var keys []ssh.PublicKey
	for line := range strings.Lines(string(b)) {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		key, _, _, _, err := ssh.ParseAuthorizedKey([]byte(line))
		if err != nil {
			return nil, err
		}
		keys = append(keys, key)
	}
	return keys, nil
}

// String lists the keys by ID with the name of their first identity:
// "3CB12BA185C47B67 (Alice <alice@example.com>), ...".
func (k *Keys) String() string {
	parts := make([]string, 0, len(k.ring)+len(k.ssh))
	for _, e := range k.ring {
		s := e.PrimaryKey.KeyIdString()
		if id := firstIdentity(e); id != "" {
			s += " (" + id + ")"
		}
		parts = append(parts, s)
	}
	for _, key := range k.ssh {
		parts = append(parts, ssh.FingerprintSHA256(key))
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
	case strings.HasPrefix(sig, sshSignatureHeader):
		return k.verifySSH(sig, payload)
	case !strings.HasPrefix(sig, pgpSignatureHeader):
		return "", fmt.Errorf("it has %s signature; weir verifies OpenPGP and SSH signatures", kind(sig))
	case strings.Count(sig, pgpSignatureHeader) > 1:
		// As go-git: several signatures cannot be reduced to one signer.
		return "", errors.New("it has more than one signature")
	case len(k.ring) == 0:
		return "", errors.New("it has an OpenPGP signature but no OpenPGP public key is trusted (keys with the .asc suffix)")
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

// verifySSH checks an SSH signature (SSHSIG, namespace "git") and returns
// the fingerprint of the trusted key that made it.
func (k *Keys) verifySSH(armored string, payload *plumbing.MemoryObject) (string, error) {
	if len(k.ssh) == 0 {
		return "", errors.New("it has an SSH signature but no SSH public key is trusted (keys with the .sshpub suffix)")
	}
	sig, err := sshsig.Unarmor([]byte(armored))
	if err != nil {
		return "", fmt.Errorf("its SSH signature cannot be read: %w", err)
	}
	for _, key := range k.ssh {
		r, err := payload.Reader()
		if err != nil {
			return "", err
		}
		err = sshsig.Verify(r, sig, key, sig.HashAlgorithm, sshNamespace)
		r.Close()
		if err == nil {
			return ssh.FingerprintSHA256(key), nil
		}
	}
	signer := ssh.FingerprintSHA256(sig.PublicKey)
	for _, key := range k.ssh {
		if ssh.FingerprintSHA256(key) == signer {
			return "", fmt.Errorf("the signature by key %s does not verify", signer)
		}
	}
	return "", fmt.Errorf("it is signed by key %s, which is not a trusted key", signer)
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
	case strings.HasPrefix(sig, "-----BEGIN SIGNED MESSAGE-----"):
		return "an X.509"
	}
	return "an unknown kind of"
}
