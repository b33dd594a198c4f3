package bucket

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
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

// maxRetries is minio-go's number of attempts per request; its default of
// 10, with back-off, would spend a whole spec.timeout on an endpoint that
// is down before saying so.
const maxRetries = 3

// clientFor reads the object's Secrets (secretRef, certSecretRef,
// proxySecretRef, sts.secretRef, sts.certSecretRef) and builds an S3 client
// for its endpoint, or says why it cannot.
func (r *Reconciler) clientFor(ctx context.Context, obj *sourcev1.Bucket) (*bucketClient, error) {
	if err := unsupported(obj); err != nil {
		return nil, err
	}
	opts := &minio.Options{Region: obj.Spec.Region, Secure: !obj.Spec.Insecure, MaxRetries: maxRetries}
	bc := &bucketClient{name: obj.Spec.BucketName, endpoint: obj.Spec.Endpoint, prefix: obj.Spec.Prefix}

	if ref := obj.Spec.SecretRef; ref != nil {
		s, err := r.secret(ctx, obj, ref.Name)
		if err != nil {
			return nil, retry(sourcev1.AuthenticationFailedReason, err)
		}
		if err := validateSecret(s); err != nil {
			return nil, retry(sourcev1.AuthenticationFailedReason, err)
		}
		opts.Creds = credentials.NewStaticV4(string(s.Data["accesskey"]), string(s.Data["secretkey"]), "")
		bc.credentials = fmt.Sprintf("secret '%s'", ref.Name)
	}

	transport, ok := http.DefaultTransport.(*http.Transport)
	if !ok {
		return nil, fmt.Errorf("the default HTTP transport is a %T, not an *http.Transport", http.DefaultTransport)
	}
	transport = transport.Clone()
	if ref := obj.Spec.CertSecretRef; ref != nil {
		tlsConfig, err := r.tlsConfig(ctx, obj, ref.Name)
		if err != nil {
			return nil, retry(sourcev1.AuthenticationFailedReason, fmt.Errorf("failed to get TLS config: %w", err))
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
			return nil, retry(sourcev1.AuthenticationFailedReason, fmt.Errorf("failed to get proxy URL: %w", err))
		}
		transport.Proxy = http.ProxyURL(proxy)
	}
	opts.Transport = transport

	// As in Flux, the keys of secretRef win over spec.sts.
	if sts := obj.Spec.STS; sts != nil && obj.Spec.SecretRef == nil {
		creds, err := r.stsCredentials(ctx, obj, proxy)
		if err != nil {
			return nil, err
		}
		opts.Creds = creds
		bc.credentials = fmt.Sprintf("the LDAP login of STS endpoint '%s'", sts.Endpoint)
	}

	if err := checkEndpoint(obj.Spec.Endpoint); err != nil {
		return nil, stalled(sourcev1.URLInvalidReason, err)
	}
	c, err := minio.New(obj.Spec.Endpoint, opts)
	if err != nil {
		return nil, stalled(sourcev1.URLInvalidReason, fmt.Errorf("invalid endpoint '%s': %w", obj.Spec.Endpoint, err))
	}
	bc.c = c
	return bc, nil
}

