package bucket

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	azruntime "github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	corev1 "k8s.io/api/core/v1"
)

// The keys of a secretRef Secret for provider "azure", as in Flux.
const (
	azureTenantID                   = "tenantId"
	azureClientID                   = "clientId"
	azureClientSecret               = "clientSecret"
	azureClientCertificate          = "clientCertificate"
	azureClientCertificatePassword  = "clientCertificatePassword"
	azureClientCertificateSendChain = "clientCertificateSendChain"
	azureAuthorityHost              = "authorityHost"
	azureAccountKey                 = "accountKey"
	azureSASKey                     = "sasKey"
)

// azureKeys says which keys a secretRef Secret for provider "azure" takes.
const azureKeys = "'accountKey', 'sasKey', or 'tenantId', 'clientId' and 'clientSecret' (or 'clientCertificate')"

// blobStore reads an Azure Blob storage container with the Azure SDK
// for Go, for provider "azure".
type blobStore struct {
	c         *azblob.Client
	container string
	// credentials names the credentials used ("the account key of secret
	// 'x'"), empty for anonymous requests.
	credentials string
	// keys are the Secret keys that hold them, for what to check.
	keys string
}

// blobStoreFor builds a Blob storage client for spec.endpoint with the
// credentials of spec.secretRef, taken in source-controller's order: a
// service principal (tenantId, clientId and clientSecret or
// clientCertificate), then accountKey, then sasKey. Without secretRef the
// requests are anonymous, for a public container.
func (r *Reconciler) blobStoreFor(ctx context.Context, obj *sourcev1.Bucket) (*blobStore, error) {
	var s *corev1.Secret
	if ref := obj.Spec.SecretRef; ref != nil {
		var err error
		if s, err = r.secret(ctx, obj, ref.Name); err != nil {
			return nil, retry(sourcev1.AuthenticationFailedReason, err)
		}
		if err := validateAzureSecret(s); err != nil {
			return nil, retry(sourcev1.AuthenticationFailedReason, err)
		}
	}
	transport, _, err := r.transport(ctx, obj)
	if err != nil {
		return nil, err
	}
	serviceURL, err := azureServiceURL(obj.Spec.Endpoint, obj.Spec.Insecure)
	if err != nil {
		return nil, stalled(sourcev1.URLInvalidReason, err)
	}
	hc := &http.Client{Transport: transport}
	opts := &azblob.ClientOptions{ClientOptions: azcore.ClientOptions{
		Transport: hc,
		Retry:     policy.RetryOptions{MaxRetries: maxRetries - 1},
	}}
	st := &blobStore{container: obj.Spec.BucketName}
	if s == nil {
		st.c, err = azblob.NewClientWithNoCredential(serviceURL, opts)
		return st, clientErr(err)
	}

	token, err := azureTokenCredential(s, hc)
	if err != nil {
		return nil, err
	}
	if token != nil {
		st.credentials, st.keys = fmt.Sprintf("the service principal of secret '%s'", s.Name), "'tenantId', 'clientId' and 'clientSecret' or 'clientCertificate'"
		st.c, err = azblob.NewClient(serviceURL, token, opts)
		return st, clientErr(err)
	}
	if key, ok := s.Data[azureAccountKey]; ok {
		account, err := azureAccountName(serviceURL)
		if err != nil {
			return nil, retry(sourcev1.AuthenticationFailedReason,
				fmt.Errorf("failed to create shared credential from '%s' Secret data: %w", s.Name, err))
		}
		cred, err := azblob.NewSharedKeyCredential(account, string(key))
		if err != nil {
			return nil, retry(sourcev1.AuthenticationFailedReason,
				fmt.Errorf("failed to create shared credential from '%s' Secret data: '%s' is not a base64 account key", s.Name, azureAccountKey))
		}
		st.credentials, st.keys = fmt.Sprintf("the account key of secret '%s'", s.Name), "'accountKey'"
		st.c, err = azblob.NewClientWithSharedKeyCredential(serviceURL, cred, opts)
		return st, clientErr(err)
	}
	if sas, ok := s.Data[azureSASKey]; ok {
		withSAS, err := sasURL(serviceURL, string(sas))
		if err != nil {
			return nil, retry(sourcev1.AuthenticationFailedReason, fmt.Errorf("invalid '%s' secret data: %w", s.Name, err))
		}
		st.credentials, st.keys = fmt.Sprintf("the SAS token of secret '%s'", s.Name), "'sasKey'"
		st.c, err = azblob.NewClientWithNoCredential(withSAS, opts)
		return st, clientErr(err)
	}
	// Only authorityHost: Flux tries the controller's environment and
	// cloud identity, which weir does not have.
	return nil, stalled(sourcev1.InvalidProviderConfigurationReason,
		fmt.Errorf("secret '%s' with only '%s' (credentials of the controller's own cloud identity) is not supported by weir yet: give %s",
			s.Name, azureAuthorityHost, azureKeys))
}

