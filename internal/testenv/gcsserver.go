package testenv

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fsouza/fake-gcs-server/fakestorage"
)

// GCSServer is a Google Cloud Storage server on loopback for one test:
// fake-gcs-server (an implementation of the Cloud Storage JSON API and of
// its XML downloads) behind a check of OAuth 2.0 access tokens. The
// tokens come from the server's own token endpoint, which gives them as
// oauth2.googleapis.com does: for a JWT assertion signed with the private
// key of the server's one service account (ServiceAccountKey), and
// refuses anything else with Google's invalid_grant errors.
type GCSServer struct {
	// Endpoint is the server's host:port, as a Bucket's spec.endpoint
	// gives it, with spec.insecure.
	Endpoint string
	// ClientEmail is the address of the server's service account.
	ClientEmail string

	fake     *fakestorage.Server
	srv      *httptest.Server
	key      *rsa.PrivateKey
	keyID    string
	requests atomic.Int64

	mu     sync.Mutex
	tokens map[string]time.Time
}

// gcsTokenPath is where the server's token endpoint is.
const gcsTokenPath = "/token"

// NewGCSServer starts a Cloud Storage server on 127.0.0.1 over plain
// HTTP. It stops when the test ends.
func NewGCSServer(t testing.TB) *GCSServer {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatalf("generating the service account key: %v", err)
	}
	s := &GCSServer{
		ClientEmail: "weir-test@weir-test.iam.gserviceaccount.com",
		key:         key,
		keyID:       RandomName(16),
		tokens:      map[string]time.Time{},
	}
	s.srv = httptest.NewUnstartedServer(http.HandlerFunc(s.serveHTTP))
	s.Endpoint = s.srv.Listener.Addr().String()
	// The public host is the server's own address: the client library
	// downloads from http://<endpoint>/<bucket>/<object>, as from
	// storage.googleapis.com.
	s.fake, err = fakestorage.NewServerWithOptions(fakestorage.Options{NoListener: true, Scheme: "http", PublicHost: s.Endpoint})
	if err != nil {
		t.Fatalf("starting the Cloud Storage server: %v", err)
	}
	s.srv.Start()
	t.Cleanup(s.srv.Close)
	return s
}

// Requests is the number of requests the server has received.
func (s *GCSServer) Requests() int64 { return s.requests.Load() }

// ServiceAccountKey is the JSON key of the server's service account, as
// `gcloud iam service-accounts keys create` writes it, with the server's
// token endpoint as its token_uri.
func (s *GCSServer) ServiceAccountKey(t testing.TB) []byte {
	t.Helper()
	return s.serviceAccountKey(t, s.key)
}

// ForeignServiceAccountKey is ServiceAccountKey with another private key,
// as a key deleted and made again would be: the token endpoint refuses
// its assertions.
func (s *GCSServer) ForeignServiceAccountKey(t testing.TB) []byte {
	t.Helper()
	other, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return s.serviceAccountKey(t, other)
}

func (s *GCSServer) serviceAccountKey(t testing.TB, key *rsa.PrivateKey) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	js, err := json.Marshal(map[string]string{
		"type":           "service_account",
		"project_id":     "weir-test",
		"private_key_id": s.keyID,
		"private_key":    string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
		"client_email":   s.ClientEmail,
		"client_id":      "100000000000000000001",
		"auth_uri":       "https://accounts.google.com/o/oauth2/auth",
		"token_uri":      "http://" + s.Endpoint + gcsTokenPath,
	})
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// CreateBucket creates a bucket.
func (s *GCSServer) CreateBucket(t testing.TB, name string) {
	t.Helper()
	s.fake.CreateBucketWithOpts(fakestorage.CreateBucketOpts{Name: name})
}

// PutObjects writes objects, key to content, into a bucket.
func (s *GCSServer) PutObjects(t testing.TB, bucket string, objects map[string]string) {
	t.Helper()
	for key, content := range objects {
		obj := fakestorage.Object{ObjectAttrs: fakestorage.ObjectAttrs{BucketName: bucket, Name: key}, Content: []byte(content)}
		if err := s.fake.CreateObjectStreaming(obj.StreamingObject()); err != nil {
			t.Fatalf("writing %s to bucket %s: %v", key, bucket, err)
		}
	}
}

// RemoveObjects deletes objects from a bucket.
func (s *GCSServer) RemoveObjects(t testing.TB, bucket string, keys ...string) {
	t.Helper()
	for _, key := range keys {
		if err := s.fake.Backend().DeleteObject(bucket, key); err != nil {
			t.Fatalf("deleting %s from bucket %s: %v", key, bucket, err)
		}
	}
}

