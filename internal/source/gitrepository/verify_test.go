package gitrepository_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"github.com/fluxcd/pkg/apis/meta"
	"github.com/fluxcd/pkg/runtime/conditions"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	"github.com/hiddeco/sshsig"
	"golang.org/x/crypto/ssh"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// newKey makes an OpenPGP key pair, as `gpg --quick-gen-key` would.
func newKey(t *testing.T, name string) *openpgp.Entity {
	t.Helper()
	e, err := openpgp.NewEntity(name, "", strings.ToLower(name)+"@weir.invalid", &packet.Config{Algorithm: packet.PubKeyAlgoEdDSA})
	if err != nil {
		t.Fatalf("making the key of %s: %v", name, err)
	}
	return e
}

// armoredPublicKey is what `gpg --export --armor` writes for the key.
func armoredPublicKey(t *testing.T, e *openpgp.Entity) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := armor.Encode(&buf, openpgp.PublicKeyType, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Serialize(w); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func withVerify(mode sourcev1.GitVerificationMode, secret string) func(*sourcev1.GitRepository) {
	return func(g *sourcev1.GitRepository) {
		g.Spec.Verification = &sourcev1.GitRepositoryVerification{Mode: mode, SecretRef: meta.LocalObjectReference{Name: secret}}
	}
}

// waitRefused waits until Ready=False with the reason, for the current
// generation, and returns the object.
func waitRefused(t *testing.T, obj *sourcev1.GitRepository, reason string) *sourcev1.GitRepository {
	t.Helper()
	return waitFor(t, 30*time.Second, "Ready=False with reason "+reason, obj, func(g *sourcev1.GitRepository) bool {
		return conditions.IsFalse(g, meta.ReadyCondition) && conditions.GetReason(g, meta.ReadyCondition) == reason &&
			g.Status.ObservedGeneration == g.Generation
	})
}

func configMapYAML(name, value string) string {
	return "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: " + name + "\ndata:\n  value: " + value + "\n"
}

// A commit signed by a trusted key is stored, and SourceVerified says by
// which key; the legacy mode 'head' means HEAD.
func TestSignedCommitFromATrustedKeyIsStored(t *testing.T) {
	ns := env.Namespace(t)
	git := newGitServer(t)
	alice := newKey(t, "Alice")
	repo := git.Repo(t, "signed")
	repo.SignWith(alice)
	h := repo.Commit("main", map[string]string{"app/cm.yaml": configMapYAML("app", "one")}, "signed")
	createBasicAuthSecret(t, ns, "git-auth")
	createSecret(t, ns, "pgp-keys", map[string][]byte{"alice.asc": armoredPublicKey(t, alice)})

	for name, mode := range map[string]sourcev1.GitVerificationMode{"mode-head": sourcev1.ModeGitHEAD, "legacy-head": "head"} {
		t.Run(name, func(t *testing.T) {
			obj := newGitRepository(t, ns, name, git.HTTPURL("signed"), func(g *sourcev1.GitRepository) {
				withSecret("git-auth")(g)
				withVerify(mode, "pgp-keys")(g)
			})
			got := waitReady(t, obj, "main@sha1:"+h.String())
			want := "verified signature of\n\t- commit '" + h.String() + "' with key '" + alice.PrimaryKey.KeyIdString() + "'"
			if c := conditions.Get(got, sourcev1.SourceVerifiedCondition); c == nil || c.Status != metav1.ConditionTrue || c.Reason != meta.SucceededReason || c.Message != want {
				t.Errorf("SourceVerified = %+v, want True, Succeeded, %q", c, want)
			}
			if m := got.Status.SourceVerificationMode; m == nil || *m != sourcev1.ModeGitHEAD {
				t.Errorf("status.sourceVerificationMode = %v, want HEAD", m)
			}
		})
	}
}

// A commit that is not signed, or is signed by a key not in the Secret, is
// refused: no artifact is stored for it, the previous one is still served,
// and a Kustomization that applies the repository does not apply it. The
// message names the trusted key and what was found.
func TestUnverifiedCommitIsNeverApplied(t *testing.T) {
	ns := env.Namespace(t)
	git := newGitServer(t)
	alice, mallory := newKey(t, "Alice"), newKey(t, "Mallory")
	repo := git.Repo(t, "guarded")
	repo.SignWith(alice)
	good := repo.Commit("main", map[string]string{"app/cm.yaml": configMapYAML("app", "trusted")}, "trusted change")
	createBasicAuthSecret(t, ns, "git-auth")
	createSecret(t, ns, "pgp-keys", map[string][]byte{"alice.asc": armoredPublicKey(t, alice)})

	src := newGitRepository(t, ns, "guarded", git.HTTPURL("guarded"), func(g *sourcev1.GitRepository) {
		withSecret("git-auth")(g)
		withVerify(sourcev1.ModeGitHEAD, "pgp-keys")(g)
	})
	stored := waitReady(t, src, "main@sha1:"+good.String()).Status.Artifact
	ks := &kustomizev1.Kustomization{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "app"},
		Spec: kustomizev1.KustomizationSpec{
			Interval:        metav1.Duration{Duration: time.Hour},
			Path:            "./app",
			Prune:           true,
			TargetNamespace: ns,
			SourceRef:       kustomizev1.CrossNamespaceSourceReference{Kind: sourcev1.GitRepositoryKind, Name: "guarded"},
		},
	}
	if err := env.Client.Create(context.Background(), ks); err != nil {
		t.Fatal(err)
	}
	waitConfigMapValue(t, ns, "app", "trusted")
	aliceID := alice.PrimaryKey.KeyIdString()

	cases := []struct {
		name   string
		signer *openpgp.Entity
		found  string
	}{
		{"unsigned", nil, "it is not signed"},
		{"other-key", mallory, "it is signed by key " + mallory.PrimaryKey.KeyIdString() + ", which is not a trusted key"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			repo.SignWith(tc.signer)
			bad := repo.Commit("main", map[string]string{"app/cm.yaml": configMapYAML("app", tc.name)}, "untrusted change")
			requestReconcile(t, src)
			got := waitFor(t, 30*time.Second, "the new commit refused", src, func(g *sourcev1.GitRepository) bool {
				return conditions.GetReason(g, meta.ReadyCondition) == "InvalidCommitSignature" &&
					strings.Contains(conditions.GetMessage(g, meta.ReadyCondition), bad.String())
			})
			msg := conditions.GetMessage(got, meta.ReadyCondition)
			for _, want := range []string{"signature verification of commit '" + bad.String() + "' failed", tc.found, aliceID + " (Alice <alice@weir.invalid>)", ns + "/pgp-keys"} {
				if !strings.Contains(msg, want) {
					t.Errorf("Ready message %q does not say %q", msg, want)
				}
			}
			if c := conditions.Get(got, sourcev1.SourceVerifiedCondition); c == nil || c.Status != metav1.ConditionFalse || c.Reason != "InvalidCommitSignature" {
				t.Errorf("SourceVerified = %+v, want False, InvalidCommitSignature", c)
			}
			if got.Status.Artifact.Revision != stored.Revision || got.Status.Artifact.Digest != stored.Digest {
				t.Errorf("artifact changed to %s after a refused commit, want %s kept", got.Status.Artifact.Revision, stored.Revision)
			}
			if files := artifactFiles(t, got.Status.Artifact); !strings.Contains(files["app/cm.yaml"], "trusted") {
				t.Errorf("the served artifact holds %q, want the trusted revision", files["app/cm.yaml"])
			}
			if !conditions.IsTrue(got, sourcev1.ArtifactInStorageCondition) {
				t.Error("ArtifactInStorage is not True while the previous artifact is served")
			}
			waitEvent(t, ns, "guarded", "InvalidCommitSignature")
		})
	}

	// The Kustomization still has the trusted revision applied.
	var k kustomizev1.Kustomization
	if err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(ks), &k); err != nil {
		t.Fatal(err)
	}
	if k.Status.LastAppliedRevision != stored.Revision {
		t.Errorf("Kustomization applied %q, want only the verified %q", k.Status.LastAppliedRevision, stored.Revision)
	}
	waitConfigMapValue(t, ns, "app", "trusted")

	// A new commit by the trusted key is stored and applied again.
	repo.SignWith(alice)
	fixed := repo.Commit("main", map[string]string{"app/cm.yaml": configMapYAML("app", "trusted-again")}, "trusted again")
	requestReconcile(t, src)
	got := waitReady(t, src, "main@sha1:"+fixed.String())
	if !conditions.IsTrue(got, sourcev1.SourceVerifiedCondition) {
		t.Errorf("SourceVerified after a trusted commit: %s", describe(got))
	}
	waitConfigMapValue(t, ns, "app", "trusted-again")
}