func clientErr(err error) error {
	if err != nil {
		return stalled(sourcev1.URLInvalidReason, fmt.Errorf("failed to create Blob storage client: %w", err))
	}
	return nil
}

// validateAzureSecret checks that a Secret has one set of credentials, as
// source-controller does, with its message.
func validateAzureSecret(s *corev1.Secret) error {
	has := func(k string) bool { _, ok := s.Data[k]; return ok }
	for _, k := range []string{azureClientID, azureAccountKey, azureSASKey, azureAuthorityHost} {
		if has(k) {
			return nil
		}
	}
	return fmt.Errorf("invalid '%s' secret data: requires a '%s' or '%s' field, a combination of '%s', '%s' and '%s', or '%s', '%s' and '%s'",
		s.Name, azureClientID, azureAccountKey, azureTenantID, azureClientID, azureClientSecret, azureTenantID, azureClientID, azureClientCertificate)
}

// azureTokenCredential is the Microsoft Entra ID credential of a service
// principal in s, nil when s holds none. Its tokens are asked of the
// authority over the Bucket's own transport. A managed identity (a
// clientId alone) is the cloud's identity of the controller's machine,
// which weir does not have.
func azureTokenCredential(s *corev1.Secret, hc *http.Client) (azcore.TokenCredential, error) {
	clientID, hasClientID := s.Data[azureClientID]
	opts := azcore.ClientOptions{Transport: hc}
	if host, ok := s.Data[azureAuthorityHost]; ok {
		opts.Cloud = cloud.Configuration{ActiveDirectoryAuthorityHost: string(host)}
	}
	if tenantID, ok := s.Data[azureTenantID]; ok && hasClientID {
		if secret := s.Data[azureClientSecret]; len(secret) > 0 {
			cred, err := azidentity.NewClientSecretCredential(string(tenantID), string(clientID), string(secret),
				&azidentity.ClientSecretCredentialOptions{ClientOptions: opts})
			if err != nil {
				return nil, retry(sourcev1.AuthenticationFailedReason,
					fmt.Errorf("failed to create token credential from '%s' Secret: %w", s.Name, err))
			}
			return cred, nil
		}
		if pem := s.Data[azureClientCertificate]; len(pem) > 0 {
			certs, key, err := azidentity.ParseCertificates(pem, s.Data[azureClientCertificatePassword])
			if err != nil {
				return nil, retry(sourcev1.AuthenticationFailedReason,
					fmt.Errorf("failed to create token credential from '%s' Secret: failed to parse client certificates: %w", s.Name, err))
			}
			sendChain := strings.ToLower(string(s.Data[azureClientCertificateSendChain]))
			cred, err := azidentity.NewClientCertificateCredential(string(tenantID), string(clientID), certs, key,
				&azidentity.ClientCertificateCredentialOptions{ClientOptions: opts, SendCertificateChain: sendChain == "1" || sendChain == "true"})
			if err != nil {
				return nil, retry(sourcev1.AuthenticationFailedReason,
					fmt.Errorf("failed to create token credential from '%s' Secret: %w", s.Name, err))
			}
			return cred, nil
		}
	}
	if hasClientID {
		return nil, stalled(sourcev1.InvalidProviderConfigurationReason,
			fmt.Errorf("a managed identity (secret '%s' with '%s' and no '%s' and '%s') is not supported by weir yet: give %s",
				s.Name, azureClientID, azureTenantID, azureClientSecret, azureKeys))
	}
	return nil, nil
}

