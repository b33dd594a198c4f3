package gitrepository

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	gitssh "github.com/go-git/go-git/v5/plumbing/transport/ssh"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/weirhq/weir/internal/githubapp"
	"github.com/weirhq/weir/internal/secretconf"
)

// remote is where and how to reach a repository.
type remote struct {
	url      string
	auth     transport.AuthMethod
	caBundle []byte
	// proxy is proxySecretRef's proxy, for http(s) URLs.
	proxy transport.ProxyOptions
}

// authError marks failures to build credentials (missing Secret, missing
// key, bad key), reported with reason AuthenticationFailed.
type authError struct{ err error }

func (e *authError) Error() string { return e.err.Error() }
func (e *authError) Unwrap() error { return e.err }

// remoteFor reads the object's secretRef and builds the credentials its URL
// scheme needs. The Secret keys are Flux's: username/password, bearerToken,
// ca.crt, identity/identity.pub/known_hosts/password.
//
// With provider github, the Secret names a GitHub App instead, and the
// password is an installation token that tokens caches.
func remoteFor(ctx context.Context, c client.Client, obj *sourcev1.GitRepository, scratch string, tokens *githubapp.Tokens) (*remote, error) {
	u, err := url.Parse(obj.Spec.URL)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("invalid URL %q: expected http(s)://host/path or ssh://user@host/path", obj.Spec.URL)
	}
	r := &remote{url: obj.Spec.URL}
	var data map[string][]byte
	if obj.Spec.SecretRef != nil {
		var secret corev1.Secret
		key := client.ObjectKey{Namespace: obj.Namespace, Name: obj.Spec.SecretRef.Name}
		if err := c.Get(ctx, key, &secret); err != nil {
			return nil, &authError{fmt.Errorf("failed to get secret '%s': %w", key, err)}
		}
		data = secret.Data
	}
	switch u.Scheme {
	case "http", "https":
		r.caBundle = data["ca.crt"]
		if r.caBundle == nil {
			r.caBundle = data["caFile"]
		}
		switch {
		case len(data["bearerToken"]) > 0:
			r.auth = &githttp.TokenAuth{Token: string(data["bearerToken"])}
		case len(data["username"]) > 0 || len(data["password"]) > 0:
			if len(data["username"]) == 0 || len(data["password"]) == 0 {
				return nil, &authError{fmt.Errorf("secret '%s' must hold both 'username' and 'password' for basic auth", obj.Spec.SecretRef.Name)}
			}
			r.auth = &githttp.BasicAuth{Username: string(data["username"]), Password: string(data["password"])}
		}
	case "ssh":
		if obj.Spec.SecretRef == nil {
			return nil, &authError{fmt.Errorf("an ssh:// URL needs a secretRef with 'identity' and 'known_hosts'")}
		}
		auth, err := sshAuth(u, data, obj.Spec.SecretRef.Name, scratch)
		if err != nil {
			return nil, &authError{err}
		}
		r.auth = auth
	default:
		return nil, fmt.Errorf("invalid URL %q: scheme %q is not supported, use http, https or ssh", obj.Spec.URL, u.Scheme)
	}
	if ref := obj.Spec.ProxySecretRef; ref != nil && ref.Name != "" {
		var secret corev1.Secret
		key := client.ObjectKey{Namespace: obj.Namespace, Name: ref.Name}
		if err := c.Get(ctx, key, &secret); err != nil {
			return nil, &authError{fmt.Errorf("failed to get proxy secret '%s': %w", key, err)}
		}
		p, err := secretconf.ProxyURL(&secret)
		if err != nil {
			return nil, &authError{err}
		}
		r.proxy.Username = p.User.Username()
		r.proxy.Password, _ = p.User.Password()
		p.User = nil
		r.proxy.URL = p.String()
	}
	if err := r.useProvider(ctx, obj, u, data, tokens); err != nil {
		return nil, err
	}
	return r, nil
}

func sshAuth(u *url.URL, data map[string][]byte, secretName, scratch string) (transport.AuthMethod, error) {
	identity := data["identity"]
	if len(identity) == 0 {
		return nil, fmt.Errorf("secret '%s' has no 'identity' key (the SSH private key)", secretName)
	}
	hosts := data["known_hosts"]
	if len(hosts) == 0 {
		return nil, fmt.Errorf("secret '%s' has no 'known_hosts' key: SSH host keys must be verified", secretName)
	}
	user := u.User.Username()
	if user == "" {
		user = "git"
	}
	keys, err := gitssh.NewPublicKeys(user, identity, string(data["password"]))
	if err != nil {
		return nil, fmt.Errorf("secret '%s': the 'identity' key cannot be used: %w", secretName, err)
	}
	// knownhosts reads files; known_hosts holds public keys only, so a
	// scratch copy discloses nothing.
	path := filepath.Join(scratch, "known_hosts")
	if err := os.WriteFile(path, hosts, 0o600); err != nil {
		return nil, fmt.Errorf("preparing known_hosts: %w", err)
	}
	check, err := knownhosts.New(path)
	if err != nil {
		return nil, fmt.Errorf("secret '%s': the 'known_hosts' key cannot be parsed: %w", secretName, err)
	}
	keys.HostKeyCallback = func(hostname string, addr net.Addr, key ssh.PublicKey) error {
		if err := check(hostname, addr, key); err != nil {
			return fmt.Errorf("host key of %s does not match known_hosts: %w", strings.TrimSuffix(hostname, ":22"), err)
		}
		return nil
	}
	return keys, nil
}
