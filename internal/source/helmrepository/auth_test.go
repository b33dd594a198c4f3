package helmrepository_test

import (
	"strings"
	"testing"

	"github.com/fluxcd/pkg/apis/meta"
	"github.com/fluxcd/pkg/runtime/conditions"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"

	"github.com/weirhq/weir/internal/testenv"
)

func TestBasicAuth(t *testing.T) {
	ns := env.Namespace(t)
	hr := testenv.NewHelmRepo(t, repoUser, repoPassword)
	hr.AddChart(t, testenv.WriteChart(t, "app", "1.0.0", nil))
	createSecret(t, ns, "good", map[string][]byte{"username": []byte(repoUser), "password": []byte(repoPassword)})
	createSecret(t, ns, "bad", map[string][]byte{"username": []byte(repoUser), "password": []byte("wrong")})
	createSecret(t, ns, "half", map[string][]byte{"username": []byte(repoUser)})

	t.Run("good credentials", func(t *testing.T) {
		got := waitReady(t, newHelmRepository(t, ns, "good", hr.URL, withSecret("good")))
		if got.Status.Artifact.Revision != sha256Revision(hr.Index()) {
			t.Errorf("revision %s", got.Status.Artifact.Revision)
		}
	})
	cases := []struct {
		name, secret, want string
	}{
		{"no credentials", "", "Helm repository " + strings.TrimPrefix(hr.URL, "http://") + " requires authentication (401 Unauthorized): set spec.secretRef"},
		{"wrong password", "bad", "refused the credentials of secret 'bad' (401 Unauthorized)"},
		{"a username without a password", "half", "malformed basic auth - has 'username' but missing 'password'"},
		{"a secret that does not exist", "missing", "failed to get authentication secret '" + ns + "/missing'"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var mutate func(*sourcev1.HelmRepository)
			if c.secret != "" {
				mutate = withSecret(c.secret)
			}
			got := waitNotReady(t, newHelmRepository(t, ns, strings.ToLower(strings.ReplaceAll(c.name, " ", "-")), hr.URL, mutate))
			ready := conditions.Get(got, meta.ReadyCondition)
			if !strings.Contains(ready.Message, c.want) {
				t.Errorf("Ready message %q, want it to say %q", ready.Message, c.want)
			}
			if strings.Contains(ready.Message, repoPassword) || strings.Contains(ready.Message, "wrong") {
				t.Errorf("the message quotes a password: %q", ready.Message)
			}
			if got.Status.Artifact != nil {
				t.Errorf("an artifact without access: %+v", got.Status.Artifact)
			}
		})
	}
}

func TestTLSWithCertSecretRef(t *testing.T) {
	ns := env.Namespace(t)
	hr := testenv.NewTLSHelmRepo(t, "", "")
	hr.AddChart(t, testenv.WriteChart(t, "app", "1.0.0", nil))

	untrusted := waitNotReady(t, newHelmRepository(t, ns, "untrusted", hr.URL, nil))
	if msg := conditions.GetMessage(untrusted, meta.ReadyCondition); !strings.Contains(msg, "is not trusted") || !strings.Contains(msg, "spec.certSecretRef") {
		t.Errorf("without the authority: %q", msg)
	}

	createSecret(t, ns, "ca", map[string][]byte{"ca.crt": hr.CACertPEM()})
	got := waitReady(t, newHelmRepository(t, ns, "trusted", hr.URL, func(o *sourcev1.HelmRepository) {
		o.Spec.CertSecretRef = &meta.LocalObjectReference{Name: "ca"}
	}))
	if got.Status.Artifact.Revision != sha256Revision(hr.Index()) {
		t.Errorf("revision %s", got.Status.Artifact.Revision)
	}
}
