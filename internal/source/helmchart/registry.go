package helmchart

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"

	"github.com/fluxcd/pkg/runtime/secrets"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/weirhq/weir/internal/source/helmrepository"
	"github.com/weirhq/weir/internal/version"
)

// Media types of the chart layer `helm push` writes, and of the one older
// Helm versions wrote.
const (
	ChartLayerType       = "application/vnd.cncf.helm.chart.content.v1.tar+gzip"
	LegacyChartLayerType = "application/tar+gzip"
)

// registry is how to reach the charts of a HelmRepository of type oci: the
// repository of one chart, oci://<url>/<chart>, with the credentials and
// transport of the HelmRepository.
type registry struct {
	repo name.Repository
	// url is the chart's address, oci://<spec.url>/<chart>, for messages.
	url string
	// credentials names where the credentials came from ("secret 'x'"),
	// empty when the registry is accessed anonymously.
	credentials string
	transport   *http.Transport
	puller      *remote.Puller
}

// ChartRepository is the registry repository of chart chartName in a
// HelmRepository of type oci, oci://<spec.url>/<chart>, and its address
// for messages.
func ChartRepository(repo *sourcev1.HelmRepository, chartName string) (name.Repository, string, error) {
	base := strings.TrimSuffix(strings.TrimPrefix(repo.Spec.URL, sourcev1.OCIRepositoryPrefix), "/")
	var opts []name.Option
	if repo.Spec.Insecure {
		opts = append(opts, name.Insecure)
	}
	ref, err := name.NewRepository(base+"/"+chartName, opts...)
	if err != nil {
		return name.Repository{}, "", fmt.Errorf("invalid OCI registry URL '%s' for chart '%s': %w", repo.Spec.URL, chartName, err)
	}
	return ref, sourcev1.OCIRepositoryPrefix + base + "/" + chartName, nil
}

// newRegistry reads the HelmRepository's Secrets (secretRef: a
// dockerconfigjson, or username and password; certSecretRef: TLS) and
// builds the client of chart chartName.
func newRegistry(ctx context.Context, c client.Reader, repo *sourcev1.HelmRepository, chartName string) (*registry, error) {
	ref, url, err := ChartRepository(repo, chartName)
	if err != nil {
		return nil, &buildError{reason: errChartReference, err: err}
	}
	g := &registry{repo: ref, url: url}

	keychain := authn.Keychain(authn.NewMultiKeychain())
	if sr := repo.Spec.SecretRef; sr != nil && sr.Name != "" {
		s, err := getSecret(ctx, c, repo.Namespace, sr.Name)
		if err != nil {
			return nil, fmt.Errorf("failed to get authentication secret '%s/%s': %w", repo.Namespace, sr.Name, err)
		}
		if keychain, err = KeychainFromSecret(s, ref.RegistryStr()); err != nil {
			return nil, err
		}
		g.credentials = fmt.Sprintf("secret '%s'", sr.Name)
	}
	base2, ok := remote.DefaultTransport.(*http.Transport)
	if !ok {
		return nil, fmt.Errorf("go-containerregistry's default transport is a %T, not an *http.Transport", remote.DefaultTransport)
	}
	g.transport = base2.Clone()
	if cr := repo.Spec.CertSecretRef; cr != nil && cr.Name != "" {
		s, err := getSecret(ctx, c, repo.Namespace, cr.Name)
		if err != nil {
			return nil, fmt.Errorf("failed to get TLS authentication secret '%s/%s': %w", repo.Namespace, cr.Name, err)
		}
		tlsConfig, err := secrets.TLSConfigFromSecret(ctx, s, secrets.WithSystemCertPool())
		if err != nil {
			return nil, fmt.Errorf("failed to construct the registry client's TLS config: %w", err)
		}
		g.transport.TLSClientConfig = tlsConfig
	}
	g.puller, err = remote.NewPuller(
		remote.WithTransport(g.transport),
		remote.WithAuthFromKeychain(keychain),
		remote.WithUserAgent("weir/"+version.Version),
	)
	if err != nil {
		return nil, fmt.Errorf("failed to construct the registry client for '%s': %w", g.url, err)
	}
	return g, nil
}

