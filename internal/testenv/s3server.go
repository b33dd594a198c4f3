package testenv

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/pem"
	"encoding/xml"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3afero"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/spf13/afero"
)

// S3Region is the region of every S3Server.
const S3Region = "us-east-1"

// S3Server is an S3 API server on loopback for one test: gofakes3 (a
// complete implementation of the S3 HTTP API) over files in a temporary
// folder, behind a check of AWS Signature Version 4 that admits one
// access key and secret key and answers anything else as S3 does
// (InvalidAccessKeyId, SignatureDoesNotMatch, AccessDenied for anonymous
// requests).
type S3Server struct {
	// Endpoint is the server's host:port, as a Bucket's spec.endpoint
	// gives it (with spec.insecure, unless the server was started with TLS).
	Endpoint string
	// AccessKey and SecretKey are the credentials the server admits.
	AccessKey, SecretKey string

	client   *minio.Client
	srv      *httptest.Server
	requests atomic.Int64
}

// NewS3Server starts an S3 server on 127.0.0.1 that admits the given
// credentials only. It stops when the test ends.
func NewS3Server(t testing.TB, accessKey, secretKey string) *S3Server {
	t.Helper()
	return newS3Server(t, accessKey, secretKey, false)
}

// NewTLSS3Server is NewS3Server over HTTPS, with a certificate for
// 127.0.0.1 signed by a test authority that clients must be given
// (CACertPEM).
func NewTLSS3Server(t testing.TB, accessKey, secretKey string) *S3Server {
	t.Helper()
	return newS3Server(t, accessKey, secretKey, true)
}

func newS3Server(t testing.TB, accessKey, secretKey string, useTLS bool) *S3Server {
	t.Helper()
	backend, err := s3afero.MultiBucket(afero.NewBasePathFs(afero.NewOsFs(), t.TempDir()))
	if err != nil {
		t.Fatalf("starting the S3 backend: %v", err)
	}
	fake := gofakes3.New(backend, gofakes3.WithoutVersioning(), gofakes3.WithLogger(gofakes3.DiscardLog()))
	s := &S3Server{AccessKey: accessKey, SecretKey: secretKey}
	check := &sigV4Check{accessKey: accessKey, secretKey: secretKey, next: fake.Server()}
	s.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.requests.Add(1)
		check.ServeHTTP(w, r)
	}))
	if useTLS {
		s.srv.StartTLS()
	} else {
		s.srv.Start()
	}
	t.Cleanup(s.srv.Close)
	u, err := url.Parse(s.srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	s.Endpoint = u.Host
	s.client, err = minio.New(s.Endpoint, &minio.Options{
		Creds:     credentials.NewStaticV4(accessKey, secretKey, ""),
		Region:    S3Region,
		Secure:    useTLS,
		Transport: s.srv.Client().Transport,
	})
	if err != nil {
		t.Fatalf("creating the S3 test client: %v", err)
	}
	return s
}

// CACertPEM is the PEM certificate of the authority that signed a TLS
// server's certificate, for a certSecretRef's ca.crt; nil over HTTP.
func (s *S3Server) CACertPEM() []byte {
	if s.srv.Certificate() == nil {
		return nil
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.srv.Certificate().Raw})
}

// Requests is the number of requests the server has received.
func (s *S3Server) Requests() int64 { return s.requests.Load() }

// CreateBucket creates a bucket.
func (s *S3Server) CreateBucket(t testing.TB, name string) {
	t.Helper()
	if err := s.client.MakeBucket(context.Background(), name, minio.MakeBucketOptions{Region: S3Region}); err != nil {
		t.Fatalf("creating bucket %s: %v", name, err)
	}
}

// PutObjects uploads objects, key to content, into a bucket.
func (s *S3Server) PutObjects(t testing.TB, bucket string, objects map[string]string) {
	t.Helper()
	for key, content := range objects {
		_, err := s.client.PutObject(context.Background(), bucket, key, strings.NewReader(content), int64(len(content)), minio.PutObjectOptions{})
		if err != nil {
			t.Fatalf("uploading %s to bucket %s: %v", key, bucket, err)
		}
	}
}

