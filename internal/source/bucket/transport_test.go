package bucket_test

import (
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

	"github.com/weirhq/weir/internal/testenv"
)

func TestAnHTTPSEndpointIsTrustedWithCertSecretRef(t *testing.T) {
	ns := env.Namespace(t)
	s3 := testenv.NewTLSS3Server(t, accessKey, secretKey)
	s3.CreateBucket(t, "bkt")
	s3.PutObjects(t, "bkt", map[string]string{"a.yaml": "a"})
	createSecret(t, ns, "s3-creds", map[string][]byte{"accesskey": []byte(accessKey), "secretkey": []byte(secretKey)})
	createSecret(t, ns, "s3-ca", map[string][]byte{"ca.crt": s3.CACertPEM()})

	// Without the authority, the certificate is not trusted, and the
	// message says where to give it.
	untrusted := newBucket(t, ns, "untrusted", s3, "bkt", func(b *sourcev1.Bucket) { b.Spec.Insecure = false })
	got := waitNotReady(t, untrusted)
	if msg := conditions.GetMessage(got, meta.ReadyCondition); !strings.Contains(msg, "is not trusted") || !strings.Contains(msg, "spec.certSecretRef") {
		t.Errorf("Ready message %q", msg)
	}

	trusted := newBucket(t, ns, "trusted", s3, "bkt", func(b *sourcev1.Bucket) {
		b.Spec.Insecure = false
		b.Spec.CertSecretRef = &meta.LocalObjectReference{Name: "s3-ca"}
	})
	waitReady(t, trusted, fluxRevision(s3.ETags(t, "bkt", "")))
}

func TestProxySecretRefSendsRequestsThroughTheProxy(t *testing.T) {
	ns := env.Namespace(t)
	s3 := newServer(t, ns, "bkt", map[string]string{"a.yaml": "a"})
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
	createSecret(t, ns, "proxy", map[string][]byte{
		"address": []byte(proxy.URL), "username": []byte("proxy-user"), "password": []byte("proxy-pass"),
	})
	obj := newBucket(t, ns, "b", s3, "bkt", func(b *sourcev1.Bucket) {
		b.Spec.ProxySecretRef = &meta.LocalObjectReference{Name: "proxy"}
	})
	waitReady(t, obj, fluxRevision(s3.ETags(t, "bkt", "")))
	if proxied.Load() == 0 {
		t.Error("no request went through the proxy")
	}
}