// close releases the transport's idle connections.
func (g *registry) close() { g.transport.CloseIdleConnections() }

func (g *registry) options(ctx context.Context) []remote.Option {
	return []remote.Option{remote.WithContext(ctx), remote.Reuse(g.puller)}
}

// tags lists the chart's tags.
func (g *registry) tags(ctx context.Context) ([]string, error) {
	tags, err := remote.List(g.repo, g.options(ctx)...)
	if err != nil {
		return nil, g.describe(ctx, err, "")
	}
	return tags, nil
}

// pull fetches the chart package pushed as tag: the manifest, then its
// chart layer, bounded by helmrepository.MaxChartSize. verify, when not
// nil, checks the manifest's digest before the layer is fetched; verified
// says whether it vouched for the chart.
func (g *registry) pull(ctx context.Context, tag string, verify chartVerify) (tgz []byte, verified bool, err error) {
	ref := g.repo.Tag(tag)
	img, err := remote.Image(ref, g.options(ctx)...)
	if err != nil {
		return nil, false, g.describe(ctx, err, tag)
	}
	if verify != nil {
		d, err := img.Digest()
		if err != nil {
			return nil, false, fmt.Errorf("reading the manifest of '%s:%s': %w", g.url, tag, err)
		}
		if verified, err = verify(ctx, g, g.repo.Digest(d.String()), tag); err != nil {
			return nil, false, err
		}
	}
	m, err := img.Manifest()
	if err != nil {
		return nil, false, fmt.Errorf("reading the manifest of '%s:%s': %w", g.url, tag, err)
	}
	desc := ChartLayer(m)
	if desc == nil {
		return nil, false, fmt.Errorf("'%s:%s' is not a Helm chart: its manifest has no layer of type %s", g.url, tag, ChartLayerType)
	}
	if desc.Size > helmrepository.MaxChartSize {
		return nil, false, fmt.Errorf("the chart '%s:%s' is %d bytes, over the %d bytes limit", g.url, tag, desc.Size, helmrepository.MaxChartSize)
	}
	layer, err := img.LayerByDigest(desc.Digest)
	if err != nil {
		return nil, false, fmt.Errorf("finding layer %s of '%s:%s': %w", desc.Digest, g.url, tag, err)
	}
	rc, err := layer.Compressed()
	if err != nil {
		return nil, false, g.describe(ctx, err, tag)
	}
	defer rc.Close()
	// Read to the end, so that go-containerregistry checks the digest.
	b, err := io.ReadAll(io.LimitReader(rc, helmrepository.MaxChartSize+1))
	if err != nil {
		return nil, false, g.describe(ctx, err, tag)
	}
	if int64(len(b)) > helmrepository.MaxChartSize {
		return nil, false, fmt.Errorf("the chart '%s:%s' is over the %d bytes limit", g.url, tag, helmrepository.MaxChartSize)
	}
	return b, verified, nil
}

// ChartLayer is the layer of a chart's manifest that holds the chart
// package, as `helm push` writes it (or older Helm versions did); nil when
// the manifest has none.
func ChartLayer(m *v1.Manifest) *v1.Descriptor {
	for i, l := range m.Layers {
		if l.MediaType == ChartLayerType || l.MediaType == LegacyChartLayerType {
			return &m.Layers[i]
		}
	}
	return nil
}

