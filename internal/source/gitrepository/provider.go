package gitrepository

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"net/url"

	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"

	"github.com/weirhq/weir/internal/githubapp"
)

// providerError is a spec.provider that cannot work with its Secret,
// reported with reason InvalidProviderConfiguration.
type providerError struct {
	err   error
	stall bool
}

func (e *providerError) Error() string { return e.err.Error() }
func (e *providerError) Unwrap() error { return e.err }

// useProvider sets the credentials spec.provider asks for, as
// source-controller does: with github, an installation token of the
// Secret's GitHub App; with generic, it refuses a Secret that holds app
// data, which asks for github. azure and aws (workload identity) are not
// supported and stall, rather than fetching without the identity asked for,
// as OCIRepository does.
func (r *remote) useProvider(ctx context.Context, obj *sourcev1.GitRepository, u *url.URL, data map[string][]byte, tokens *githubapp.Tokens) error {
	switch obj.GetProvider() {
	case sourcev1.GitProviderGitHub:
		if obj.Spec.SecretRef == nil {
			return &providerError{stall: true, err: errors.New("secretRef with github app data must be specified when provider is set to github")}
		}
		if !githubapp.HasAppData(data) {
			return &providerError{err: errors.New("secretRef with github app data must be specified when provider is set to github")}
		}
		if u.Scheme != "https" && u.Scheme != "http" {
			return &providerError{stall: true, err: fmt.Errorf("provider github authenticates over http(s); the URL is %s", u.Scheme)}
		}
		app, err := githubapp.FromSecret(data)
		if err != nil {
			return &authError{fmt.Errorf("failed to configure authentication options: %w", err)}
		}
		client, err := r.apiClient()
		if err != nil {
			return &authError{err}
		}
		token, err := tokens.Token(ctx, app, client)
		if err != nil {
			return &authError{fmt.Errorf("failed to configure authentication options: %w", describe(ctx, err))}
		}
		r.auth = &githttp.BasicAuth{Username: githubapp.Username, Password: token}
	case sourcev1.GitProviderAzure, sourcev1.GitProviderAWS:
		return &providerError{stall: true, err: fmt.Errorf("provider '%s' is not supported by weir: use provider 'generic' with a secretRef", obj.GetProvider())}
	case sourcev1.GitProviderGeneric:
		if githubapp.HasAppData(data) {
			return &providerError{err: fmt.Errorf("secretRef '%s/%s' has github app data but provider is not set to github", obj.Namespace, obj.Spec.SecretRef.Name)}
		}
	}
	return nil
}

// apiClient reaches the GitHub API as Git reaches the repository: through
// the proxy of proxySecretRef and trusting the Secret's CA bundle too.
func (r *remote) apiClient() (*http.Client, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if len(r.caBundle) > 0 {
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(r.caBundle) {
			return nil, errors.New("the CA bundle of secretRef ('ca.crt') holds no PEM certificate")
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	if r.proxy.URL != "" {
		p, err := url.Parse(r.proxy.URL)
		if err != nil {
			return nil, fmt.Errorf("invalid proxy address: %w", err)
		}
		if r.proxy.Username != "" {
			p.User = url.UserPassword(r.proxy.Username, r.proxy.Password)
		}
		tr.Proxy = http.ProxyURL(p)
	}
	return &http.Client{Transport: tr, Timeout: defaultTimeout}, nil
}
