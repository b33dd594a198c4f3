package chartfetch

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/weirhq/weir/internal/source/helmrepository"
)

// defaultTimeout bounds the requests of one chart when its source sets no
// spec.timeout, as source-controller's default.
const defaultTimeout = 60 * time.Second

// Fetcher fetches charts into a cache folder and finds them there. Its
// zero value is not usable: Cache must be set.
type Fetcher struct {
	// Cache is the cache folder (see DefaultCache).
	Cache string
	// Offline forbids the network: only what the cache holds is found.
	Offline bool
	// Secrets reads the Secrets that sources name (secretRef), as the
	// repository defines them; nil when there are none.
	Secrets client.Reader

	// down is what the run learnt of hosts that cannot be reached, shared
	// with the copies WithSecrets makes.
	down *downHosts
}

// WithSecrets returns a Fetcher like f that reads Secrets from r and
// shares what f learns of hosts that cannot be reached: once a host is
// found down, the other charts it serves are not waited for again. f must
// not be used by another goroutine meanwhile.
func (f *Fetcher) WithSecrets(r client.Reader) *Fetcher {
	return &Fetcher{Cache: f.Cache, Offline: f.Offline, Secrets: r, down: f.hosts()}
}

// downHosts are hosts that could not be reached, with the error that said
// so.
type downHosts struct {
	mu sync.Mutex
	m  map[string]error
}

func (f *Fetcher) hosts() *downHosts {
	if f.down == nil {
		f.down = &downHosts{m: map[string]error{}}
	}
	return f.down
}

// reach returns the error that made host unreachable earlier in the run,
// else calls fetch and, when it finds host down, remembers it.
func (f *Fetcher) reach(host string, fetch func() error) error {
	h := f.hosts()
	h.mu.Lock()
	err, known := h.m[host]
	h.mu.Unlock()
	if known {
		return err
	}
	err = fetch()
	var opErr *net.OpError
	var dnsErr *net.DNSError
	if errors.Is(err, context.DeadlineExceeded) || errors.As(err, &opErr) || errors.As(err, &dnsErr) {
		h.mu.Lock()
		h.m[host] = err
		h.mu.Unlock()
	}
	return err
}

// Chart is a chart package in the cache.
type Chart struct {
	// Path is the chart package (.tgz).
	Path string
	// From names where it came from, for messages: the registry
	// repository and digest, or the download URL.
	From string
	// Stale says why the chart is the one the source gave last rather
	// than the one it gives now (the source could not be reached); empty
	// when it is current.
	Stale string
}

// UnavailableError says that a chart could not be had, for a reason
// outside the repository being checked: offline and not in the cache, a
// source that cannot be reached, credentials that are not in the
// repository. `weir test` reports it as a warning, not as a failure.
type UnavailableError struct {
	// Msg says what is missing, for the user.
	Msg string
	// Err is the cause, if any.
	Err error
}

func (e *UnavailableError) Error() string {
	if e.Err == nil {
		return e.Msg
	}
	return e.Msg + ": " + e.Err.Error()
}

// Unwrap returns the cause.
func (e *UnavailableError) Unwrap() error { return e.Err }

func (f *Fetcher) cache() cache { return cache(f.Cache) }

// notCached is the error of a chart that --offline leaves out.
func notCached(what string) error {
	return &UnavailableError{Msg: what + " is not in the chart cache, and --offline forbids fetching it"}
}

// unreachable reports whether err says the source could not be talked to
// (down, too slow, not trusted, refusing anonymous access), rather than
// that it answered something wrong.
func unreachable(err error) bool {
	var unavailable *UnavailableError
	if errors.As(err, &unavailable) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, helmrepository.ErrAuthentication) {
		return true
	}
	var opErr *net.OpError
	var dnsErr *net.DNSError
	var certErr *tls.CertificateVerificationError
	if errors.As(err, &opErr) || errors.As(err, &dnsErr) || errors.As(err, &certErr) {
		return true
	}
	var terr *transport.Error
	if errors.As(err, &terr) {
		switch terr.StatusCode {
		case http.StatusUnauthorized, http.StatusForbidden, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
			return true
		}
	}
	return false
}

// fetchFailed words a failure to fetch what: an UnavailableError when
// the source could not be talked to; else, for a registry that has no such
// tag or manifest, an error saying so (the cluster would fail the same).
func fetchFailed(what string, err error) error {
	if unreachable(err) {
		var unavailable *UnavailableError
		if errors.As(err, &unavailable) {
			return err
		}
		return &UnavailableError{Msg: "fetching " + what, Err: err}
	}
	var terr *transport.Error
	if errors.As(err, &terr) && terr.StatusCode == http.StatusNotFound {
		return fmt.Errorf("%s was not found in the registry: %w", what, err)
	}
	return err
}

// registryError words a registry's failure to answer: unreachable, or
// refusing the credentials given (none, or those of secretRef).
func registryError(host string, err error) error {
	var opErr *net.OpError
	if errors.As(err, &opErr) {
		return &UnavailableError{Msg: "registry " + host + " is unreachable", Err: opErr}
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return &UnavailableError{Msg: "registry " + host + " is unreachable", Err: dnsErr}
	}
	var terr *transport.Error
	if errors.As(err, &terr) && (terr.StatusCode == http.StatusUnauthorized || terr.StatusCode == http.StatusForbidden) {
		return &UnavailableError{Msg: fmt.Sprintf("registry %s refused access (%d): set the source's secretRef to a Secret of the repository holding a login for it", host, terr.StatusCode), Err: err}
	}
	return err
}

// secret reads a Secret named by a source.
func (f *Fetcher) secret(ctx context.Context, namespace, name, field string) (*corev1.Secret, error) {
	var s corev1.Secret
	if f.Secrets == nil {
		return nil, secretMissing(namespace, name, field)
	}
	err := f.Secrets.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, &s)
	if apierrors.IsNotFound(err) {
		return nil, secretMissing(namespace, name, field)
	}
	if err != nil {
		// An encrypted Secret with no key, for one: not the chart's fault.
		return nil, &UnavailableError{Msg: fmt.Sprintf("its %s, Secret %s/%s, could not be read", field, namespace, name), Err: err}
	}
	return &s, nil
}

func secretMissing(namespace, name, field string) error {
	return &UnavailableError{Msg: fmt.Sprintf("its %s, Secret %s/%s, is not in the repository: the chart is fetched only with credentials the repository holds", field, namespace, name)}
}

// noSecrets is a client.Reader whose Secrets the repository holds
// (Fetcher.Secrets), or none.
type noSecrets struct{ client.Reader }

// Get implements client.Reader, finding nothing without a reader.
func (n noSecrets) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	if n.Reader == nil {
		return apierrors.NewNotFound(corev1.Resource("secrets"), key.Name)
	}
	return n.Reader.Get(ctx, key, obj, opts...)
}
