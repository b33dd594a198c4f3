package gitrepository_test

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fluxcd/pkg/apis/meta"
	"github.com/fluxcd/pkg/runtime/conditions"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	"github.com/golang-jwt/jwt/v5"

	"github.com/weirhq/weir/internal/testenv"
)

// githubAPI is a loopback stand-in for GitHub's App API: it checks the
// app's JWT against the app's public key and hands out the installation
// token, and records what it was asked.
type githubAPI struct {
	*httptest.Server
	mu    sync.Mutex
	calls []string
}

func newGitHubAPI(t *testing.T, appID string, public *rsa.PublicKey, installation int, token string) *githubAPI {
	api := &githubAPI{}
	api.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		api.mu.Lock()
		api.calls = append(api.calls, r.Method+" "+r.URL.Path)
		api.mu.Unlock()
		claims := &jwt.RegisteredClaims{}
		_, err := jwt.ParseWithClaims(strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer "), claims,
			func(*jwt.Token) (any, error) { return public, nil }, jwt.WithValidMethods([]string{"RS256"}), jwt.WithIssuer(appID), jwt.WithIssuedAt())
		if err != nil {
			w.WriteHeader(http.StatusUnauthorized)
			_ = json.NewEncoder(w).Encode(map[string]string{"message": "A JSON web token could not be decoded"})
			return
		}
		switch {
		case r.Method == http.MethodPost && r.URL.Path == "/api/v3/app/installations/42/access_tokens":
			w.WriteHeader(http.StatusCreated)
			_ = json.NewEncoder(w).Encode(map[string]any{"token": token, "expires_at": time.Now().Add(time.Hour).UTC().Format(time.RFC3339)})
		case r.Method == http.MethodGet && r.URL.Path == "/api/v3/users/acme/installation":
			_ = json.NewEncoder(w).Encode(map[string]any{"id": installation})
		default:
			w.WriteHeader(http.StatusNotFound)
			_ = json.NewEncoder(w).Encode(map[string]string{"message": "Not Found"})
		}
	}))
	t.Cleanup(api.Close)
	return api
}

func (a *githubAPI) Calls() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]string(nil), a.calls...)
}

// newRecordingProxy starts a forward HTTP proxy that records the requests
// it passes on, as "METHOD host/path".
func newRecordingProxy(t *testing.T) (address string, seen func() []string) {
	var mu sync.Mutex
	var requests []string
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !r.URL.IsAbs() {
			http.Error(w, "not a proxy request", http.StatusBadRequest)
			return
		}
		mu.Lock()
		requests = append(requests, r.Method+" "+r.URL.Host+r.URL.Path)
		mu.Unlock()
		httputil.NewSingleHostReverseProxy(&url.URL{Scheme: "http", Host: r.URL.Host}).ServeHTTP(w, r)
	}))
	t.Cleanup(proxy.Close)
	return proxy.URL, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), requests...)
	}
}

func rsaKeyPEM(t *testing.T) (*rsa.PrivateKey, []byte) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return key, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
}

