package githubapp

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// A token is reused until 80% of its lifetime has passed, then renewed.
func TestTokenIsCachedUntilNearExpiry(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
	clock := time.Now()
	var issued atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/app/installations/7/access_tokens" || !strings.HasPrefix(r.Header.Get("Authorization"), "Bearer ") {
			http.NotFound(w, r)
			return
		}
		n := issued.Add(1)
		w.WriteHeader(http.StatusCreated)
		_ = json.NewEncoder(w).Encode(map[string]any{"token": fmt.Sprintf("token-%d", n), "expires_at": clock.Add(time.Hour)})
	}))
	defer srv.Close()
	app, err := FromSecret(map[string][]byte{
		KeyAppID: []byte("1"), KeyAppInstallationID: []byte("7"), KeyAppPrivateKey: keyPEM, KeyAppBaseURL: []byte(srv.URL + "/"),
	})
	if err != nil {
		t.Fatal(err)
	}
	now := clock
	tokens := &Tokens{now: func() time.Time { return now }}
	for _, step := range []struct {
		after time.Duration
		want  string
	}{{0, "token-1"}, {47 * time.Minute, "token-1"}, {49 * time.Minute, "token-2"}} {
		now = clock.Add(step.after)
		got, err := tokens.Token(context.Background(), app, srv.Client())
		if err != nil {
			t.Fatal(err)
		}
		if got != step.want {
			t.Errorf("after %s: token %s, want %s", step.after, got, step.want)
		}
	}
}

func TestFromSecretChecksTheAppData(t *testing.T) {
	cases := map[string]map[string][]byte{
		"app ID must be provided":                  {KeyAppInstallationID: []byte("1"), KeyAppPrivateKey: []byte("x")},
		"app installation owner or ID must be":     {KeyAppID: []byte("1"), KeyAppPrivateKey: []byte("x")},
		"only one of app installation owner or ID": {KeyAppID: []byte("1"), KeyAppInstallationID: []byte("1"), KeyAppInstallationOwner: []byte("o"), KeyAppPrivateKey: []byte("x")},
		"private key must be provided":             {KeyAppID: []byte("1"), KeyAppInstallationID: []byte("1")},
		"could not parse private key":              {KeyAppID: []byte("1"), KeyAppInstallationID: []byte("1"), KeyAppPrivateKey: []byte("not a key")},
	}
	for want, data := range cases {
		if _, err := FromSecret(data); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("FromSecret error = %v, want %q", err, want)
		}
	}
}