// azureServiceURL is the Blob service URL of spec.endpoint: as given when
// it is a URL, as Flux takes it, else the host over HTTPS, or HTTP with
// spec.insecure.
func azureServiceURL(endpoint string, insecure bool) (string, error) {
	if endpoint == "" {
		return "", fmt.Errorf("spec.endpoint is empty")
	}
	if !strings.Contains(endpoint, "://") {
		scheme := "https://"
		if insecure {
			scheme = "http://"
		}
		endpoint = scheme + endpoint
	}
	u, err := url.Parse(endpoint)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return "", fmt.Errorf("invalid endpoint '%s': give a URL such as https://<account>.blob.core.windows.net", endpoint)
	}
	return endpoint, nil
}

// azureAccountName is the storage account of a service URL, for a shared
// key: the first label of the host, as Flux takes it, or the first path
// element of a URL whose host is an IP address or localhost (the
// path-style URLs of emulators and private endpoints,
// http://127.0.0.1:10000/<account>).
func azureAccountName(serviceURL string) (string, error) {
	u, err := url.Parse(serviceURL)
	if err != nil {
		return "", fmt.Errorf("failed to extract account name from endpoint: %w", err)
	}
	host := u.Hostname()
	if net.ParseIP(host) != nil || host == "localhost" {
		account, _, _ := strings.Cut(strings.TrimPrefix(u.Path, "/"), "/")
		if account == "" {
			return "", fmt.Errorf("failed to extract account name from endpoint: expected the account as the first path element of '%s'", serviceURL)
		}
		return account, nil
	}
	parts := strings.Split(host, ".")
	if len(parts) <= 2 {
		return "", fmt.Errorf("failed to extract account name from endpoint: expected '%s' to be a subdomain", host)
	}
	return parts[0], nil
}

// sasURL is the service URL with the SAS token's query values, which win
// over the URL's own, as in Flux. The token is never part of an error.
func sasURL(serviceURL, sas string) (string, error) {
	values, err := url.ParseQuery(strings.TrimPrefix(sas, "?"))
	if err != nil {
		return "", fmt.Errorf("unable to parse SAS token in '%s'", azureSASKey)
	}
	u, err := url.Parse(serviceURL)
	if err != nil {
		return "", fmt.Errorf("unable to parse endpoint URL: %w", err)
	}
	for k, vs := range u.Query() {
		if !values.Has(k) {
			values[k] = vs
		}
	}
	u.RawQuery = values.Encode()
	return u.String(), nil
}

// exists lists one blob, as source-controller does: a container-level SAS
// token is refused, rather than told the container is missing.
func (b *blobStore) exists(ctx context.Context) (bool, error) {
	p := b.c.NewListBlobsFlatPager(b.container, &azblob.ListBlobsFlatOptions{MaxResults: to.Ptr(int32(1))})
	if _, err := p.NextPage(ctx); err != nil {
		if bloberror.HasCode(err, bloberror.ContainerNotFound) {
			return false, nil
		}
		if bloberror.HasCode(err, bloberror.AuthenticationFailed) {
			return false, fmt.Errorf("the specified bucket name may be incorrect, nonexistent, or the caller might lack sufficient permissions to access it: %w", err)
		}
		return false, err
	}
	return true, nil
}

