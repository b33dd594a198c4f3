package gitsig_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
	"github.com/go-git/go-billy/v5/memfs"
	gogit "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/storage/memory"
	"github.com/hiddeco/sshsig"
	"golang.org/x/crypto/ssh"

	"github.com/weirhq/weir/internal/gitsig"
)

func newKey(t *testing.T, name string) *openpgp.Entity {
	t.Helper()
	e, err := openpgp.NewEntity(name, "", name+"@weir.invalid", &packet.Config{Algorithm: packet.PubKeyAlgoEdDSA})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func public(t *testing.T, e *openpgp.Entity) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, _ := armor.Encode(&buf, openpgp.PublicKeyType, nil)
	if err := e.Serialize(w); err != nil {
		t.Fatal(err)
	}
	w.Close()
	return buf.Bytes()
}

// commit makes a commit signed with key (nil: unsigned) and a tag on it.
func commit(t *testing.T, key *openpgp.Entity) (*object.Commit, *object.Tag) {
	t.Helper()
	repo, err := gogit.Init(memory.NewStorage(), memfs.New())
	if err != nil {
		t.Fatal(err)
	}
	wt, _ := repo.Worktree()
	sig := &object.Signature{Name: "t", Email: "t@weir.invalid", When: time.Now()}
	h, err := wt.Commit("m", &gogit.CommitOptions{AllowEmptyCommits: true, Author: sig, SignKey: key})
	if err != nil {
		t.Fatal(err)
	}
	c, _ := repo.CommitObject(h)
	ref, err := repo.CreateTag("v1", h, &gogit.CreateTagOptions{Message: "v1", Tagger: sig, SignKey: key})
	if err != nil {
		t.Fatal(err)
	}
	tag, _ := repo.TagObject(ref.Hash())
	return c, tag
}

func TestVerifySaysWhoSignedOrWhatWasFound(t *testing.T) {
	alice, bob, mallory := newKey(t, "alice"), newKey(t, "bob"), newKey(t, "mallory")
	keys, err := gitsig.ReadKeys(map[string][]byte{"alice.asc": public(t, alice), "bob.asc": public(t, bob)})
	if err != nil {
		t.Fatal(err)
	}
	if s := keys.String(); !strings.Contains(s, alice.PrimaryKey.KeyIdString()+" (alice <alice@weir.invalid>)") || !strings.Contains(s, bob.PrimaryKey.KeyIdString()) {
		t.Errorf("keys list as %q", s)
	}
	c, tag := commit(t, bob)
	if id, err := keys.VerifyCommit(c); err != nil || id != bob.PrimaryKey.KeyIdString() {
		t.Errorf("commit signed by bob: %q, %v", id, err)
	}
	if id, err := keys.VerifyTag(tag); err != nil || id != bob.PrimaryKey.KeyIdString() {
		t.Errorf("tag signed by bob: %q, %v", id, err)
	}
	c, _ = commit(t, nil)
	if _, err := keys.VerifyCommit(c); err != gitsig.ErrUnsigned {
		t.Errorf("unsigned commit: %v", err)
	}
	c, _ = commit(t, mallory)
	_, err = keys.VerifyCommit(c)
	// go-git signs with the signing subkey; the message names the key the
	// signature names.
	if err == nil || !strings.Contains(err.Error(), "which is not a trusted key") {
		t.Errorf("commit signed by mallory: %v", err)
	}
	ids := []string{mallory.PrimaryKey.KeyIdString()}
	for _, sub := range mallory.Subkeys {
		ids = append(ids, sub.PublicKey.KeyIdString())
	}
	named := false
	for _, id := range ids {
		named = named || strings.Contains(err.Error(), id)
	}
	if !named {
		t.Errorf("error %q names none of mallory's keys %v", err, ids)
	}
	c.PGPSignature = "-----BEGIN SIGNED MESSAGE-----\nAAAA\n-----END SIGNED MESSAGE-----"
	if _, err := keys.VerifyCommit(c); err == nil || !strings.Contains(err.Error(), "an X.509 signature") {
		t.Errorf("x509-signed commit: %v", err)
	}
	if _, err := gitsig.ReadKeys(map[string][]byte{"x.asc": []byte("garbage")}); err == nil || !strings.Contains(err.Error(), "'x.asc'") {
		t.Errorf("garbage key: %v", err)
	}
	if k, err := gitsig.ReadKeys(map[string][]byte{"README": []byte("keys of the team"), "alice.asc": public(t, alice)}); err != nil || k.String() != alice.PrimaryKey.KeyIdString()+" (alice <alice@weir.invalid>)" {
		t.Errorf("an entry that is not a key beside a key: %v, %v", k, err)
	}
	if _, err := gitsig.ReadKeys(map[string][]byte{"dev.sshpub": []byte("ssh-ed25519 AAAA")}); err == nil {
		t.Error("a Secret with a bad SSH key was accepted")
	}
	if _, err := gitsig.ReadKeys(map[string][]byte{}); err == nil {
		t.Error("a Secret with no key was accepted")
	}
}

// sshSigner signs as `git commit -S` with gpg.format=ssh does.
type sshSigner struct{ ssh.Signer }

func (s sshSigner) Sign(r io.Reader) ([]byte, error) {
	sig, err := sshsig.Sign(r, s.Signer, sshsig.HashSHA512, "git")
	if err != nil {
		return nil, err
	}
	return sshsig.Armor(sig), nil
}

func newSSHKey(t *testing.T) ssh.Signer {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestVerifySSHSignatures(t *testing.T) {
	dev, other := newSSHKey(t), newSSHKey(t)
	pgp := newKey(t, "alice")
	keys, err := gitsig.ReadKeys(map[string][]byte{
		"dev.sshpub": append([]byte("# the deploy key\n"), ssh.MarshalAuthorizedKey(dev.PublicKey())...),
	})
	if err != nil {
		t.Fatal(err)
	}
	sign := func(s gogit.Signer) *object.Commit {
		repo, _ := gogit.Init(memory.NewStorage(), memfs.New())
		wt, _ := repo.Worktree()
		h, err := wt.Commit("m", &gogit.CommitOptions{AllowEmptyCommits: true, Author: &object.Signature{Name: "t", When: time.Now()}, Signer: s})
		if err != nil {
			t.Fatal(err)
		}
		c, _ := repo.CommitObject(h)
		return c
	}
	if fp, err := keys.VerifyCommit(sign(sshSigner{dev})); err != nil || fp != ssh.FingerprintSHA256(dev.PublicKey()) {
		t.Errorf("commit signed by the trusted SSH key: %q, %v", fp, err)
	}
	_, err = keys.VerifyCommit(sign(sshSigner{other}))
	if err == nil || !strings.Contains(err.Error(), "signed by key "+ssh.FingerprintSHA256(other.PublicKey())+", which is not a trusted key") {
		t.Errorf("commit signed by another SSH key: %v", err)
	}
	c, _ := commit(t, pgp)
	if _, err := keys.VerifyCommit(c); err == nil || !strings.Contains(err.Error(), "no OpenPGP public key is trusted") {
		t.Errorf("OpenPGP-signed commit with SSH keys only: %v", err)
	}
	if s := keys.String(); s != ssh.FingerprintSHA256(dev.PublicKey()) {
		t.Errorf("keys list as %q", s)
	}
}
