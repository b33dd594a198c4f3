package oci_test

import (
	"context"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/fluxcd/pkg/apis/meta"
	"github.com/fluxcd/pkg/runtime/conditions"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/weirhq/weir/internal/testenv"
)

func TestDockerConfigSecretLogsIn(t *testing.T) {
	ns := env.Namespace(t)
	reg := testenv.NewRegistry(t, registryUser, registryPassword)
	digest := reg.PushFiles(t, "private", "v1", map[string]string{"a.yaml": "a: 1\n"}, nil)
	createPullSecret(t, ns, "regcred", reg, registryUser, registryPassword)
	obj := newOCIRepository(t, ns, "private", reg.URL("private"), all(withTag("v1"), withSecret("regcred")))
	got := waitReady(t, obj, "v1@"+digest)
	if files := artifactFiles(t, got.Status.Artifact); files["a.yaml"] != "a: 1\n" {
		t.Errorf("artifact files: %v", names(files))
	}
}

func TestAuthenticationFailures(t *testing.T) {
	ns := env.Namespace(t)
	reg := testenv.NewRegistry(t, registryUser, registryPassword)
	reg.PushFiles(t, "private", "v1", map[string]string{"a.yaml": "a: 1\n"}, nil)
	createPullSecret(t, ns, "wrong-password", reg, registryUser, "not-it")
	createPullSecret(t, ns, "other-registry", testenv.NewRegistry(t, "", ""), registryUser, registryPassword)
	createSecret(t, ns, "opaque", corev1.SecretTypeOpaque, map[string][]byte{"username": []byte(registryUser), "password": []byte(registryPassword)})
	createSecret(t, ns, "garbled", corev1.SecretTypeOpaque, map[string][]byte{corev1.DockerConfigJsonKey: []byte(`{"auths": {"x": ` + registryPassword)})

	cases := []struct {
		name, secret, reason, message string
	}{
		{"wrong-password", "wrong-password", sourcev1.OCIPullFailedReason,
			"registry " + reg.Host + " refused the credentials of secret 'wrong-password': authentication failed"},
		{"no-secret-ref", "", sourcev1.OCIPullFailedReason,
			"registry " + reg.Host + " requires authentication: set spec.secretRef"},
		{"login-for-another-registry", "other-registry", sourcev1.OCIPullFailedReason,
			"registry " + reg.Host + " requires authentication, and secret 'other-registry' holds no login for it"},
		{"missing-secret", "does-not-exist", sourcev1.AuthenticationFailedReason,
			"failed to get credential: failed to get secret '" + ns + "/does-not-exist'"},
		{"not-a-docker-config", "opaque", sourcev1.AuthenticationFailedReason,
			"secret 'opaque' has no '.dockerconfigjson' key"},
		{"garbled-docker-config", "garbled", sourcev1.AuthenticationFailedReason,
			"secret 'garbled': '.dockerconfigjson' is not a Docker config: invalid JSON"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			obj := newOCIRepository(t, ns, tc.name, reg.URL("private"), func(o *sourcev1.OCIRepository) {
				if tc.secret != "" {
					o.Spec.SecretRef = &meta.LocalObjectReference{Name: tc.secret}
				}
			})
			got := waitNotReady(t, obj)
			ready := conditions.Get(got, meta.ReadyCondition)
			if ready.Reason != tc.reason || !strings.Contains(ready.Message, tc.message) {
				t.Errorf("Ready = %s: %q, want reason %s and a message with %q", ready.Reason, ready.Message, tc.reason, tc.message)
			}
			if !conditions.IsTrue(got, sourcev1.FetchFailedCondition) {
				t.Errorf("FetchFailed is not True: %s", describe(got))
			}
			if strings.Contains(ready.Message, registryPassword) || strings.Contains(ready.Message, "not-it") {
				t.Errorf("a password leaked into the status: %q", ready.Message)
			}
		})
	}
}