func (b *blobStore) list(ctx context.Context, prefix string, visit func(object) error) error {
	opts := &azblob.ListBlobsFlatOptions{}
	if prefix != "" {
		opts.Prefix = &prefix
	}
	p := b.c.NewListBlobsFlatPager(b.container, opts)
	for p.More() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return err
		}
		if page.Segment == nil {
			return nil
		}
		for _, item := range page.Segment.BlobItems {
			if item.Name == nil || item.Properties == nil || item.Properties.ETag == nil {
				return fmt.Errorf("the listing has a blob without a name or an ETag")
			}
			o := object{key: *item.Name, etag: blobETag(*item.Properties.ETag)}
			if item.Properties.ContentLength != nil {
				o.size = *item.Properties.ContentLength
			}
			if err := visit(o); err != nil {
				return err
			}
		}
	}
	return nil
}

// blobETag is the ETag of a blob as Flux writes it in its index: the hex
// of the ETag's characters. The quotes that a Get Blob's ETag header has,
// and a listing has not, are left out, so that a listing and a download
// give the same revision.
func blobETag(e azcore.ETag) string {
	return fmt.Sprintf("%x", strings.Trim(string(e), `"`))
}

// get downloads the blob: its ETag and length come with its bytes.
func (b *blobStore) get(ctx context.Context, key string) (io.ReadCloser, object, error) {
	resp, err := b.c.DownloadStream(ctx, b.container, key, nil)
	if err != nil {
		return nil, object{}, err
	}
	o := object{key: key, size: -1}
	if resp.ETag != nil {
		o.etag = blobETag(*resp.ETag)
	}
	if resp.ContentLength != nil {
		o.size = *resp.ContentLength
	}
	return resp.Body, o, nil
}

func (b *blobStore) isNotFound(err error) bool {
	return bloberror.HasCode(err, bloberror.BlobNotFound)
}

// explain puts the service's refusal on one line (the SDK's message spans
// many, with the whole response), and says what to check.
func (b *blobStore) explain(err error) error {
	var re *azcore.ResponseError
	if !errors.As(err, &re) {
		return err
	}
	msg := strings.Replace(err.Error(), re.Error(), summary(re), 1)
	switch bloberror.Code(re.ErrorCode) {
	case bloberror.AuthenticationFailed, bloberror.InvalidAuthenticationInfo, bloberror.NoAuthenticationInformation:
		if b.credentials == "" {
			msg += " (no credentials are set: give spec.secretRef a Secret with " + azureKeys + ")"
		} else {
			msg += fmt.Sprintf(" (%s was refused: check its %s)", b.credentials, b.keys)
		}
	case bloberror.AuthorizationFailure, bloberror.AuthorizationPermissionMismatch, bloberror.AuthorizationResourceTypeMismatch,
		bloberror.AuthorizationServiceMismatch, bloberror.AuthorizationProtocolMismatch, bloberror.AuthorizationSourceIPMismatch:
		if b.credentials != "" {
			msg += fmt.Sprintf(" (%s is not allowed to list and read the container)", b.credentials)
		}
	case bloberror.ResourceNotFound, "PublicAccessNotPermitted":
		if b.credentials == "" {
			msg += " (anonymous access was refused: give spec.secretRef a Secret with " + azureKeys + ")"
		}
	}
	return &reworded{msg: msg, err: err}
}

// summary is a Blob service refusal on one line: the request without its
// query (which may hold a SAS token), the status, the error code and the
// first line of the service's message.
func summary(re *azcore.ResponseError) string {
	if re.RawResponse == nil {
		return re.ErrorCode
	}
	s := fmt.Sprintf("%d %s", re.StatusCode, re.ErrorCode)
	if req := re.RawResponse.Request; req != nil {
		s = fmt.Sprintf("%s %s://%s%s: %s", req.Method, req.URL.Scheme, req.URL.Host, req.URL.EscapedPath(), s)
	}
	body, err := azruntime.Payload(re.RawResponse)
	if err != nil {
		return s
	}
	var e struct {
		Message string `xml:"Message"`
	}
	if xml.NewDecoder(bytes.NewReader(body)).Decode(&e) == nil && e.Message != "" {
		first, _, _ := strings.Cut(e.Message, "\n")
		s += ": " + strings.TrimSpace(first)
	}
	return s
}