// A GitRepository that was never Ready gets no artifact from an unsigned
// commit.
func TestUnsignedFirstCommitStoresNothing(t *testing.T) {
	ns := env.Namespace(t)
	git := newGitServer(t)
	alice := newKey(t, "Alice")
	git.Repo(t, "plain").Commit("main", map[string]string{"a.yaml": "a: 1\n"}, "unsigned")
	createBasicAuthSecret(t, ns, "git-auth")
	createSecret(t, ns, "pgp-keys", map[string][]byte{"alice.asc": armoredPublicKey(t, alice)})
	obj := newGitRepository(t, ns, "plain", git.HTTPURL("plain"), func(g *sourcev1.GitRepository) {
		withSecret("git-auth")(g)
		withVerify(sourcev1.ModeGitHEAD, "pgp-keys")(g)
	})
	got := waitRefused(t, obj, "InvalidCommitSignature")
	if got.Status.Artifact != nil {
		t.Errorf("an unsigned commit was stored: %s", got.Status.Artifact.Revision)
	}
	if conditions.Has(got, meta.StalledCondition) || !conditions.IsTrue(got, meta.ReconcilingCondition) {
		t.Errorf("a refused commit should be retried (a new commit may be signed): %s", describe(got))
	}
}

// Tag and TagAndHEAD verify the tag object: a lightweight or unsigned tag is
// refused, a tag signed by a trusted key passes, and TagAndHEAD also wants
// the commit signed. Tag mode on a branch can never pass and stalls.
func TestTagVerification(t *testing.T) {
	ns := env.Namespace(t)
	git := newGitServer(t)
	alice := newKey(t, "Alice")
	aliceID := alice.PrimaryKey.KeyIdString()
	repo := git.Repo(t, "tags")
	unsignedCommit := repo.Commit("main", map[string]string{"a.yaml": "a: 1\n"}, "unsigned commit")
	repo.Tag("v0.1.0", unsignedCommit, "")
	repo.Tag("v0.2.0", unsignedCommit, "annotated, unsigned")
	repo.SignWith(alice)
	repo.Tag("v0.3.0", unsignedCommit, "signed tag of an unsigned commit")
	signedCommit := repo.Commit("main", map[string]string{"a.yaml": "a: 2\n"}, "signed commit")
	repo.Tag("v1.0.0", signedCommit, "signed tag of a signed commit")
	createBasicAuthSecret(t, ns, "git-auth")
	createSecret(t, ns, "pgp-keys", map[string][]byte{"alice.asc": armoredPublicKey(t, alice)})

	refused := []struct {
		name, tag string
		mode      sourcev1.GitVerificationMode
		reason    string
		says      string
	}{
		{"lightweight", "v0.1.0", sourcev1.ModeGitTag, "InvalidGitObject", "cannot verify signature of tag 'v0.1.0' since it is not signed"},
		{"unsigned-tag", "v0.2.0", sourcev1.ModeGitTag, "InvalidGitObject", "since it is not signed"},
		{"unsigned-commit", "v0.3.0", sourcev1.ModeGitTagAndHEAD, "InvalidCommitSignature", "signature verification of commit '" + unsignedCommit.String() + "' failed: it is not signed"},
	}
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			obj := newGitRepository(t, ns, tc.name, git.HTTPURL("tags"), func(g *sourcev1.GitRepository) {
				withSecret("git-auth")(g)
				g.Spec.Reference = &sourcev1.GitRepositoryRef{Tag: tc.tag}
				withVerify(tc.mode, "pgp-keys")(g)
			})
			got := waitRefused(t, obj, tc.reason)
			msg := conditions.GetMessage(got, meta.ReadyCondition)
			if !strings.Contains(msg, tc.says) || !strings.Contains(msg, aliceID) {
				t.Errorf("Ready message %q, want it to say %q and name key %s", msg, tc.says, aliceID)
			}
			if got.Status.Artifact != nil {
				t.Errorf("artifact %s stored for a refused tag", got.Status.Artifact.Revision)
			}
		})
	}

	passed := []struct {
		name, tag string
		mode      sourcev1.GitVerificationMode
		commit    string
		lines     int
	}{
		{"signed-tag", "v0.3.0", sourcev1.ModeGitTag, unsignedCommit.String(), 1},
		{"signed-tag-and-commit", "v1.0.0", sourcev1.ModeGitTagAndHEAD, signedCommit.String(), 2},
	}
	for _, tc := range passed {
		t.Run(tc.name, func(t *testing.T) {
			obj := newGitRepository(t, ns, tc.name, git.HTTPURL("tags"), func(g *sourcev1.GitRepository) {
				withSecret("git-auth")(g)
				g.Spec.Reference = &sourcev1.GitRepositoryRef{Tag: tc.tag}
				withVerify(tc.mode, "pgp-keys")(g)
			})
			got := waitReady(t, obj, tc.tag+"@sha1:"+tc.commit)
			msg := conditions.GetMessage(got, sourcev1.SourceVerifiedCondition)
			if !strings.HasPrefix(msg, "verified signature of\n\t- tag '"+tc.tag+"@") || strings.Count(msg, "with key '"+aliceID+"'") != tc.lines {
				t.Errorf("SourceVerified message = %q", msg)
			}
			if tc.lines == 2 && !strings.Contains(msg, "\n\t- commit '"+tc.commit+"' with key") {
				t.Errorf("SourceVerified message %q does not name the commit", msg)
			}
		})
	}

	t.Run("tag-mode-on-a-branch", func(t *testing.T) {
		obj := newGitRepository(t, ns, "branch", git.HTTPURL("tags"), func(g *sourcev1.GitRepository) {
			withSecret("git-auth")(g)
			withVerify(sourcev1.ModeGitTag, "pgp-keys")(g)
		})
		got := waitRefused(t, obj, "InvalidVerificationMode")
		if !conditions.IsTrue(got, meta.StalledCondition) {
			t.Errorf("Tag mode on a branch should stall: %s", describe(got))
		}
	})
}

