package oci

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/weirhq/weir/internal/secretconf"
	"github.com/weirhq/weir/internal/version"
)

// registry is how to reach one OCIRepository's repository: where, with
// which credentials and over which transport.
type registry struct {
	repo name.Repository
	// url is spec.url, for messages.
	url string
	// credentials names where the credentials came from ("secret 'x'"),
	// empty when the registry is accessed anonymously.
	credentials string
	keychain    authn.Keychain
	transport   *http.Transport
	// puller carries the transport and credentials, and keeps the
	// registry's answer to the first request (its auth challenge, a
	// token) for the next ones: one reconcile pings the registry once.
	puller *remote.Puller
}

// options are the go-containerregistry options of every request.
func (g *registry) options(ctx context.Context) []remote.Option {
	return []remote.Option{remote.WithContext(ctx), remote.Reuse(g.puller)}
}

// close releases the transport's idle connections: each reconcile builds
// its own transport, from the object's current Secrets.
func (g *registry) close() { g.transport.CloseIdleConnections() }

// host is the registry's host:port, as messages name it.
func (g *registry) host() string { return g.repo.RegistryStr() }

// unsupported refuses the fields weir does not implement, rather than
// ignoring them: a cloud identity that is not used must not pass for one
// that is.
func unsupported(obj *sourcev1.OCIRepository) (reason string, err error) {
	switch obj.Spec.Provider {
	case "", sourcev1.GenericOCIProvider:
	default:
		return sourcev1.InvalidProviderConfigurationReason,
			fmt.Errorf("provider '%s' is not supported by weir: use provider 'generic' with a secretRef", obj.Spec.Provider)
	}
	return "", nil
}

// ParseURL checks an OCIRepository's spec.url as source-controller does
// and returns the repository it names; insecure (spec.insecure) allows
// plain HTTP.
func ParseURL(rawURL string, insecure bool) (name.Repository, error) {
	invalid := func(err error) error {
		return fmt.Errorf("URL validation failed for '%s': %w", rawURL, err)
	}
	if !strings.HasPrefix(rawURL, sourcev1.OCIRepositoryPrefix) {
		return name.Repository{}, invalid(fmt.Errorf("URL must be in format 'oci://<domain>/<org>/<repo>'"))
	}
	u := strings.TrimPrefix(rawURL, sourcev1.OCIRepositoryPrefix)
	if _, repoPath, ok := strings.Cut(u, "/"); ok {
		if _, digest, ok := strings.Cut(repoPath, "@"); ok {
			return name.Repository{}, invalid(fmt.Errorf("URL must not contain a digest; remove '@%s' and set spec.ref.digest", digest))
		}
		if _, tag, ok := strings.Cut(repoPath, ":"); ok {
			return name.Repository{}, invalid(fmt.Errorf("URL must not contain a tag; remove ':%s'", tag))
		}
	}
	var opts []name.Option
	if insecure {
		opts = append(opts, name.Insecure)
	}
	repo, err := name.NewRepository(u, opts...)
	if err != nil {
		return name.Repository{}, invalid(err)
	}
	image := strings.TrimPrefix(u, repo.RegistryStr())
	if s := strings.Split(image, ":"); len(s) > 1 {
		return name.Repository{}, invalid(fmt.Errorf("URL must not contain a tag; remove ':%s'", s[1]))
	}
	return repo, nil
}

// registryFor reads the object's Secrets (secretRef, the image pull
// secrets of serviceAccountName, certSecretRef, proxySecretRef) and builds
// the credentials and transport they describe.
func (r *Reconciler) registryFor(ctx context.Context, obj *sourcev1.OCIRepository, repo name.Repository) (*registry, error) {
	g := &registry{repo: repo, url: obj.Spec.URL}
	kc, from, err := r.keychain(ctx, obj)
	if err != nil {
		return nil, fmt.Errorf("failed to get credential: %w", err)
	}
	g.keychain, g.credentials = kc, from
	base, ok := remote.DefaultTransport.(*http.Transport)
	if !ok {
		return nil, fmt.Errorf("go-containerregistry's default transport is a %T, not an *http.Transport", remote.DefaultTransport)
	}
	g.transport = base.Clone()
	tlsConfig, err := r.tlsConfig(ctx, obj)
	if err != nil {
		return nil, fmt.Errorf("failed to generate transport for '%s': %w", obj.Spec.URL, err)
	}
	if tlsConfig != nil {
		g.transport.TLSClientConfig = tlsConfig
	}
	if obj.Spec.ProxySecretRef != nil {
		proxy, err := r.proxyURL(ctx, obj)
		if err != nil {
			return nil, fmt.Errorf("failed to get proxy address: %w", err)
		}
		g.transport.Proxy = http.ProxyURL(proxy)
	}
	g.puller, err = remote.NewPuller(
		remote.WithTransport(g.transport),
		remote.WithAuthFromKeychain(g.keychain),
		remote.WithUserAgent("weir/"+version.Version),
	)
	if err != nil {
		return nil, fmt.Errorf("failed to generate transport for '%s': %w", obj.Spec.URL, err)
	}
	return g, nil
}

