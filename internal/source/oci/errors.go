package oci

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// userError gives a failure in the words of the person who set up the
// OCIRepository; the error it stands for stays wrapped.
type userError struct {
	msg string
	err error
}

func (e *userError) Error() string { return e.msg }
func (e *userError) Unwrap() error { return e.err }

// describe words a registry failure for the user: a tag or digest that does
// not exist, credentials refused or missing, a registry that cannot be
// reached or that is too slow, each naming the registry. ref is what was
// asked for, nil for the list of tags. Other failures are returned as they
// are.
func (g *registry) describe(ctx context.Context, err error, ref name.Reference) error {
	host := g.host()
	if errors.Is(ctx.Err(), context.DeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) {
		return &userError{fmt.Sprintf("timed out talking to registry %s (raise spec.timeout if it is slow)", host), err}
	}
	var certErr *tls.CertificateVerificationError
	if errors.As(err, &certErr) {
		return &userError{fmt.Sprintf("the certificate of registry %s is not trusted (%v): give its authority as 'ca.crt' in spec.certSecretRef",
			host, certErr.Err), err}
	}
	var terr *transport.Error
	if errors.As(err, &terr) {
		switch terr.StatusCode {
		case http.StatusUnauthorized:
			if g.credentials == "" {
				return &userError{fmt.Sprintf("registry %s requires authentication: set spec.secretRef to a %s Secret holding a login for it",
					host, "kubernetes.io/dockerconfigjson"), err}
			}
			if a, rerr := g.keychain.Resolve(g.repo.Registry); rerr == nil && a == authn.Anonymous {
				return &userError{fmt.Sprintf("registry %s requires authentication, and %s holds no login for it", host, g.credentials), err}
			}
			return &userError{fmt.Sprintf("registry %s refused the credentials of %s: authentication failed", host, g.credentials), err}
		case http.StatusForbidden:
			who := "anonymous access"
			if g.credentials != "" {
				who = "access with the credentials of " + g.credentials
			}
			return &userError{fmt.Sprintf("registry %s denied %s to '%s'", host, who, g.url), err}
		case http.StatusNotFound:
			switch ref := ref.(type) {
			case name.Tag:
				return &userError{fmt.Sprintf("tag '%s' not found in '%s'", ref.TagStr(), g.url), err}
			case name.Digest:
				return &userError{fmt.Sprintf("digest '%s' not found in '%s'", ref.DigestStr(), g.url), err}
			default:
				return &userError{fmt.Sprintf("repository '%s' not found", g.url), err}
			}
		}
	}
	var opErr *net.OpError
	if errors.As(err, &opErr) {
		return &userError{fmt.Sprintf("registry %s is unreachable: %v", host, opErr), err}
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return &userError{fmt.Sprintf("registry %s is unreachable: %v", host, dnsErr), err}
	}
	return err
}