// A verification Secret that is missing or holds no OpenPGP key is a
// VerificationError, and nothing is stored.
func TestVerificationSecretErrors(t *testing.T) {
	ns := env.Namespace(t)
	git := newGitServer(t)
	alice := newKey(t, "Alice")
	repo := git.Repo(t, "keys")
	repo.SignWith(alice)
	repo.Commit("main", map[string]string{"a.yaml": "a: 1\n"}, "signed")
	createBasicAuthSecret(t, ns, "git-auth")
	createSecret(t, ns, "not-keys", map[string][]byte{"alice.asc": []byte("not a key")})
	for name, secret := range map[string]string{"missing": "absent", "garbage": "not-keys"} {
		t.Run(name, func(t *testing.T) {
			obj := newGitRepository(t, ns, name, git.HTTPURL("keys"), func(g *sourcev1.GitRepository) {
				withSecret("git-auth")(g)
				withVerify(sourcev1.ModeGitHEAD, secret)(g)
			})
			got := waitRefused(t, obj, sourcev1.VerificationError)
			if got.Status.Artifact != nil {
				t.Errorf("artifact stored without verification: %s", got.Status.Artifact.Revision)
			}
		})
	}
}

// Adding verify to a Ready object checks its current commit at once, even
// though the remote did not move: an unsigned one is refused, and the
// artifact it had is still served.
func TestAddingVerifyChecksTheCurrentCommit(t *testing.T) {
	ns := env.Namespace(t)
	git := newGitServer(t)
	alice := newKey(t, "Alice")
	h := git.Repo(t, "app").Commit("main", map[string]string{"a.yaml": "a: 1\n"}, "unsigned")
	createBasicAuthSecret(t, ns, "git-auth")
	createSecret(t, ns, "pgp-keys", map[string][]byte{"alice.asc": armoredPublicKey(t, alice)})
	obj := newGitRepository(t, ns, "app", git.HTTPURL("app"), withSecret("git-auth"))
	stored := waitReady(t, obj, "main@sha1:"+h.String()).Status.Artifact

	latest := &sourcev1.GitRepository{}
	if err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(obj), latest); err != nil {
		t.Fatal(err)
	}
	patch := client.MergeFrom(latest.DeepCopy())
	withVerify(sourcev1.ModeGitHEAD, "pgp-keys")(latest)
	if err := env.Client.Patch(context.Background(), latest, patch); err != nil {
		t.Fatal(err)
	}
	got := waitRefused(t, obj, "InvalidCommitSignature")
	if got.Status.Artifact == nil || got.Status.Artifact.Digest != stored.Digest || !conditions.IsTrue(got, sourcev1.ArtifactInStorageCondition) {
		t.Errorf("the previous artifact is not served any more: %s", describe(got))
	}
	if got.Status.SourceVerificationMode != nil {
		t.Errorf("status.sourceVerificationMode = %s for a commit that did not verify", *got.Status.SourceVerificationMode)
	}
}

