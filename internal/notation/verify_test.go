package notation_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/weirhq/weir/internal/notation"
	"github.com/weirhq/weir/internal/testenv"
)

func policySecret(data map[string][]byte) *corev1.Secret {
	return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "notation"}, Data: data}
}

func TestVerifyAcceptsOnlyASignatureTheTrustPolicyTrusts(t *testing.T) {
	reg := testenv.NewRegistry(t, "user", "pass")
	trusted, other := testenv.NewNotationSigner(t, "trusted"), testenv.NewNotationSigner(t, "other")
	opts := []remote.Option{remote.WithTransport(reg.Registry().Transport()), remote.WithAuth(reg.Registry().Auth())}
	push := func(repo, content string) name.Digest {
		d := reg.PushFiles(t, repo, "latest", map[string]string{"a.yaml": content}, nil)
		ref, err := name.NewDigest(reg.Host+"/"+repo+"@"+d, name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		return ref
	}
	policy := func(scopes []string, subjects ...string) *notation.Policy {
		p, err := notation.PolicyFromSecret(policySecret(map[string][]byte{
			"trustpolicy.json": testenv.NotationTrustPolicy(t, "strict", scopes, subjects...),
			"ca.crt":           trusted.CACertPEM,
			"README":           []byte("not a certificate"),
		}))
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	strict := policy([]string{"*"}, trusted.Subject)

	signed := push("signed", "a")
	reg.NotationSign(t, "signed", signed.DigestStr(), trusted)
	res, err := notation.Verify(context.Background(), signed, strict, opts...)
	if err != nil || res != notation.Verified {
		t.Fatalf("a signature of the trusted certificate is refused: %v, %v", res, err)
	}
	// A scope naming the repository exactly applies too.
	if res, err := notation.Verify(context.Background(), signed, policy([]string{reg.Host + "/signed"}, trusted.Subject), opts...); err != nil || res != notation.Verified {
		t.Errorf("a policy scoped to the repository refuses it: %v, %v", res, err)
	}

	byOther := push("other", "b")
	reg.NotationSign(t, "other", byOther.DigestStr(), other)
	// Issued by the trusted CA, but not to the trusted identity: the
	// policy pins another subject.
	pinned := policy([]string{"*"}, "CN=someone else,O=weir tests,ST=WA,C=US")
	trustedCA := "trust policy statement 'weir' trusts [x509.subject: " + trusted.Subject + "] signing under the certificates ca.crt (CN=trusted root CA,O=weir tests,ST=WA,C=US)"

	for _, tc := range []struct {
		name   string
		ref    name.Digest
		policy *notation.Policy
		want   []string
	}{
		{"unsigned", push("unsigned", "c"), strict, []string{"no signature is associated with", "make sure the artifact was signed successfully", trustedCA}},
		{"signed by another CA", byOther, strict, []string{"signature verification failed", "the signature's certificate chain does not contain any trusted certificate", trustedCA}},
		{"another identity", signed, pinned, []string{"does not match the X.509 trusted identities", "trust policy statement 'weir' trusts [x509.subject: CN=someone else,O=weir tests,ST=WA,C=US]"}},
		{"out of scope", signed, policy([]string{reg.Host + "/elsewhere"}, trusted.Subject),
			[]string{"has no applicable trust policy statement", "the registryScopes of trustpolicy.json in secret 'ns/notation' are [" + reg.Host + "/elsewhere]"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := notation.Verify(context.Background(), tc.ref, tc.policy, opts...)
			var ue *notation.UnverifiedError
			if !errors.As(err, &ue) {
				t.Fatalf("got %v, want an UnverifiedError", err)
			}
			t.Log(err)
			for _, want := range tc.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("message %q does not say %q", err, want)
				}
			}
		})
	}

	t.Run("levels that verify nothing", func(t *testing.T) {
		for level, ref := range map[string]name.Digest{"skip": push("skipped", "s"), "audit": byOther} {
			p, err := notation.PolicyFromSecret(policySecret(map[string][]byte{
				"trustpolicy.json": testenv.NotationTrustPolicy(t, level, []string{"*"}, trusted.Subject),
				"ca.crt":           trusted.CACertPEM,
			}))
			if err != nil {
				t.Fatal(err)
			}
			if res, err := notation.Verify(context.Background(), ref, p, opts...); err != nil || res != notation.Skipped {
				t.Errorf("level %s: got %v, %v; want Skipped", level, res, err)
			}
		}
	})

	t.Run("through the referrers API", func(t *testing.T) {
		api := testenv.NewReferrersRegistry(t)
		d := api.PushFiles(t, "signed", "latest", map[string]string{"a.yaml": "a"}, nil)
		api.NotationSign(t, "signed", d, trusted)
		// The referrers tag that oras-go writes as well is removed: only
		// the API can find the signature.
		ref, err := name.NewDigest(api.Host+"/signed@"+d, name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		apiOpts := []remote.Option{remote.WithTransport(api.Registry().Transport())}
		if err := remote.Delete(ref.Context().Tag(strings.Replace(d, ":", "-", 1)), apiOpts...); err != nil {
			t.Fatal(err)
		}
		if res, err := notation.Verify(context.Background(), ref, strict, apiOpts...); err != nil || res != notation.Verified {
			t.Errorf("a signature found through the referrers API is refused: %v, %v", res, err)
		}
	})

	t.Run("without the registry's credentials", func(t *testing.T) {
		_, err := notation.Verify(context.Background(), signed, strict, remote.WithTransport(reg.Registry().Transport()))
		var ue *notation.UnverifiedError
		t.Log(err)
		if err == nil || errors.As(err, &ue) || !strings.Contains(err.Error(), "reading the notation signatures of") {
			t.Errorf("got %v, want a registry error", err)
		}
	})
}

func TestPolicyFromSecretNamesWhatIsWrong(t *testing.T) {
	ca := testenv.NewNotationSigner(t, "ca").CACertPEM
	good := testenv.NotationTrustPolicy(t, "strict", []string{"*"}, "*")
	for _, tc := range []struct {
		name string
		data map[string][]byte
		want string
	}{
		{"no trust policy", map[string][]byte{"ca.crt": ca}, "'trustpolicy.json' not found in secret 'ns/notation'"},
		{"not JSON", map[string][]byte{"trustpolicy.json": []byte("{"), "ca.crt": ca}, "error occurred while parsing trustpolicy.json"},
		{"no certificate", map[string][]byte{"trustpolicy.json": good, "ca.key": []byte("x")}, "no certificates found in secret 'ns/notation'"},
		{"not a certificate", map[string][]byte{"trustpolicy.json": good, "ca.pem": []byte("nope")}, "secret 'ns/notation': 'ca.pem' is not a PEM or DER certificate"},
		{"an invalid policy", map[string][]byte{"trustpolicy.json": []byte(`{"version":"1.0","trustPolicies":[{"name":"p","registryScopes":["*"],"signatureVerification":{"level":"strict"},"trustStores":["ca:x"],"trustedIdentities":["CN=no prefix"]}]}`), "ca.crt": ca},
			"trustpolicy.json in secret 'ns/notation' is not a valid trust policy: "},
		{"no version", map[string][]byte{"trustpolicy.json": []byte(`{"trustPolicies":[]}`), "ca.crt": ca},
			"trustpolicy.json in secret 'ns/notation' is not a valid trust policy: trust policy document has empty version"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := notation.PolicyFromSecret(policySecret(tc.data))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want %q", err, tc.want)
			}
		})
	}
	// A statement at level skip may keep its stores and identities, as
	// source-controller lets it.
	skip := []byte(`{"version":"1.0","trustPolicies":[{"name":"p","registryScopes":["*"],"signatureVerification":{"level":"skip"},"trustStores":["ca:x"],"trustedIdentities":["*"]}]}`)
	if _, err := notation.PolicyFromSecret(policySecret(map[string][]byte{"trustpolicy.json": skip, "ca.crt": ca})); err != nil {
		t.Errorf("a skip statement with stores is refused: %v", err)
	}
}
