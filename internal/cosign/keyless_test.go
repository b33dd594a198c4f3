package cosign_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/weirhq/weir/internal/cosign"
	"github.com/weirhq/weir/internal/testenv"
)

const (
	ghIssuer  = "https://token.actions.githubusercontent.com"
	workflow  = "https://github.com/weirhq/apps/.github/workflows/release.yaml@refs/heads/main"
	otherRepo = "https://github.com/someone/else/.github/workflows/release.yaml@refs/heads/main"
)

func TestVerifyKeylessAcceptsOnlyATrustedCertificateOfAnExpectedIdentity(t *testing.T) {
	reg := testenv.NewRegistry(t, "", "")
	sigstore := testenv.NewSigstore(t)
	otherCA, otherSigstore := sigstore.OtherAuthority(t), testenv.NewSigstore(t)
	tr, err := cosign.ParseTrustedRoot("test root", sigstore.TrustedRootJSON(t))
	if err != nil {
		t.Fatal(err)
	}
	ids := []cosign.Identity{
		{Issuer: "^https://gitlab.example.com$", Subject: "^weir@example.com$"},
		{Issuer: "^" + ghIssuer + "$", Subject: "^https://github.com/weirhq/apps/"},
	}
	opts := []remote.Option{remote.WithTransport(reg.Registry().Transport())}
	n := 0
	push := func(sign func(repo, digest string)) name.Digest {
		n++
		repo := "app" + string(rune('a'+n))
		d := reg.PushFiles(t, repo, "latest", map[string]string{"a.yaml": repo}, nil)
		if sign != nil {
			sign(repo, d)
		}
		ref, err := name.NewDigest(reg.Host+"/"+repo+"@"+d, name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		return ref
	}
	keyless := func(s *testenv.Sigstore, ks testenv.KeylessSignature) func(repo, digest string) {
		return func(repo, digest string) { reg.CosignSignKeyless(t, repo, digest, s, ks) }
	}
	good := testenv.KeylessSignature{Subject: workflow, Issuer: ghIssuer}

	signed := push(keyless(sigstore, good))
	s, err := cosign.VerifyKeyless(context.Background(), signed, tr, ids, opts...)
	if err != nil {
		t.Fatalf("a good keyless signature is refused: %v", err)
	}
	if s.Subject != workflow || s.Issuer != ghIssuer {
		t.Errorf("signer %+v", s)
	}
	// As in cosign, the regular expressions are not anchored.
	if _, err := cosign.VerifyKeyless(context.Background(), signed, tr, []cosign.Identity{{Issuer: "githubusercontent", Subject: "weirhq/apps"}}, opts...); err != nil {
		t.Errorf("unanchored identities: %v", err)
	}
	// Without matchOIDCIdentity, any identity of the trusted root passes,
	// as in cosign.
	if _, err := cosign.VerifyKeyless(context.Background(), signed, tr, nil, opts...); err != nil {
		t.Errorf("without identities: %v", err)
	}

	for _, tc := range []struct {
		name string
		ref  name.Digest
		want string
	}{
		{"unsigned", push(nil), "the artifact is not signed (no signature tag 'sha256-"},
		{"wrong subject", push(keyless(sigstore, testenv.KeylessSignature{Subject: otherRepo, Issuer: ghIssuer})),
			"holds a signature by subject '" + otherRepo + "' with issuer '" + ghIssuer + "', which matches none of the expected identities"},
		{"wrong issuer", push(keyless(sigstore, testenv.KeylessSignature{Subject: workflow, Issuer: "https://token.actions.githubusercontent.com.evil.example"})),
			"which matches none of the expected identities"},
		{"another CA", push(keyless(otherCA, good)), "whose certificate was not issued by a certificate authority of test root"},
		{"another Sigstore", push(keyless(otherSigstore, good)), "that does not verify: failed to verify log inclusion"},
		{"tampered SET", push(keyless(sigstore, testenv.KeylessSignature{Subject: workflow, Issuer: ghIssuer, TamperSET: true})),
			"that does not verify: failed to verify log inclusion"},
		{"logged after the certificate expired", push(keyless(sigstore, testenv.KeylessSignature{Subject: workflow, Issuer: ghIssuer, LoggedAt: time.Now().Add(time.Hour)})),
			"that does not verify: failed to verify log inclusion: integrated time outside certificate validity"},
		{"signed with a key", push(func(repo, digest string) { reg.CosignSign(t, repo, digest, testenv.NewCosignKey(t)) }),
			"holds a signature made with a key, not a certificate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := cosign.VerifyKeyless(context.Background(), tc.ref, tr, ids, opts...)
			var ue *cosign.KeylessUnverifiedError
			if !errors.As(err, &ue) {
				t.Fatalf("got %v, want a KeylessUnverifiedError", err)
			}
			msg := err.Error()
			t.Log(msg)
			for _, want := range []string{
				"no matching signatures were found for '" + tc.ref.String() + "'", tc.want,
				"expected identities: issuer '^https://gitlab.example.com$' and subject '^weir@example.com$', or issuer '^" + ghIssuer + "$' and subject '^https://github.com/weirhq/apps/'",
			} {
				if !strings.Contains(msg, want) {
					t.Errorf("message %q does not say %q", msg, want)
				}
			}
		})
	}
}

func TestParseTrustedRootNamesWhatIsWrong(t *testing.T) {
	for _, tc := range []struct{ name, json, want string }{
		{"not JSON", "nope", "test root is not a Sigstore trusted root"},
		{"no authority", `{"mediaType":"application/vnd.dev.sigstore.trustedroot+json;version=0.1"}`, "test root names no certificate authority"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := cosign.ParseTrustedRoot("test root", []byte(tc.json))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want %q", err, tc.want)
			}
		})
	}
}

func TestRootsReadTheFileAgainWhenItChanges(t *testing.T) {
	file := filepath.Join(t.TempDir(), "trusted_root.json")
	roots := &cosign.Roots{File: file}
	if _, err := roots.Get(context.Background()); err == nil || !strings.Contains(err.Error(), "reading the trusted root of --sigstore-trusted-root") {
		t.Errorf("a missing file: got %v", err)
	}
	reg := testenv.NewRegistry(t, "", "")
	opts := []remote.Option{remote.WithTransport(reg.Registry().Transport())}
	d := reg.PushFiles(t, "app", "latest", map[string]string{"a.yaml": "a"}, nil)
	ref, err := name.NewDigest(reg.Host+"/app@"+d, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	first, second := testenv.NewSigstore(t), testenv.NewSigstore(t)
	reg.CosignSignKeyless(t, "app", d, second, testenv.KeylessSignature{Subject: workflow, Issuer: ghIssuer})
	verify := func() error {
		tr, err := roots.Get(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		_, err = cosign.VerifyKeyless(context.Background(), ref, tr, nil, opts...)
		return err
	}
	if err := os.WriteFile(file, first.TrustedRootJSON(t), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := verify(); err == nil {
		t.Fatal("a signature of another Sigstore verifies")
	}
	if err := os.WriteFile(file, second.TrustedRootJSON(t), 0o600); err != nil {
		t.Fatal(err)
	}
	// Another modification time, whatever the file system's resolution.
	if err := os.Chtimes(file, time.Now(), time.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := verify(); err != nil {
		t.Errorf("the new trusted root is not used: %v", err)
	}
}
