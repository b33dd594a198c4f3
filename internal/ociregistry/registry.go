package ociregistry

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/registry"
)

// Options configure a registry. The zero value serves plain HTTP on a free
// port of 127.0.0.1 and lets anyone in.
type Options struct {
	// Addr is the address to listen on; empty means 127.0.0.1:0.
	Addr string
	// Username and Password, when Username is set, are asked for with
	// basic auth on every request.
	Username, Password string
	// TLS serves HTTPS with a certificate for 127.0.0.1 and localhost
	// signed by a throwaway authority (see CACertPEM).
	TLS bool
	// Referrers serves the OCI 1.1 referrers API; without it, clients
	// fall back to the sha256-<hex> referrers tag.
	Referrers bool
}

// Registry is a running OCI registry. It counts the manifest and blob
// requests it serves, so that a caller can tell a digest check (HEAD) from
// a pull (GET).
type Registry struct {
	// Host is the registry's host:port, as in oci://Host/repo.
	Host string

	opts      Options
	srv       *http.Server
	served    chan struct{}
	stopOnce  sync.Once
	caPEM     []byte
	transport http.RoundTripper

	manifestHeads, manifestGets, blobGets atomic.Int64
}

// Counts are the requests a Registry has served.
type Counts struct {
	// ManifestHeads are HEAD requests of a manifest: digest checks.
	ManifestHeads int64
	// ManifestGets are GET requests of a manifest: the start of a pull.
	ManifestGets int64
	// BlobGets are GET requests of a layer or config blob.
	BlobGets int64
}

// Start listens on opts.Addr and serves an empty registry until Stop.
func Start(ctx context.Context, opts Options) (*Registry, error) {
	addr := opts.Addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	var lc net.ListenConfig
	l, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("starting the OCI registry on %s: %w", addr, err)
	}
	r := &Registry{Host: l.Addr().String(), opts: opts, served: make(chan struct{})}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	reg := registry.New(registry.Logger(log.New(io.Discard, "", 0)), registry.WithReferrersSupport(opts.Referrers))
	r.srv = &http.Server{
		Handler:           r.wrap(reg),
		ReadHeaderTimeout: 30 * time.Second,
		// Clients try TLS first on loopback, then plain HTTP: the attempt
		// that fails is noise.
		ErrorLog: log.New(io.Discard, "", 0),
	}
	if opts.TLS {
		cert, caPEM, err := selfSigned()
		if err != nil {
			l.Close()
			return nil, err
		}
		r.caPEM = caPEM
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(caPEM)
		transport.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
		l = tls.NewListener(l, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
	}
	r.transport = transport
	go func() {
		defer close(r.served)
		_ = r.srv.Serve(l)
	}()
	return r, nil
}

// Stop shuts the registry down and forgets what it held: from then on its
// address refuses connections, as a registry that is down does. It may be
// called more than once.
func (r *Registry) Stop() {
	r.stopOnce.Do(func() {
		_ = r.srv.Close()
		<-r.served
	})
}

// URL is the oci:// address of repository repo.
func (r *Registry) URL(repo string) string { return "oci://" + r.Host + "/" + repo }

// Counts returns the requests served so far.
func (r *Registry) Counts() Counts {
	return Counts{
		ManifestHeads: r.manifestHeads.Load(),
		ManifestGets:  r.manifestGets.Load(),
		BlobGets:      r.blobGets.Load(),
	}
}

// CACertPEM is the PEM certificate of the authority that signed a TLS
// registry's certificate, for a certSecretRef's ca.crt; nil over HTTP.
func (r *Registry) CACertPEM() []byte { return r.caPEM }

// Transport is an HTTP transport that trusts the registry's certificate
// (over TLS), for clients that talk to it.
func (r *Registry) Transport() http.RoundTripper { return r.transport }

// Auth is the registry's own credentials, anonymous without basic auth.
func (r *Registry) Auth() authn.Authenticator {
	if r.opts.Username == "" {
		return authn.Anonymous
	}
	return &authn.Basic{Username: r.opts.Username, Password: r.opts.Password}
}

// wrap counts requests and checks credentials in front of the registry.
func (r *Registry) wrap(next http.Handler) http.Handler {
	user, password := []byte(r.opts.Username), []byte(r.opts.Password)
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		switch p := req.URL.Path; {
		case strings.Contains(p, "/manifests/") && req.Method == http.MethodHead:
			r.manifestHeads.Add(1)
		case strings.Contains(p, "/manifests/") && req.Method == http.MethodGet:
			r.manifestGets.Add(1)
		case strings.Contains(p, "/blobs/sha256:") && req.Method == http.MethodGet:
			r.blobGets.Add(1)
		}
		if len(user) > 0 {
			u, p, ok := req.BasicAuth()
			// Both compared every time, so that the reply's timing tells
			// nothing about which one was wrong.
			userOK := subtle.ConstantTimeCompare([]byte(u), user)
			passwordOK := subtle.ConstantTimeCompare([]byte(p), password)
			if !ok || userOK&passwordOK != 1 {
				w.Header().Set("WWW-Authenticate", `Basic realm="weir"`)
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusUnauthorized)
				_, _ = io.WriteString(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`)
				return
			}
		}
		next.ServeHTTP(w, req)
	})
}

// selfSigned makes a certificate for 127.0.0.1, ::1 and localhost that is
// its own authority, as net/http/httptest's is.
func selfSigned() (tls.Certificate, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("making a key for the registry's certificate: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("making a serial number for the registry's certificate: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{Organization: []string{"weir local registry"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(10 * 365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("signing the registry's certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("reading back the registry's certificate: %w", err)
	}
	cert := tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
	return cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), nil
}