// unsupported refuses what weir does not implement, rather than ignoring
// it: a cloud identity that is not used must not pass for one that is.
func unsupported(obj *sourcev1.Bucket) error {
	notYet := func(what string) error {
		return stalled(sourcev1.InvalidProviderConfigurationReason,
			fmt.Errorf("%s is not supported by weir yet: use provider 'generic' or 'aws' with spec.secretRef", what))
	}
	switch p := obj.Spec.Provider; p {
	case "", sourcev1.BucketProviderGeneric:
	case sourcev1.BucketProviderAmazon:
		if obj.Spec.ServiceAccountName != "" {
			return notYet("provider 'aws' with spec.serviceAccountName (workload identity)")
		}
		if obj.Spec.SecretRef == nil {
			return notYet("provider 'aws' without spec.secretRef (credentials of the controller's own cloud identity)")
		}
	case sourcev1.BucketProviderGoogle, sourcev1.BucketProviderAzure:
		return notYet(fmt.Sprintf("provider '%s'", p))
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

// validateSTS checks spec.sts as source-controller does: provider "aws"
// goes with bucket provider "aws" and takes no Secrets, provider "ldap"
// goes with bucket provider "generic". STS for "aws" exchanges a cloud
// identity, which weir does not support.
func validateSTS(provider string, sts *sourcev1.BucketSTSSpec) error {
	if provider == "" {
		provider = sourcev1.BucketProviderGeneric
	}
	incompatible := fmt.Errorf("STS provider '%s' is not supported for '%s' bucket provider", sts.Provider, provider)
	switch provider {
	case sourcev1.BucketProviderAmazon:
		if sts.Provider != sourcev1.STSProviderAmazon {
			return incompatible
		}
		if sts.SecretRef != nil {
			return fmt.Errorf("spec.sts.secretRef is not required for the '%s' STS provider", sts.Provider)
		}
		if sts.CertSecretRef != nil {
			return fmt.Errorf("spec.sts.certSecretRef is not required for the '%s' STS provider", sts.Provider)
		}
		return fmt.Errorf("STS provider 'aws' (a role assumed with the controller's cloud identity) is not supported by weir yet")
	case sourcev1.BucketProviderGeneric:
		if sts.Provider != sourcev1.STSProviderLDAP {
			return incompatible
		}
		return nil
	}
	return fmt.Errorf("STS configuration is not supported for '%s' bucket provider", provider)
}

// stsCredentials builds the credentials of spec.sts with provider "ldap":
// temporary keys that the STS endpoint (MinIO's AssumeRoleWithLDAPIdentity)
// gives for the username and password of spec.sts.secretRef.
func (r *Reconciler) stsCredentials(ctx context.Context, obj *sourcev1.Bucket, proxy *url.URL) (*credentials.Credentials, error) {
	sts := obj.Spec.STS
	var username, password string
	if ref := sts.SecretRef; ref != nil {
		s, err := r.secret(ctx, obj, ref.Name)
		if err != nil {
			return nil, retry(sourcev1.AuthenticationFailedReason, fmt.Errorf("failed to get STS secret: %w", err))
		}
		username, password = string(s.Data["username"]), string(s.Data["password"])
		if username == "" || password == "" {
			return nil, retry(sourcev1.AuthenticationFailedReason,
				fmt.Errorf("invalid '%s' secret data for '%s' STS provider: required fields username, password", s.Name, sts.Provider))
		}
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	if proxy != nil {
		transport.Proxy = http.ProxyURL(proxy)
	}
	if ref := sts.CertSecretRef; ref != nil {
		tlsConfig, err := r.tlsConfig(ctx, obj, ref.Name)
		if err != nil {
			return nil, retry(sourcev1.AuthenticationFailedReason, fmt.Errorf("failed to get STS TLS config: %w", err))
		}
		transport.TLSClientConfig = tlsConfig
	}
	return credentials.New(&credentials.LDAPIdentity{
		Client:       &http.Client{Transport: transport},
		STSEndpoint:  sts.Endpoint,
		LDAPUsername: username,
		LDAPPassword: password,
	}), nil
}

// validateSecret checks a secretRef Secret as source-controller does.
func validateSecret(s *corev1.Secret) error {
	_, hasAccess := s.Data["accesskey"]
	_, hasSecret := s.Data["secretkey"]
	if !hasAccess || !hasSecret {
		return fmt.Errorf("invalid '%s' secret data: required fields 'accesskey' and 'secretkey'", s.Name)
	}
	return nil
}

// checkEndpoint refuses an endpoint written as a URL: S3 clients take a
// host and port, and spec.insecure chooses between HTTP and HTTPS.
func checkEndpoint(endpoint string) error {
	if endpoint == "" {
		return fmt.Errorf("spec.endpoint is empty")
	}
	if strings.Contains(endpoint, "://") {
		return fmt.Errorf("invalid endpoint '%s': give a host and optional port without a scheme (set spec.insecure for plain HTTP)", endpoint)
	}
	if strings.ContainsAny(endpoint, "/?#") {
		return fmt.Errorf("invalid endpoint '%s': give a host and optional port without a path", endpoint)
	}
	return nil
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
