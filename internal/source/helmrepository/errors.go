package helmrepository

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
)

// ErrAuthentication is matched, with errors.Is, by the errors of a Getter
// that come from credentials or TLS trust: the server refused them, asked
// for some, or could not be trusted. source-controller reports those with
// reason AuthenticationFailed.
var ErrAuthentication = errors.New("authentication failed")

// userError gives a failure in the words of the person who set up the
// HelmRepository; the error it stands for stays wrapped.
type userError struct {
	msg string
	err error
	// auth marks an authentication or TLS trust failure.
	auth bool
}

func (e *userError) Error() string { return e.msg }
func (e *userError) Unwrap() error { return e.err }

// Is makes authentication failures match ErrAuthentication.
func (e *userError) Is(target error) bool { return e.auth && target == ErrAuthentication }

// authError is a userError for an authentication failure.
func authError(msg string, err error) error { return &userError{msg: msg, err: err, auth: true} }

// statusError words an HTTP answer other than 200 for u, what was asked
// for ("index.yaml", "the chart").
func (g *Getter) statusError(resp *http.Response, u *url.URL, what string) error {
	at := u.Redacted()
	err := fmt.Errorf("GET %s: %s", at, resp.Status)
	switch resp.StatusCode {
	case http.StatusUnauthorized:
		if g.basic == nil {
			return authError(fmt.Sprintf("Helm repository %s requires authentication (%s): set spec.secretRef to a Secret holding 'username' and 'password'",
				u.Host, resp.Status), err)
		}
		if !g.passCredentials && u.Host != g.base.Host {
			return authError(fmt.Sprintf("%s requires authentication (%s): the credentials of %s are only sent to %s unless spec.passCredentials is true",
				at, resp.Status, g.credentials, g.base.Host), err)
		}
		return authError(fmt.Sprintf("Helm repository %s refused the credentials of %s (%s)", u.Host, g.credentials, resp.Status), err)
	case http.StatusForbidden:
		who := "anonymous access"
		if g.basic != nil {
			who = "access with the credentials of " + g.credentials
		}
		return authError(fmt.Sprintf("Helm repository %s denied %s to %s (%s)", u.Host, who, at, resp.Status), err)
	case http.StatusNotFound:
		if what == "index.yaml" {
			return &userError{msg: fmt.Sprintf("no index.yaml at %s (%s): is spec.url the address of a Helm repository?", at, resp.Status), err: err}
		}
		return &userError{msg: fmt.Sprintf("%s is not at %s (%s), although the repository's index lists it", what, at, resp.Status), err: err}
	}
	return err
}

// describe words a transport failure: a timeout, a certificate that is
// not trusted, a host that cannot be reached. Other failures are returned
// as they are.
func (g *Getter) describe(ctx context.Context, err error, u *url.URL) error {
	host := u.Host
	if errors.Is(ctx.Err(), context.DeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) {
		return &userError{msg: fmt.Sprintf("timed out talking to Helm repository %s (raise spec.timeout if it is slow)", host), err: err}
	}
	var certErr *tls.CertificateVerificationError
	if errors.As(err, &certErr) {
		return authError(fmt.Sprintf("the certificate of Helm repository %s is not trusted (%v): give its authority as 'ca.crt' in spec.certSecretRef",
			host, certErr.Err), err)
	}
	var unknownAuthority x509.UnknownAuthorityError
	if errors.As(err, &unknownAuthority) {
		return authError(fmt.Sprintf("the certificate of Helm repository %s is not trusted: give its authority as 'ca.crt' in spec.certSecretRef", host), err)
	}
	var opErr *net.OpError
	if errors.As(err, &opErr) {
		return &userError{msg: fmt.Sprintf("Helm repository %s is unreachable: %v", host, opErr), err: err}
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return &userError{msg: fmt.Sprintf("Helm repository %s is unreachable: %v", host, dnsErr), err: err}
	}
	var urlErr *url.Error
	if errors.As(err, &urlErr) {
		// url.Error repeats the URL, with any password it carries:
		// keep the cause only.
		return fmt.Errorf("GET %s: %w", u.Redacted(), urlErr.Err)
	}
	return err
}