// secret reads a Secret of the object's namespace.
func (r *Reconciler) secret(ctx context.Context, obj *sourcev1.OCIRepository, secretName string) (*corev1.Secret, error) {
	var s corev1.Secret
	key := client.ObjectKey{Namespace: obj.Namespace, Name: secretName}
	if err := r.Get(ctx, key, &s); err != nil {
		return nil, fmt.Errorf("failed to get secret '%s': %w", key, err)
	}
	return &s, nil
}

// keychain gathers the registry logins of secretRef and of the image pull
// secrets of serviceAccountName, in that order. Without any, the registry
// is accessed anonymously: weir never falls back to credentials of its own
// host, such as ~/.docker/config.json.
func (r *Reconciler) keychain(ctx context.Context, obj *sourcev1.OCIRepository) (authn.Keychain, string, error) {
	var names, from []string
	if obj.Spec.SecretRef != nil {
		names = append(names, obj.Spec.SecretRef.Name)
		from = append(from, fmt.Sprintf("secret '%s'", obj.Spec.SecretRef.Name))
	}
	if sa := obj.Spec.ServiceAccountName; sa != "" {
		var acct corev1.ServiceAccount
		key := client.ObjectKey{Namespace: obj.Namespace, Name: sa}
		if err := r.Get(ctx, key, &acct); err != nil {
			return nil, "", fmt.Errorf("failed to get service account '%s': %w", key, err)
		}
		for _, ref := range acct.ImagePullSecrets {
			names = append(names, ref.Name)
		}
		from = append(from, fmt.Sprintf("the image pull secrets of service account '%s'", sa))
	}
	var kc dockerKeychain
	for _, n := range names {
		s, err := r.secret(ctx, obj, n)
		if err != nil {
			return nil, "", err
		}
		auths, err := dockerAuths(s)
		if err != nil {
			return nil, "", err
		}
		kc = append(kc, auths)
	}
	return kc, strings.Join(from, " and "), nil
}

// dockerAuths reads the registry logins of a kubernetes.io/dockerconfigjson
// Secret (or of a legacy kubernetes.io/dockercfg one).
func dockerAuths(s *corev1.Secret) (map[string]authn.AuthConfig, error) {
	if raw, ok := s.Data[corev1.DockerConfigJsonKey]; ok {
		var cfg struct {
			Auths map[string]authn.AuthConfig `json:"auths"`
		}
		if err := json.Unmarshal(raw, &cfg); err != nil {
			return nil, fmt.Errorf("secret '%s': '%s' is not a Docker config: %w", s.Name, corev1.DockerConfigJsonKey, jsonError(err))
		}
		return cfg.Auths, nil
	}
	if raw, ok := s.Data[corev1.DockerConfigKey]; ok {
		var auths map[string]authn.AuthConfig
		if err := json.Unmarshal(raw, &auths); err != nil {
			return nil, fmt.Errorf("secret '%s': '%s' is not a Docker config: %w", s.Name, corev1.DockerConfigKey, jsonError(err))
		}
		return auths, nil
	}
	return nil, fmt.Errorf("secret '%s' has no '%s' key: it must be of type %s, as `kubectl create secret docker-registry` makes it",
		s.Name, corev1.DockerConfigJsonKey, corev1.SecretTypeDockerConfigJson)
}

// jsonError keeps the kind of a JSON error and drops what could quote the
// Secret's content.
func jsonError(err error) error {
	switch err.(type) {
	case *json.SyntaxError:
		return fmt.Errorf("invalid JSON")
	case *json.UnmarshalTypeError:
		return fmt.Errorf("unexpected JSON shape")
	}
	return fmt.Errorf("cannot decode it")
}

// dockerKeychain answers with the first login, in Secret order, whose
// registry is the one asked for.
type dockerKeychain []map[string]authn.AuthConfig

// Resolve implements authn.Keychain.
func (k dockerKeychain) Resolve(res authn.Resource) (authn.Authenticator, error) {
	want := normalizeRegistry(res.RegistryStr())
	for _, auths := range k {
		for key, cfg := range auths {
			if normalizeRegistry(key) == want {
				return authn.FromConfig(cfg), nil
			}
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

// tlsConfig builds the client TLS settings of certSecretRef (ca.crt added
// to the system's authorities; tls.crt and tls.key as a client
// certificate), or skips verification for insecure without a certSecretRef,
// as source-controller does.
func (r *Reconciler) tlsConfig(ctx context.Context, obj *sourcev1.OCIRepository) (*tls.Config, error) {
	if obj.Spec.CertSecretRef == nil || obj.Spec.CertSecretRef.Name == "" {
		if obj.Spec.Insecure {
			// The only place weir skips verification: kept for Flux
			// compatibility with registries that tools such as crane
			// reach with --insecure.
			return &tls.Config{InsecureSkipVerify: true}, nil
		}
		return nil, nil
	}
	s, err := r.secret(ctx, obj, obj.Spec.CertSecretRef.Name)
	if err != nil {
		return nil, err
	}
	return secretconf.TLSConfig(s)
}

// proxyURL reads proxySecretRef: address, and optionally username and
// password.
func (r *Reconciler) proxyURL(ctx context.Context, obj *sourcev1.OCIRepository) (*url.URL, error) {
	s, err := r.secret(ctx, obj, obj.Spec.ProxySecretRef.Name)
	if err != nil {
		return nil, err
	}
	return secretconf.ProxyURL(s)
}