// describe words a registry failure for the user, naming the chart and,
// for a pull, the tag; tag is empty for the list of tags.
func (g *registry) describe(ctx context.Context, err error, tag string) error {
	host := g.repo.RegistryStr()
	if errors.Is(ctx.Err(), context.DeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("timed out talking to registry %s (raise the HelmRepository's spec.timeout if it is slow): %w", host, err)
	}
	var certErr *tls.CertificateVerificationError
	if errors.As(err, &certErr) {
		return fmt.Errorf("the certificate of registry %s is not trusted (%v): give its authority as 'ca.crt' in the HelmRepository's spec.certSecretRef: %w",
			host, certErr.Err, errAuth)
	}
	var terr *transport.Error
	if errors.As(err, &terr) {
		switch terr.StatusCode {
		case http.StatusUnauthorized:
			if g.credentials == "" {
				return fmt.Errorf("registry %s requires authentication: set the HelmRepository's spec.secretRef: %w", host, errAuth)
			}
			return fmt.Errorf("registry %s refused the credentials of %s: %w", host, g.credentials, errAuth)
		case http.StatusForbidden:
			return fmt.Errorf("registry %s denied access to '%s': %w", host, g.url, errAuth)
		case http.StatusNotFound:
			if tag == "" {
				return fmt.Errorf("no chart at '%s': the repository does not exist in the registry", g.url)
			}
			return fmt.Errorf("no version '%s' of the chart at '%s': tag '%s' not found", TagVersion(tag), g.url, tag)
		}
	}
	var opErr *net.OpError
	if errors.As(err, &opErr) {
		return fmt.Errorf("registry %s is unreachable: %v", host, opErr)
	}
	return err
}

// errAuth marks failures of authentication or TLS trust, which
// source-controller reports with reason AuthenticationFailed.
var errAuth = errors.New("authentication failed")

// KeychainFromSecret reads registry logins from a HelmRepository's
// secretRef, as source-controller does: a kubernetes.io/dockerconfigjson
// Secret, or 'username' and 'password' for the registry of the URL.
func KeychainFromSecret(s *corev1.Secret, registryHost string) (authn.Keychain, error) {
	if raw, ok := s.Data[corev1.DockerConfigJsonKey]; ok {
		var cfg struct {
			Auths map[string]authn.AuthConfig `json:"auths"`
		}
		if err := json.Unmarshal(raw, &cfg); err != nil {
			return nil, fmt.Errorf("secret '%s': '%s' is not a Docker config", s.Name, corev1.DockerConfigJsonKey)
		}
		return dockerKeychain(cfg.Auths), nil
	}
	user, pass := string(s.Data["username"]), string(s.Data["password"])
	if user == "" || pass == "" {
		return nil, fmt.Errorf("secret '%s' must hold a '%s', or 'username' and 'password'", s.Name, corev1.DockerConfigJsonKey)
	}
	return dockerKeychain{registryHost: {Username: user, Password: pass}}, nil
}

// dockerKeychain answers with the login for the registry asked for.
type dockerKeychain map[string]authn.AuthConfig

// Resolve implements authn.Keychain.
func (k dockerKeychain) Resolve(res authn.Resource) (authn.Authenticator, error) {
	want := normalizeRegistry(res.RegistryStr())
	for key, cfg := range k {
		if normalizeRegistry(key) == want {
			return authn.FromConfig(cfg), nil
		}
	}
	return authn.Anonymous, nil
}

// normalizeRegistry reduces a Docker config key ("https://ghcr.io",
// "ghcr.io/v1/", "docker.io") to the registry host go-containerregistry
// names.
func normalizeRegistry(s string) string {
	s = strings.TrimPrefix(strings.TrimPrefix(s, "https://"), "http://")
	if i := strings.IndexByte(s, '/'); i >= 0 {
		s = s[:i]
	}
	switch s {
	case "docker.io", "registry-1.docker.io":
		return name.DefaultRegistry
	}
	return s
}

func getSecret(ctx context.Context, c client.Reader, namespace, name string) (*corev1.Secret, error) {
	var s corev1.Secret
	if err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, &s); err != nil {
		return nil, err
	}
	return &s, nil
}
