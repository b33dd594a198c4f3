package helmrepository

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"github.com/fluxcd/pkg/runtime/secrets"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/weirhq/weir/internal/version"
)

// Getter fetches what a HelmRepository of type default serves, its index
// and its charts, with the credentials and TLS settings of its Secrets. A
// Getter holds its own transport: Close it when done.
type Getter struct {
	// URL is spec.url with one trailing slash.
	URL string

	base            *url.URL
	client          *http.Client
	transport       *http.Transport
	basic           *secrets.BasicAuth
	passCredentials bool
	// credentials names where the credentials came from ("secret 'x'"),
	// empty when the repository is accessed anonymously.
	credentials string
}

// Validators are what a server said about the index it sent, to ask next
// time whether it changed: its ETag and Last-Modified headers.
type Validators struct {
	ETag, LastModified string
}

// IsZero reports whether the server gave nothing to ask with.
func (v Validators) IsZero() bool { return v.ETag == "" && v.LastModified == "" }

// IndexResponse is the answer to FetchIndex.
type IndexResponse struct {
	// NotModified is true when the server answered 304: the index is the
	// one the validators describe, and Body is empty.
	NotModified bool
	// Body is the index as fetched.
	Body []byte
	// Validators describe Body (or, on 304, the index still current).
	Validators Validators
}

// NewGetter reads the Secrets of obj (spec.secretRef for basic auth, or
// TLS keys as Flux still reads them there; spec.certSecretRef for TLS,
// which takes precedence) and returns a Getter for its URL.
func NewGetter(ctx context.Context, c client.Reader, obj *sourcev1.HelmRepository) (*Getter, error) {
	normalized, err := NormalizeURL(obj.Spec.URL)
	if err != nil {
		return nil, fmt.Errorf("invalid Helm repository URL: %w", err)
	}
	base, err := url.Parse(normalized)
	if err != nil {
		return nil, fmt.Errorf("invalid Helm repository URL: %w", err)
	}
	g := &Getter{URL: normalized, base: base, passCredentials: obj.Spec.PassCredentials}

	var tlsConfig *tls.Config
	if ref := obj.Spec.CertSecretRef; ref != nil && ref.Name != "" {
		s, err := getSecret(ctx, c, obj.Namespace, ref.Name)
		if err != nil {
			return nil, fmt.Errorf("failed to get TLS authentication secret '%s/%s': %w", obj.Namespace, ref.Name, err)
		}
		// The system's authorities stay trusted, as in source-controller.
		if tlsConfig, err = secrets.TLSConfigFromSecret(ctx, s, secrets.WithSystemCertPool()); err != nil {
			return nil, fmt.Errorf("failed to construct Helm client's TLS config: %w", err)
		}
	}
	if ref := obj.Spec.SecretRef; ref != nil && ref.Name != "" {
		s, err := getSecret(ctx, c, obj.Namespace, ref.Name)
		if err != nil {
			return nil, fmt.Errorf("failed to get authentication secret '%s/%s': %w", obj.Namespace, ref.Name, err)
		}
		methods, err := secrets.AuthMethodsFromSecret(ctx, s, secrets.WithTLSSystemCertPool())
		if err != nil {
			return nil, fmt.Errorf("failed to detect authentication methods: %w", err)
		}
		if methods.HasBasicAuth() {
			g.basic = methods.Basic
			g.credentials = fmt.Sprintf("secret '%s'", ref.Name)
		}
		// Deprecated in Flux, still read: TLS keys in secretRef when
		// there is no certSecretRef.
		if tlsConfig == nil && methods.HasTLS() {
			tlsConfig = methods.TLS
		}
	}

	base2, ok := http.DefaultTransport.(*http.Transport)
	if !ok {
		return nil, fmt.Errorf("the default HTTP transport is a %T, not an *http.Transport", http.DefaultTransport)
	}
	g.transport = base2.Clone()
	if tlsConfig != nil {
		g.transport.TLSClientConfig = tlsConfig
	}
	g.client = &http.Client{Transport: g.transport}
	return g, nil
}

func getSecret(ctx context.Context, c client.Reader, namespace, name string) (*corev1.Secret, error) {
	var s corev1.Secret
	if err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, &s); err != nil {
		return nil, err
	}
	return &s, nil
}

// Close releases the Getter's idle connections.
func (g *Getter) Close() { g.transport.CloseIdleConnections() }

// FetchIndex GETs index.yaml. With validators of the index the caller
// holds, it asks for it only if it changed (If-None-Match, else
// If-Modified-Since), and a 304 comes back as NotModified. The index is
// bounded by MaxIndexSize.
func (g *Getter) FetchIndex(ctx context.Context, known Validators) (*IndexResponse, error) {
	u := g.base.JoinPath("index.yaml")
	req, err := g.request(ctx, u)
	if err != nil {
		return nil, err
	}
	switch {
	case known.ETag != "":
		req.Header.Set("If-None-Match", known.ETag)
	case known.LastModified != "":
		req.Header.Set("If-Modified-Since", known.LastModified)
	}
	resp, err := g.client.Do(req)
	if err != nil {
		return nil, g.describe(ctx, err, u)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotModified && !known.IsZero() {
		return &IndexResponse{NotModified: true, Validators: known}, nil
	}
	if resp.StatusCode != http.StatusOK {
		return nil, g.statusError(resp, u, "index.yaml")
	}
	body, err := readBounded(resp.Body, MaxIndexSize, "index")
	if err != nil {
		return nil, g.describe(ctx, err, u)
	}
	return &IndexResponse{Body: body, Validators: Validators{
		ETag:         resp.Header.Get("ETag"),
		LastModified: resp.Header.Get("Last-Modified"),
	}}, nil
}

// FetchChart GETs a chart archive at ref, a URL of the index's entry:
// absolute, or relative to the repository's URL. Credentials go only to
// the repository's own host and port, unless spec.passCredentials allows
// any, as Helm does. The archive is bounded by MaxChartSize.
func (g *Getter) FetchChart(ctx context.Context, ref string) ([]byte, error) {
	rel, err := url.Parse(ref)
	if err != nil {
		return nil, fmt.Errorf("the index gives the chart URL '%s', which is not a URL: %w", ref, err)
	}
	u := g.base.ResolveReference(rel)
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("the index gives the chart URL '%s': only http and https are supported", ref)
	}
	req, err := g.request(ctx, u)
	if err != nil {
		return nil, err
	}
	resp, err := g.client.Do(req)
	if err != nil {
		return nil, g.describe(ctx, err, u)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, g.statusError(resp, u, "the chart")
	}
	body, err := readBounded(resp.Body, MaxChartSize, "chart")
	if err != nil {
		return nil, g.describe(ctx, err, u)
	}
	return body, nil
}

// request builds a GET of u with weir's User-Agent and, where they may go,
// the credentials.
func (g *Getter) request(ctx context.Context, u *url.URL) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("building the request for %s: %w", u.Redacted(), err)
	}
	req.Header.Set("User-Agent", "weir/"+version.Version)
	if g.basic != nil && (g.passCredentials || u.Host == g.base.Host) {
		req.SetBasicAuth(g.basic.Username, g.basic.Password)
	}
	return req, nil
}

// errTooLarge marks a body over its bound.
var errTooLarge = errors.New("over the size limit")

// readBounded reads r to the end, failing past limit bytes.
func readBounded(r io.Reader, limit int64, what string) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("the %s is larger than %d bytes: %w", what, limit, errTooLarge)
	}
	return b, nil
}