// sshSigner signs as `git commit -S` does with gpg.format=ssh.
type sshSigner struct{ ssh.Signer }

func (s sshSigner) Sign(r io.Reader) ([]byte, error) {
	sig, err := sshsig.Sign(r, s.Signer, sshsig.HashSHA512, "git")
	if err != nil {
		return nil, err
	}
	return sshsig.Armor(sig), nil
}

func newSSHSigner(t *testing.T) ssh.Signer {
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

// SSH-signed commits verify against the keys under .sshpub names, and
// SourceVerified names the key by its SHA256 fingerprint; another SSH key
// is refused with its fingerprint.
func TestSSHSignedCommits(t *testing.T) {
	ns := env.Namespace(t)
	git := newGitServer(t)
	deploy, stranger := newSSHSigner(t), newSSHSigner(t)
	repo := git.Repo(t, "ssh-signed")
	repo.SignCommitsWith(sshSigner{deploy})
	h := repo.Commit("main", map[string]string{"a.yaml": "a: 1\n"}, "ssh-signed")
	createBasicAuthSecret(t, ns, "git-auth")
	createSecret(t, ns, "keys", map[string][]byte{"deploy.sshpub": ssh.MarshalAuthorizedKey(deploy.PublicKey())})
	obj := newGitRepository(t, ns, "ssh-signed", git.HTTPURL("ssh-signed"), func(g *sourcev1.GitRepository) {
		withSecret("git-auth")(g)
		withVerify(sourcev1.ModeGitHEAD, "keys")(g)
	})
	got := waitReady(t, obj, "main@sha1:"+h.String())
	want := "verified signature of\n\t- commit '" + h.String() + "' with key '" + ssh.FingerprintSHA256(deploy.PublicKey()) + "'"
	if msg := conditions.GetMessage(got, sourcev1.SourceVerifiedCondition); msg != want {
		t.Errorf("SourceVerified message = %q, want %q", msg, want)
	}

	repo.SignCommitsWith(sshSigner{stranger})
	bad := repo.Commit("main", map[string]string{"a.yaml": "a: 2\n"}, "signed by a stranger")
	requestReconcile(t, obj)
	got = waitFor(t, 30*time.Second, "the stranger's commit refused", obj, func(g *sourcev1.GitRepository) bool {
		return strings.Contains(conditions.GetMessage(g, meta.ReadyCondition), bad.String())
	})
	msg := conditions.GetMessage(got, meta.ReadyCondition)
	if conditions.GetReason(got, meta.ReadyCondition) != "InvalidCommitSignature" ||
		!strings.Contains(msg, "signed by key "+ssh.FingerprintSHA256(stranger.PublicKey())) || !strings.Contains(msg, ssh.FingerprintSHA256(deploy.PublicKey())) {
		t.Errorf("Ready = %s, want InvalidCommitSignature naming both keys", describe(got))
	}
	if got.Status.Artifact.Revision != "main@sha1:"+h.String() {
		t.Errorf("artifact moved to %s", got.Status.Artifact.Revision)
	}
}

func waitConfigMapValue(t *testing.T, ns, name, value string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		var cm corev1.ConfigMap
		err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, &cm)
		if err == nil && cm.Data["value"] == value {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("ConfigMap %s/%s never had value %q (last: %v, %v)", ns, name, value, cm.Data, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
