package bucket

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/minio/minio-go/v7/pkg/s3utils"
	corev1 "k8s.io/api/core/v1"
)

// s3Store reads a bucket of any S3 API with minio-go, for providers
// "generic" and "aws".
type s3Store struct {
	c      *minio.Client
	bucket string
	// credentials names where the credentials came from ("secret 'x'"),
	// empty for anonymous requests.
	credentials string
}

// s3StoreFor reads the object's Secrets (secretRef, certSecretRef,
// proxySecretRef, sts.secretRef, sts.certSecretRef) and builds an S3
// client for its endpoint.
func (r *Reconciler) s3StoreFor(ctx context.Context, obj *sourcev1.Bucket) (*s3Store, error) {
	opts := &minio.Options{Region: obj.Spec.Region, Secure: !obj.Spec.Insecure, MaxRetries: maxRetries}
	st := &s3Store{bucket: obj.Spec.BucketName}

	if ref := obj.Spec.SecretRef; ref != nil {
		s, err := r.secret(ctx, obj, ref.Name)
		if err != nil {
			return nil, retry(sourcev1.AuthenticationFailedReason, err)
		}
		if err := validateSecret(s); err != nil {
			return nil, retry(sourcev1.AuthenticationFailedReason, err)
		}
		opts.Creds = credentials.NewStaticV4(string(s.Data["accesskey"]), string(s.Data["secretkey"]), "")
		st.credentials = fmt.Sprintf("secret '%s'", ref.Name)
	}

	transport, proxy, err := r.transport(ctx, obj)
	if err != nil {
		return nil, err
	}
	opts.Transport = transport

	// As in Flux, the keys of secretRef win over spec.sts.
	if sts := obj.Spec.STS; sts != nil && obj.Spec.SecretRef == nil {
		creds, err := r.stsCredentials(ctx, obj, proxy)
		if err != nil {
			return nil, err
		}
		opts.Creds = creds
		st.credentials = fmt.Sprintf("the LDAP login of STS endpoint '%s'", sts.Endpoint)
	}

	if err := checkEndpoint(obj.Spec.Endpoint); err != nil {
		return nil, stalled(sourcev1.URLInvalidReason, err)
	}
	c, err := minio.New(obj.Spec.Endpoint, opts)
	if err != nil {
		return nil, stalled(sourcev1.URLInvalidReason, fmt.Errorf("invalid endpoint '%s': %w", obj.Spec.Endpoint, err))
	}
	st.c = c
	return st, nil
}

func (s *s3Store) exists(ctx context.Context) (bool, error) {
	return s.c.BucketExists(ctx, s.bucket)
}

func (s *s3Store) list(ctx context.Context, prefix string, visit func(object) error) error {
	opts := minio.ListObjectsOptions{Recursive: true, Prefix: prefix, UseV1: s3utils.IsGoogleEndpoint(*s.c.EndpointURL())}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for o := range s.c.ListObjects(ctx, s.bucket, opts) {
		if o.Err != nil {
			return o.Err
		}
		if err := visit(object{key: o.Key, etag: o.ETag, size: o.Size}); err != nil {
			return err
		}
	}
	return nil
}

// get reads the object by the ETag it had when stat'ed, so that the ETag
// returned is that of the bytes read.
func (s *s3Store) get(ctx context.Context, key string) (io.ReadCloser, object, error) {
	stat, err := s.c.StatObject(ctx, s.bucket, key, minio.StatObjectOptions{})
	if err != nil {
		return nil, object{}, err
	}
	opts := minio.GetObjectOptions{}
	if err := opts.SetMatchETag(stat.ETag); err != nil {
		return nil, object{}, err
	}
	o, err := s.c.GetObject(ctx, s.bucket, key, opts)
	if err != nil {
		return nil, object{}, err
	}
	return o, object{key: key, etag: stat.ETag, size: stat.Size}, nil
}

// isNotFound reports whether S3 said that a key does not exist.
func (s *s3Store) isNotFound(err error) bool {
	if err == nil {
		return false
	}
	return minio.ToErrorResponse(err).Code == "NoSuchKey"
}

func (s *s3Store) explain(err error) error {
	resp := minio.ToErrorResponse(err)
	switch resp.Code {
	case "InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken", "ExpiredToken":
		if s.credentials == "" {
			return fmt.Errorf("%w (no credentials are set: give spec.secretRef a Secret with 'accesskey' and 'secretkey')", err)
		}
		return fmt.Errorf("%w (the credentials of %s were refused: check its 'accesskey' and 'secretkey')", err, s.credentials)
	case "AccessDenied":
		if s.credentials == "" {
			return fmt.Errorf("%w (anonymous access was refused: give spec.secretRef a Secret with 'accesskey' and 'secretkey')", err)
		}
		return fmt.Errorf("%w (the credentials of %s are not allowed to read the bucket)", err, s.credentials)
	}
	return err
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
