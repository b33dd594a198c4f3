package bucket

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"net/url"

	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/weirhq/weir/internal/secretconf"
)

// failure is an error with the reason source-controller gives it, and
// whether only a spec change can fix it.
type failure struct {
	reason  string
	stalled bool
	err     error
}

func (e *failure) Error() string { return e.err.Error() }
func (e *failure) Unwrap() error { return e.err }

func stalled(reason string, err error) error {
	return &failure{reason: reason, stalled: true, err: err}
}
func retry(reason string, err error) error { return &failure{reason: reason, err: err} }

// maxRetries is the number of attempts per request of the S3 and Blob
// clients; their defaults, with back-off, would spend a whole spec.timeout
// on an endpoint that is down before saying so.
const maxRetries = 3

// clientFor reads the object's Secrets and builds a client of its
// provider for its bucket, or says why it cannot.
func (r *Reconciler) clientFor(ctx context.Context, obj *sourcev1.Bucket) (*bucketClient, error) {
	if err := unsupported(obj); err != nil {
		return nil, err
	}
	bc := &bucketClient{name: obj.Spec.BucketName, endpoint: obj.Spec.Endpoint, prefix: obj.Spec.Prefix}
	var err error
	switch obj.Spec.Provider {
	case sourcev1.BucketProviderGoogle:
		bc.store, err = r.gcsStoreFor(ctx, obj)
	case sourcev1.BucketProviderAzure:
		bc.store, err = r.blobStoreFor(ctx, obj)
	default:
		bc.store, err = r.s3StoreFor(ctx, obj)
	}
	if err != nil {
		return nil, err
	}
	return bc, nil
}

// unsupported refuses what weir does not implement, rather than ignoring
// it: a cloud identity that is not used must not pass for one that is.
func unsupported(obj *sourcev1.Bucket) error {
	notYet := func(what, instead string) error {
		return stalled(sourcev1.InvalidProviderConfigurationReason,
			fmt.Errorf("%s is not supported by weir yet: %s", what, instead))
	}
	const s3Keys = "use provider 'generic' or 'aws' with spec.secretRef"
	switch p := obj.Spec.Provider; p {
	case "", sourcev1.BucketProviderGeneric:
	case sourcev1.BucketProviderAmazon:
		if obj.Spec.ServiceAccountName != "" {
			return notYet("provider 'aws' with spec.serviceAccountName (workload identity)", s3Keys)
		}
		if obj.Spec.SecretRef == nil {
			return notYet("provider 'aws' without spec.secretRef (credentials of the controller's own cloud identity)", s3Keys)
		}
	case sourcev1.BucketProviderGoogle:
		const key = "give spec.secretRef a Secret with a service account key as 'serviceaccount'"
		if obj.Spec.ServiceAccountName != "" {
			return notYet("provider 'gcp' with spec.serviceAccountName (workload identity)", key)
		}
		if obj.Spec.SecretRef == nil {
			return notYet("provider 'gcp' without spec.secretRef (workload identity of the controller's own cloud identity)", key)
		}
	case sourcev1.BucketProviderAzure:
		if obj.Spec.ServiceAccountName != "" {
			return notYet("provider 'azure' with spec.serviceAccountName (workload identity)",
				"give spec.secretRef a Secret with 'accountKey', 'sasKey', or 'tenantId', 'clientId' and 'clientSecret'")
		}
	default:
		return stalled(sourcev1.InvalidProviderConfigurationReason, fmt.Errorf("unknown provider '%s'", p))
	}
	if sts := obj.Spec.STS; sts != nil {
		if err := validateSTS(obj.Spec.Provider, sts); err != nil {
			return stalled(sourcev1.InvalidSTSConfigurationReason, err)
		}
		if _, err := url.Parse(sts.Endpoint); err != nil {
			return stalled(sourcev1.URLInvalidReason, fmt.Errorf("failed to parse STS endpoint '%s': %w", sts.Endpoint, err))
		}
	}
	return nil
}

// transport is the HTTP transport of the object's requests: the default
// one, with the TLS settings of spec.certSecretRef and the proxy of
// spec.proxySecretRef, which it also returns.
func (r *Reconciler) transport(ctx context.Context, obj *sourcev1.Bucket) (*http.Transport, *url.URL, error) {
	base, ok := http.DefaultTransport.(*http.Transport)
	if !ok {
		return nil, nil, fmt.Errorf("the default HTTP transport is a %T, not an *http.Transport", http.DefaultTransport)
	}
	transport := base.Clone()
	if ref := obj.Spec.CertSecretRef; ref != nil {
		tlsConfig, err := r.tlsConfig(ctx, obj, ref.Name)
		if err != nil {
			return nil, nil, retry(sourcev1.AuthenticationFailedReason, fmt.Errorf("failed to get TLS config: %w", err))
		}
		transport.TLSClientConfig = tlsConfig
	}
	var proxy *url.URL
	if ref := obj.Spec.ProxySecretRef; ref != nil {
		s, err := r.secret(ctx, obj, ref.Name)
		if err == nil {
			proxy, err = secretconf.ProxyURL(s)
		}
		if err != nil {
			return nil, nil, retry(sourcev1.AuthenticationFailedReason, fmt.Errorf("failed to get proxy URL: %w", err))
		}
		transport.Proxy = http.ProxyURL(proxy)
	}
	return transport, proxy, nil
}

// secret reads a Secret of the object's namespace.
func (r *Reconciler) secret(ctx context.Context, obj *sourcev1.Bucket, name string) (*corev1.Secret, error) {
	var s corev1.Secret
	key := client.ObjectKey{Namespace: obj.Namespace, Name: name}
	if err := r.Get(ctx, key, &s); err != nil {
		return nil, fmt.Errorf("failed to get secret '%s': %w", key, err)
	}
	return &s, nil
}

// tlsConfig reads a certSecretRef: ca.crt added to the system's
// authorities, tls.crt and tls.key as a client certificate.
func (r *Reconciler) tlsConfig(ctx context.Context, obj *sourcev1.Bucket, name string) (*tls.Config, error) {
	s, err := r.secret(ctx, obj, name)
	if err != nil {
		return nil, err
	}
	return secretconf.TLSConfig(s)
}