func TestCertSecretRefTrustsTheRegistrysAuthority(t *testing.T) {
	ns := env.Namespace(t)
	reg := testenv.NewTLSRegistry(t, "", "")
	digest := reg.PushFiles(t, "app", "v1", map[string]string{"a.yaml": "a: 1\n"}, nil)
	createSecret(t, ns, "registry-ca", corev1.SecretTypeOpaque, map[string][]byte{"ca.crt": reg.CACertPEM()})

	trusted := newOCIRepository(t, ns, "trusted", reg.URL("app"), all(withTag("v1"), func(o *sourcev1.OCIRepository) {
		o.Spec.CertSecretRef = &meta.LocalObjectReference{Name: "registry-ca"}
	}))
	waitReady(t, trusted, "v1@"+digest)

	insecure := newOCIRepository(t, ns, "insecure", reg.URL("app"), all(withTag("v1"), func(o *sourcev1.OCIRepository) { o.Spec.Insecure = true }))
	waitReady(t, insecure, "v1@"+digest)

	untrusted := newOCIRepository(t, ns, "untrusted", reg.URL("app"), withTag("v1"))
	got := waitNotReady(t, untrusted)
	if msg := conditions.GetMessage(got, meta.ReadyCondition); !strings.Contains(msg, "the certificate of registry "+reg.Host+" is not trusted") {
		t.Errorf("Ready message %q does not say the certificate was not trusted", msg)
	}
}

func TestServiceAccountPullSecretsLogIn(t *testing.T) {
	ns := env.Namespace(t)
	reg := testenv.NewRegistry(t, registryUser, registryPassword)
	digest := reg.PushFiles(t, "private", "v1", map[string]string{"a.yaml": "a: 1\n"}, nil)
	createPullSecret(t, ns, "regcred", reg, registryUser, registryPassword)
	sa := &corev1.ServiceAccount{
		ObjectMeta:       metav1.ObjectMeta{Namespace: ns, Name: "puller"},
		ImagePullSecrets: []corev1.LocalObjectReference{{Name: "regcred"}},
	}
	if err := env.Client.Create(context.Background(), sa); err != nil {
		t.Fatal(err)
	}
	obj := newOCIRepository(t, ns, "private", reg.URL("private"), all(withTag("v1"), func(o *sourcev1.OCIRepository) {
		o.Spec.ServiceAccountName = "puller"
	}))
	waitReady(t, obj, "v1@"+digest)
}

func TestProxySecretRefSendsRequestsThroughTheProxy(t *testing.T) {
	ns := env.Namespace(t)
	reg := testenv.NewRegistry(t, "", "")
	digest := reg.PushFiles(t, "app", "v1", map[string]string{"a.yaml": "a: 1\n"}, nil)
	// A forward proxy for plain HTTP that asks for its own credentials.
	var proxied atomic.Int64
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Proxy-Authorization") != "Basic "+base64.StdEncoding.EncodeToString([]byte("proxy-user:proxy-pass")) {
			http.Error(w, "proxy authentication required", http.StatusProxyAuthRequired)
			return
		}
		proxied.Add(1)
		(&httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.URL = r.URL
			pr.Out.Header.Del("Proxy-Authorization")
		}}).ServeHTTP(w, r)
	}))
	defer proxy.Close()
	createSecret(t, ns, "proxy", corev1.SecretTypeOpaque, map[string][]byte{
		"address": []byte(proxy.URL), "username": []byte("proxy-user"), "password": []byte("proxy-pass"),
	})
	obj := newOCIRepository(t, ns, "app", reg.URL("app"), all(withTag("v1"), func(o *sourcev1.OCIRepository) {
		o.Spec.ProxySecretRef = &meta.LocalObjectReference{Name: "proxy"}
	}))
	waitReady(t, obj, "v1@"+digest)
	if proxied.Load() == 0 {
		t.Error("no request went through the proxy")
	}
}
