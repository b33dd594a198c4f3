package gitrepository_test

import (
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fluxcd/pkg/apis/meta"
	"github.com/fluxcd/pkg/runtime/conditions"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"

	"github.com/weirhq/weir/internal/testenv"
)

func TestSSHWithKnownHostKeyFetches(t *testing.T) {
	ns := env.Namespace(t)
	git := newGitServer(t)
	h := git.Repo(t, "ssh").Commit("main", map[string]string{"a.yaml": "a: 1\n"}, "first")
	createSecret(t, ns, "ssh-key", map[string][]byte{
		"identity":    testenv.SSHIdentity(t),
		"known_hosts": git.KnownHosts(t),
	})
	obj := newGitRepository(t, ns, "ssh", git.SSHURL("ssh"), withSecret("ssh-key"))
	got := waitReady(t, obj, "main@sha1:"+h.String())
	if files := artifactFiles(t, got.Status.Artifact); files["a.yaml"] != "a: 1\n" {
		t.Errorf("artifact files over SSH: %v", names(files))
	}
}

func TestSSHRejectsAWrongHostKey(t *testing.T) {
	ns := env.Namespace(t)
	git := newGitServer(t)
	git.Repo(t, "ssh").Commit("main", map[string]string{"a.yaml": "a: 1\n"}, "first")
	// The known_hosts entry of another server, under this server's address.
	other := newGitServer(t)
	wrong := strings.Replace(string(other.KnownHosts(t)), hostOf(other.SSHURL("x")), hostOf(git.SSHURL("x")), 1)
	createSecret(t, ns, "ssh-key", map[string][]byte{
		"identity":    testenv.SSHIdentity(t),
		"known_hosts": []byte(wrong),
	})
	obj := newGitRepository(t, ns, "ssh", git.SSHURL("ssh"), withSecret("ssh-key"))
	got := waitNotReady(t, obj, 30*time.Second)
	msg := conditions.GetMessage(got, meta.ReadyCondition)
	if !strings.Contains(msg, "host key") {
		t.Errorf("Ready message %q does not say the host key was rejected", msg)
	}
	if got.Status.Artifact != nil {
		t.Errorf("an artifact was stored from an unverified host: %s", got.Status.Artifact.Revision)
	}
}

// hostOf returns the [host]:port part of an ssh:// URL, as known_hosts
// writes it for a non-default port.
func hostOf(sshURL string) string {
	hostPort := strings.TrimPrefix(sshURL, "ssh://git@")
	hostPort = hostPort[:strings.Index(hostPort, "/")]
	host, port, _ := strings.Cut(hostPort, ":")
	return "[" + host + "]:" + port
}

func TestAuthenticationFailures(t *testing.T) {
	ns := env.Namespace(t)
	git := newGitServer(t)
	git.Repo(t, "private").Commit("main", map[string]string{"a.yaml": "a: 1\n"}, "first")
	createSecret(t, ns, "wrong-password", map[string][]byte{"username": []byte(gitUser), "password": []byte("not-it")})
	createSecret(t, ns, "no-password", map[string][]byte{"username": []byte(gitUser)})
	createSecret(t, ns, "ssh-no-identity", map[string][]byte{"known_hosts": git.KnownHosts(t)})

	cases := []struct {
		name, url, secret, reason, message string
	}{
		{"wrong-password", git.HTTPURL("private"), "wrong-password", sourcev1.GitOperationFailedReason, "authentication"},
		{"no-credentials", git.HTTPURL("private"), "", sourcev1.GitOperationFailedReason, "authentication"},
		{"missing-secret", git.HTTPURL("private"), "does-not-exist", sourcev1.AuthenticationFailedReason, "does-not-exist"},
		{"missing-key", git.HTTPURL("private"), "no-password", sourcev1.AuthenticationFailedReason, "'password'"},
		{"ssh-missing-identity", git.SSHURL("private"), "ssh-no-identity", sourcev1.AuthenticationFailedReason, "'identity'"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			obj := newGitRepository(t, ns, tc.name, tc.url, func(g *sourcev1.GitRepository) {
				if tc.secret != "" {
					g.Spec.SecretRef = &meta.LocalObjectReference{Name: tc.secret}
				}
			})
			got := waitNotReady(t, obj, 30*time.Second)
			ready := conditions.Get(got, meta.ReadyCondition)
			if ready.Reason != tc.reason || !strings.Contains(ready.Message, tc.message) {
				t.Errorf("Ready = %s: %q, want reason %s and a message naming %q", ready.Reason, ready.Message, tc.reason, tc.message)
			}
			if !conditions.IsTrue(got, sourcev1.FetchFailedCondition) {
				t.Errorf("FetchFailed is not True: %s", describe(got))
			}
			if strings.Contains(ready.Message, gitPassword) || strings.Contains(ready.Message, "not-it") {
				t.Errorf("a password leaked into the status: %q", ready.Message)
			}
		})
	}
}

// A GitRepository with proxySecretRef fetches through the proxy, which
// sees the credentials of the proxy Secret; a missing proxy Secret is an
// authentication failure, not a fetch that goes around the proxy.
func TestProxySecretRef(t *testing.T) {
	ns := env.Namespace(t)
	git := newGitServer(t)
	h := git.Repo(t, "proxied").Commit("main", map[string]string{"a.yaml": "a: 1\n"}, "first")
	var proxied atomic.Int32
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !r.URL.IsAbs() || r.Header.Get("Proxy-Authorization") != "Basic "+base64.StdEncoding.EncodeToString([]byte("squid:s3cret")) {
			http.Error(w, "proxy authentication required", http.StatusProxyAuthRequired)
			return
		}
		proxied.Add(1)
		httputil.NewSingleHostReverseProxy(&url.URL{Scheme: "http", Host: r.URL.Host}).ServeHTTP(w, r)
	}))
	t.Cleanup(proxy.Close)
	createSecret(t, ns, "git-auth", map[string][]byte{"username": []byte(gitUser), "password": []byte(gitPassword)})
	createSecret(t, ns, "proxy", map[string][]byte{"address": []byte(proxy.URL), "username": []byte("squid"), "password": []byte("s3cret")})

	obj := newGitRepository(t, ns, "proxied", git.HTTPURL("proxied"), func(g *sourcev1.GitRepository) {
		withSecret("git-auth")(g)
		g.Spec.ProxySecretRef = &meta.LocalObjectReference{Name: "proxy"}
	})
	waitReady(t, obj, "main@sha1:"+h.String())
	if proxied.Load() == 0 {
		t.Error("the GitRepository was fetched without going through its proxy")
	}

	missing := newGitRepository(t, ns, "no-proxy-secret", git.HTTPURL("proxied"), func(g *sourcev1.GitRepository) {
		withSecret("git-auth")(g)
		g.Spec.ProxySecretRef = &meta.LocalObjectReference{Name: "absent"}
	})
	got := waitNotReady(t, missing, 30*time.Second)
	if r := conditions.GetReason(got, meta.ReadyCondition); r != sourcev1.AuthenticationFailedReason {
		t.Errorf("Ready reason with a missing proxy Secret = %s (%s), want AuthenticationFailed", r, conditions.GetMessage(got, meta.ReadyCondition))
	}
}