// ETags lists the objects of a bucket under prefix with their ETags, as
// the JSON API gives them.
func (s *GCSServer) ETags(t testing.TB, bucket, prefix string) map[string]string {
	t.Helper()
	objs, _, err := s.fake.ListObjectsWithOptions(bucket, fakestorage.ListOptions{Prefix: prefix})
	if err != nil {
		t.Fatalf("listing bucket %s: %v", bucket, err)
	}
	out := map[string]string{}
	for _, o := range objs {
		out[o.Name] = o.Etag
	}
	return out
}

func (s *GCSServer) serveHTTP(w http.ResponseWriter, r *http.Request) {
	s.requests.Add(1)
	if r.URL.Path == gcsTokenPath {
		s.token(w, r)
		return
	}
	if !s.authorized(r) {
		// The JSON API's answer to a missing or unknown token.
		w.Header().Set("Content-Type", "application/json; charset=UTF-8")
		w.Header().Set("WWW-Authenticate", `Bearer realm="https://accounts.google.com/"`)
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(`{"error":{"code":401,"message":"Invalid Credentials","errors":[{"message":"Invalid Credentials","domain":"global","reason":"authError","locationType":"header","location":"Authorization"}]}}`))
		return
	}
	s.fake.HTTPHandler().ServeHTTP(w, r)
}

func (s *GCSServer) authorized(r *http.Request) bool {
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	expiry, ok := s.tokens[token]
	return ok && time.Now().Before(expiry)
}

// token is the OAuth 2.0 token endpoint of service accounts: the JWT
// bearer grant (RFC 7523) with an assertion signed with RS256 by the
// service account's key, for its address, this endpoint's URL and some
// scopes, valid for at most an hour.
func (s *GCSServer) token(w http.ResponseWriter, r *http.Request) {
	refuse := func(code, description string) {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.WriteHeader(http.StatusBadRequest)
		_ = json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": description})
	}
	if r.Method != http.MethodPost {
		refuse("invalid_request", "Invalid request method.")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		refuse("invalid_request", "Invalid request body.")
		return
	}
	if r.PostForm.Get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer" {
		refuse("unsupported_grant_type", "Invalid grant_type: "+r.PostForm.Get("grant_type"))
		return
	}
	parts := strings.Split(r.PostForm.Get("assertion"), ".")
	if len(parts) != 3 {
		refuse("invalid_grant", "Invalid JWT: Token must be a short-lived token and in a reasonable timeframe.")
		return
	}
	var header struct {
		Alg string `json:"alg"`
		Kid string `json:"kid"`
	}
	var claims struct {
		Iss   string `json:"iss"`
		Scope string `json:"scope"`
		Aud   string `json:"aud"`
		Exp   int64  `json:"exp"`
		Iat   int64  `json:"iat"`
	}
	if decodeJWTPart(parts[0], &header) != nil || decodeJWTPart(parts[1], &claims) != nil || header.Alg != "RS256" {
		refuse("invalid_grant", "Invalid JWT: malformed header or claims.")
		return
	}
	if claims.Iss != s.ClientEmail || header.Kid != s.keyID {
		refuse("invalid_grant", "Invalid grant: account not found")
		return
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	digest := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if err != nil || rsa.VerifyPKCS1v15(&s.key.PublicKey, crypto.SHA256, digest[:], sig) != nil {
		refuse("invalid_grant", "Invalid JWT Signature.")
		return
	}
	now := time.Now()
	if subtle.ConstantTimeCompare([]byte(claims.Aud), []byte("http://"+s.Endpoint+gcsTokenPath)) != 1 {
		refuse("invalid_grant", "Invalid JWT: Failed audience check.")
		return
	}
	if claims.Exp < now.Unix() || claims.Exp-claims.Iat > 3600+300 || claims.Iat > now.Add(5*time.Minute).Unix() {
		refuse("invalid_grant", "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim.")
		return
	}
	if claims.Scope == "" {
		refuse("invalid_scope", "Invalid OAuth scope or ID token audience provided.")
		return
	}
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	token := "ya29.weir-" + hex.EncodeToString(b)
	s.mu.Lock()
	s.tokens[token] = now.Add(time.Hour)
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	_ = json.NewEncoder(w).Encode(map[string]any{"access_token": token, "token_type": "Bearer", "expires_in": 3599})
}

func decodeJWTPart(part string, v any) error {
	b, err := base64.RawURLEncoding.DecodeString(part)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}