// provider: github fetches with an installation token that weir gets by
// exchanging the app's JWT at <githubAppBaseURL>/app/installations/<id>/
// access_tokens, and reuses while it is fresh. The installation can also
// be found from its owner.
func TestGitHubAppProvider(t *testing.T) {
	ns := env.Namespace(t)
	const token = "ghs_installation-token-for-test"
	git := testenv.NewGitServer(t, "x-access-token", token)
	repo := git.Repo(t, "app")
	first := repo.Commit("main", map[string]string{"a.yaml": "a: 1\n"}, "first")
	key, keyPEM := rsaKeyPEM(t)
	api := newGitHubAPI(t, "123", &key.PublicKey, 42, token)

	createSecret(t, ns, "github-app", map[string][]byte{
		"githubAppID":             []byte("123"),
		"githubAppInstallationID": []byte("42"),
		"githubAppPrivateKey":     keyPEM,
		"githubAppBaseURL":        []byte(api.URL + "/api/v3"),
	})
	obj := newGitRepository(t, ns, "app", git.HTTPURL("app"), func(g *sourcev1.GitRepository) {
		withSecret("github-app")(g)
		g.Spec.Provider = sourcev1.GitProviderGitHub
	})
	waitReady(t, obj, "main@sha1:"+first.String())
	second := repo.Commit("main", map[string]string{"a.yaml": "a: 2\n"}, "second")
	requestReconcile(t, obj)
	waitReady(t, obj, "main@sha1:"+second.String())
	want := []string{"POST /api/v3/app/installations/42/access_tokens"}
	if got := api.Calls(); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("API calls = %v, want one token exchange, reused for the second fetch: %v", got, want)
	}

	t.Run("installation-owner", func(t *testing.T) {
		createSecret(t, ns, "github-app-owner", map[string][]byte{
			"githubAppID":                []byte("123"),
			"githubAppInstallationOwner": []byte("acme"),
			"githubAppPrivateKey":        keyPEM,
			"githubAppBaseURL":           []byte(api.URL + "/api/v3/"),
		})
		obj := newGitRepository(t, ns, "by-owner", git.HTTPURL("app"), func(g *sourcev1.GitRepository) {
			withSecret("github-app-owner")(g)
			g.Spec.Provider = sourcev1.GitProviderGitHub
		})
		waitReady(t, obj, "main@sha1:"+second.String())
		calls := strings.Join(api.Calls(), ",")
		if !strings.Contains(calls, "GET /api/v3/orgs/acme/installation,GET /api/v3/users/acme/installation,POST /api/v3/app/installations/42/access_tokens") {
			t.Errorf("API calls = %s, want the organisation, then the user looked up, then the token", calls)
		}
	})

	t.Run("through-the-proxy", func(t *testing.T) {
		// The token exchange and the fetch both go through proxySecretRef.
		proxy, seen := newRecordingProxy(t)
		createSecret(t, ns, "proxy", map[string][]byte{"address": []byte(proxy)})
		// Another app ID, so that no cached token is reused.
		proxiedAPI := newGitHubAPI(t, "456", &key.PublicKey, 42, token)
		createSecret(t, ns, "github-app-proxied", map[string][]byte{
			"githubAppID":             []byte("456"),
			"githubAppInstallationID": []byte("42"),
			"githubAppPrivateKey":     keyPEM,
			"githubAppBaseURL":        []byte(proxiedAPI.URL + "/api/v3"),
		})
		obj := newGitRepository(t, ns, "proxied", git.HTTPURL("app"), func(g *sourcev1.GitRepository) {
			withSecret("github-app-proxied")(g)
			g.Spec.Provider = sourcev1.GitProviderGitHub
			g.Spec.ProxySecretRef = &meta.LocalObjectReference{Name: "proxy"}
		})
		waitReady(t, obj, "main@sha1:"+second.String())
		all := strings.Join(seen(), ",")
		apiHost := strings.TrimPrefix(proxiedAPI.URL, "http://")
		if !strings.Contains(all, "POST "+apiHost+"/api/v3/app/installations/42/access_tokens") || !strings.Contains(all, "/app.git/git-upload-pack") {
			t.Errorf("the proxy saw %s, want the token exchange and the fetch", all)
		}
	})

	t.Run("key-not-the-apps", func(t *testing.T) {
		_, otherPEM := rsaKeyPEM(t)
		createSecret(t, ns, "github-app-wrong", map[string][]byte{
			"githubAppID":             []byte("123"),
			"githubAppInstallationID": []byte("42"),
			"githubAppPrivateKey":     otherPEM,
			"githubAppBaseURL":        []byte(api.URL + "/api/v3"),
		})
		obj := newGitRepository(t, ns, "wrong-key", git.HTTPURL("app"), func(g *sourcev1.GitRepository) {
			withSecret("github-app-wrong")(g)
			g.Spec.Provider = sourcev1.GitProviderGitHub
		})
		got := waitNotReady(t, obj, 30*time.Second)
		msg := conditions.GetMessage(got, meta.ReadyCondition)
		if conditions.GetReason(got, meta.ReadyCondition) != sourcev1.AuthenticationFailedReason || !strings.Contains(msg, "401") || !strings.Contains(msg, "A JSON web token could not be decoded") {
			t.Errorf("Ready = %s, want AuthenticationFailed with the API's refusal", describe(got))
		}
		if strings.Contains(msg, "PRIVATE KEY") {
			t.Errorf("the private key leaked into the status: %q", msg)
		}
	})

	t.Run("misconfigured", func(t *testing.T) {
		createBasicAuthSecret(t, ns, "basic")
		noSecret := newGitRepository(t, ns, "no-secret", git.HTTPURL("app"), func(g *sourcev1.GitRepository) {
			g.Spec.Provider = sourcev1.GitProviderGitHub
		})
		got := waitNotReady(t, noSecret, 30*time.Second)
		if conditions.GetReason(got, meta.ReadyCondition) != sourcev1.InvalidProviderConfigurationReason || !conditions.IsTrue(got, meta.StalledCondition) {
			t.Errorf("provider github without secretRef: %s, want Stalled InvalidProviderConfiguration", describe(got))
		}
		noAppData := newGitRepository(t, ns, "no-app-data", git.HTTPURL("app"), func(g *sourcev1.GitRepository) {
			withSecret("basic")(g)
			g.Spec.Provider = sourcev1.GitProviderGitHub
		})
		got = waitNotReady(t, noAppData, 30*time.Second)
		if conditions.GetReason(got, meta.ReadyCondition) != sourcev1.InvalidProviderConfigurationReason {
			t.Errorf("provider github with a Secret without app data: %s, want InvalidProviderConfiguration", describe(got))
		}
		azure := newGitRepository(t, ns, "azure", git.HTTPURL("app"), func(g *sourcev1.GitRepository) {
			withSecret("basic")(g)
			g.Spec.Provider = sourcev1.GitProviderAzure
		})
		got = waitNotReady(t, azure, 30*time.Second)
		if conditions.GetReason(got, meta.ReadyCondition) != sourcev1.InvalidProviderConfigurationReason || !conditions.IsTrue(got, meta.StalledCondition) ||
			!strings.Contains(conditions.GetMessage(got, meta.ReadyCondition), "provider 'azure' is not supported by weir") {
			t.Errorf("provider azure: %s, want Stalled InvalidProviderConfiguration saying it is not supported", describe(got))
		}
		generic := newGitRepository(t, ns, "generic-with-app", git.HTTPURL("app"), withSecret("github-app"))
		got = waitNotReady(t, generic, 30*time.Second)
		if conditions.GetReason(got, meta.ReadyCondition) != sourcev1.InvalidProviderConfigurationReason ||
			!strings.Contains(conditions.GetMessage(got, meta.ReadyCondition), "has github app data but provider is not set to github") {
			t.Errorf("app data with provider generic: %s, want InvalidProviderConfiguration", describe(got))
		}
	})
}
