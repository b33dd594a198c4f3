package cosign_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"

	"github.com/weirhq/weir/internal/cosign"
	"github.com/weirhq/weir/internal/testenv"
)

// bundleRegistries are the two ways a registry lists referrers: with the
// OCI 1.1 referrers API, and without it, where the referrers are in the
// sha256-<hex> tag.
var bundleRegistries = []struct {
	name string
	new  func(t *testing.T) *testenv.Registry
}{
	{"referrers API", func(t *testing.T) *testenv.Registry { return testenv.NewReferrersRegistry(t) }},
	{"referrers tag", func(t *testing.T) *testenv.Registry { return testenv.NewRegistry(t, "", "") }},
}

// pushArtifact pushes an artifact to repo of reg and returns its manifest.
func pushArtifact(t *testing.T, reg *testenv.Registry, repo string) name.Digest {
	t.Helper()
	d := reg.PushFiles(t, repo, "latest", map[string]string{"a.yaml": repo}, nil)
	ref, err := name.NewDigest(reg.Host+"/"+repo+"@"+d, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	return ref
}

// attachOther attaches a referrer that is not a sigstore bundle, as an
// SBOM is.
func attachOther(t *testing.T, d name.Digest, opts []remote.Option) {
	t.Helper()
	subject, err := remote.Head(d, opts...)
	if err != nil {
		t.Fatal(err)
	}
	img := mutate.ConfigMediaType(empty.Image, "application/spdx+json")
	img, err = mutate.Append(img, mutate.Addendum{Layer: static.NewLayer([]byte("{}"), "application/spdx+json")})
	if err != nil {
		t.Fatal(err)
	}
	img = mutate.Subject(img, v1.Descriptor{MediaType: subject.MediaType, Digest: subject.Digest, Size: subject.Size}).(v1.Image)
	h, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(d.Context().Digest(h.String()), img, opts...); err != nil {
		t.Fatal(err)
	}
}

func TestVerifyReadsTheBundlesOfCosignV3(t *testing.T) {
	for _, rt := range bundleRegistries {
		t.Run(rt.name, func(t *testing.T) {
			reg := rt.new(t)
			trusted, other := testenv.NewCosignKey(t), testenv.NewCosignKey(t)
			keys := keysSecret(t, map[string]*testenv.CosignKey{"cosign.pub": trusted})
			opts := []remote.Option{remote.WithTransport(reg.Registry().Transport())}
			attach := func(d name.Digest, bundle []byte) {
				reg.AttachBundle(t, d.RepositoryStr(), d.DigestStr(), bundle)
			}

			signed := pushArtifact(t, reg, "signed")
			attach(signed, other.CosignBundle(t, signed.DigestStr()))
			attachOther(t, signed, opts)
			attach(signed, trusted.CosignBundle(t, signed.DigestStr()))
			k, err := cosign.Verify(context.Background(), signed, keys, opts...)
			if err != nil {
				t.Fatalf("a bundle of the trusted key is refused: %v", err)
			}
			if k.Name != "cosign.pub" {
				t.Errorf("verified with %v", k)
			}
			if rt.name == "referrers tag" {
				// The bundles were found through the tag.
				idx, err := remote.Index(signed.Context().Tag(strings.Replace(signed.DigestStr(), ":", "-", 1)), opts...)
				if err != nil {
					t.Fatalf("no referrers tag: %v", err)
				}
				if m, _ := idx.IndexManifest(); len(m.Manifests) != 3 {
					t.Errorf("the referrers tag lists %d manifests, want 3", len(m.Manifests))
				}
			}

			// A message signature of the manifest itself, as cosign
			// sign-blob makes one, binds to it as well.
			blob := pushArtifact(t, reg, "blob")
			attach(blob, trusted.MessageBundle(t, blob.DigestStr()))
			if _, err := cosign.Verify(context.Background(), blob, keys, opts...); err != nil {
				t.Errorf("a message signature of the manifest is refused: %v", err)
			}
			blobOfOther := pushArtifact(t, reg, "blobofother")
			attach(blobOfOther, trusted.MessageBundle(t, signed.DigestStr()))

			// A signature by another key in the tag, a bundle by the
			// trusted key: either kind passes.
			mixed := pushArtifact(t, reg, "mixed")
			reg.CosignSign(t, "mixed", mixed.DigestStr(), other)
			attach(mixed, trusted.CosignBundle(t, mixed.DigestStr()))
			if _, err := cosign.Verify(context.Background(), mixed, keys, opts...); err != nil {
				t.Errorf("a bundle of the trusted key next to a signature of another is refused: %v", err)
			}

			byOther := pushArtifact(t, reg, "other")
			attach(byOther, other.CosignBundle(t, byOther.DigestStr()))
			copied := pushArtifact(t, reg, "copied")
			attach(copied, trusted.CosignBundle(t, signed.DigestStr()))
			both := pushArtifact(t, reg, "both")
			reg.CosignSign(t, "both", both.DigestStr(), other)
			attach(both, other.CosignBundle(t, both.DigestStr()))
			keyless := pushArtifact(t, reg, "keyless")
			attach(keyless, testenv.NewSigstore(t).CosignBundle(t, keyless.DigestStr(), testenv.KeylessSignature{Subject: workflow, Issuer: ghIssuer}))
			unsigned := pushArtifact(t, reg, "unsigned")
			attachOther(t, unsigned, opts)
			junk := pushArtifact(t, reg, "junk")
			attach(junk, []byte(`{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json"}`))
			huge := pushArtifact(t, reg, "huge")
			attach(huge, make([]byte, 1<<20+1))

			for _, tc := range []struct {
				name string
				ref  name.Digest
				want string
			}{
				{"unsigned", unsigned, "the artifact is not signed (no signature tag '" + strings.Replace(unsigned.DigestStr(), ":", "-", 1) + ".sig' and no sigstore bundle among its referrers)"},
				{"by another key", byOther, "': its referrers hold a bundle by another key; trusted keys"},
				{"for another digest", copied, "its referrers hold a bundle by cosign.pub for digest '" + signed.DigestStr() + "', not this one"},
				{"a message signature of another digest", blobOfOther, "its referrers hold a bundle by cosign.pub for digest '" + signed.DigestStr() + "', not this one"},
				{"both kinds by another key", both, "holds a signature by another key, and its referrers hold a bundle by another key"},
				{"keyless", keyless, "its referrers hold a keyless bundle by subject '" + workflow + "' with issuer '" + ghIssuer + "', not one made with a key"},
				{"not a bundle", junk, "its referrers hold a bundle that is not a valid sigstore bundle"},
				{"too large", huge, "its referrers hold a bundle of 1048577 bytes, over the 1048576 bytes limit"},
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
		})
	}
}

func TestVerifyKeylessReadsTheBundlesOfCosignV3(t *testing.T) {
	for _, rt := range bundleRegistries {
		t.Run(rt.name, func(t *testing.T) {
			reg := rt.new(t)
			sigstore := testenv.NewSigstore(t)
			tr, err := cosign.ParseTrustedRoot("test root", sigstore.TrustedRootJSON(t))
			if err != nil {
				t.Fatal(err)
			}
			ids := []cosign.Identity{{Issuer: "^" + ghIssuer + "$", Subject: "^https://github.com/weirhq/apps/"}}
			opts := []remote.Option{remote.WithTransport(reg.Registry().Transport())}
			good := testenv.KeylessSignature{Subject: workflow, Issuer: ghIssuer}
			n := 0
			push := func(s *testenv.Sigstore, ks testenv.KeylessSignature, forOther bool) name.Digest {
				n++
				d := pushArtifact(t, reg, "app"+string(rune('a'+n)))
				subject := d.DigestStr()
				if forOther {
					subject = "sha256:" + strings.Repeat("0", 64)
				}
				reg.AttachBundle(t, d.RepositoryStr(), d.DigestStr(), s.CosignBundle(t, subject, ks))
				return d
			}

			signed := push(sigstore, good, false)
			s, err := cosign.VerifyKeyless(context.Background(), signed, tr, ids, opts...)
			if err != nil {
				t.Fatalf("a good keyless bundle is refused: %v", err)
			}
			if s.Subject != workflow || s.Issuer != ghIssuer {
				t.Errorf("signer %+v", s)
			}

			byKey := pushArtifact(t, reg, "bykey")
			reg.AttachBundle(t, "bykey", byKey.DigestStr(), testenv.NewCosignKey(t).CosignBundle(t, byKey.DigestStr()))
			for _, tc := range []struct {
				name string
				ref  name.Digest
				want string
			}{
				{"wrong subject", push(sigstore, testenv.KeylessSignature{Subject: otherRepo, Issuer: ghIssuer}, false),
					"': its referrers hold a bundle by subject '" + otherRepo + "' with issuer '" + ghIssuer + "', which matches none of the expected identities; expected identities"},
				{"another CA", push(sigstore.OtherAuthority(t), good, false), "its referrers hold a bundle by subject '" + workflow + "' with issuer '" + ghIssuer + "' whose certificate was not issued by a certificate authority of test root"},
				{"another Sigstore", push(testenv.NewSigstore(t), good, false), "that does not verify"},
				{"tampered SET", push(sigstore, testenv.KeylessSignature{Subject: workflow, Issuer: ghIssuer, TamperSET: true}, false), "that does not verify"},
				{"for another digest", push(sigstore, good, true), "for digest 'sha256:" + strings.Repeat("0", 64) + "', not this one"},
				{"signed with a key", byKey, "its referrers hold a bundle made with a key, not a certificate"},
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
						"expected identities: issuer '^" + ghIssuer + "$' and subject '^https://github.com/weirhq/apps/'",
					} {
						if !strings.Contains(msg, want) {
							t.Errorf("message %q does not say %q", msg, want)
						}
					}
				})
			}
		})
	}
}

func TestVerifyReadsAtMost100Bundles(t *testing.T) {
	reg := testenv.NewReferrersRegistry(t)
	other := testenv.NewCosignKey(t)
	keys := keysSecret(t, map[string]*testenv.CosignKey{"cosign.pub": testenv.NewCosignKey(t)})
	opts := []remote.Option{remote.WithTransport(reg.Registry().Transport())}
	d := pushArtifact(t, reg, "many")
	for range 101 {
		reg.AttachBundle(t, "many", d.DigestStr(), other.CosignBundle(t, d.DigestStr()))
	}
	_, err := cosign.Verify(context.Background(), d, keys, opts...)
	want := "the referrers of '" + d.String() + "' hold 101 sigstore bundles, more than the 100 weir reads"
	if err == nil || err.Error() != want {
		t.Errorf("got %v, want %q", err, want)
	}
}