// RemoveObjects deletes objects from a bucket.
func (s *S3Server) RemoveObjects(t testing.TB, bucket string, keys ...string) {
	t.Helper()
	for _, key := range keys {
		if err := s.client.RemoveObject(context.Background(), bucket, key, minio.RemoveObjectOptions{}); err != nil {
			t.Fatalf("deleting %s from bucket %s: %v", key, bucket, err)
		}
	}
}

// ETags lists the objects of a bucket with their ETags, as S3 gives them.
func (s *S3Server) ETags(t testing.TB, bucket, prefix string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for o := range s.client.ListObjects(context.Background(), bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
		if o.Err != nil {
			t.Fatalf("listing bucket %s: %v", bucket, o.Err)
		}
		out[o.Key] = o.ETag
	}
	return out
}

// sigV4Check admits requests signed with AWS Signature Version 4 by one
// access key: it signs the request again, as the client says it signed it
// (its signed headers, time and payload hash), and compares the
// signatures in constant time.
type sigV4Check struct {
	accessKey, secretKey string
	next                 http.Handler
}

func (c *sigV4Check) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	code, msg := c.check(r)
	if code == "" {
		c.next.ServeHTTP(w, r)
		return
	}
	var body bytes.Buffer
	body.WriteString(xml.Header)
	_ = xml.NewEncoder(&body).Encode(struct {
		XMLName xml.Name `xml:"Error"`
		Code    string
		Message string
	}{Code: code, Message: msg})
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(http.StatusForbidden)
	_, _ = w.Write(body.Bytes())
}

// check returns the S3 error code and message that refuse r, or "" when
// r is signed with the server's credentials.
func (c *sigV4Check) check(r *http.Request) (code, msg string) {
	const scheme = "AWS4-HMAC-SHA256 "
	header := r.Header.Get("Authorization")
	if header == "" {
		return "AccessDenied", "Access Denied"
	}
	if !strings.HasPrefix(header, scheme) {
		return "InvalidRequest", "Please use AWS4-HMAC-SHA256."
	}
	fields := map[string]string{}
	for _, f := range strings.Split(strings.TrimPrefix(header, scheme), ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(f), "=")
		fields[k] = v
	}
	scope := strings.Split(fields["Credential"], "/")
	if len(scope) != 5 || fields["SignedHeaders"] == "" || fields["Signature"] == "" {
		return "AuthorizationHeaderMalformed", "The authorization header is malformed."
	}
	if scope[0] != c.accessKey {
		return "InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist in our records."
	}
	region := scope[2]
	when, err := time.Parse("20060102T150405Z", r.Header.Get("X-Amz-Date"))
	if err != nil {
		return "AccessDenied", "AWS authentication requires a valid Date or x-amz-date header"
	}
	again := &http.Request{Method: r.Method, URL: r.URL, Host: r.Host, Header: http.Header{}}
	for _, h := range strings.Split(fields["SignedHeaders"], ";") {
		if h != "host" {
			again.Header[http.CanonicalHeaderKey(h)] = r.Header.Values(h)
		}
	}
	signer := v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true })
	creds := aws.Credentials{AccessKeyID: c.accessKey, SecretAccessKey: c.secretKey}
	if err := signer.SignHTTP(r.Context(), creds, again, r.Header.Get("X-Amz-Content-Sha256"), "s3", region, when); err != nil {
		return "AccessDenied", "Access Denied"
	}
	_, want, _ := strings.Cut(again.Header.Get("Authorization"), "Signature=")
	if subtle.ConstantTimeCompare([]byte(want), []byte(fields["Signature"])) != 1 {
		return "SignatureDoesNotMatch", "The request signature we calculated does not match the signature you provided. Check your key and signing method."
	}
	return "", ""
}
