package bucket

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"cloud.google.com/go/auth"
	"cloud.google.com/go/auth/credentials"
	"cloud.google.com/go/auth/httptransport"
	"cloud.google.com/go/storage"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	"google.golang.org/api/googleapi"
	"google.golang.org/api/iterator"
	"google.golang.org/api/option"
)

// gcsServiceAccountKey is the key of a secretRef Secret that holds a
// service account key in JSON, as in Flux.
const gcsServiceAccountKey = "serviceaccount"

// gcsStore reads a Google Cloud Storage bucket with the Cloud Storage
// client library, for provider "gcp".
type gcsStore struct {
	c      *storage.Client
	bucket string
	// credentials names the Secret of the service account key.
	credentials string
}

// gcsStoreFor reads the service account key of spec.secretRef and builds
// a Cloud Storage client for spec.endpoint. The key's own token_uri is
// where it is exchanged for access tokens, read-only ones, over the same
// transport (spec.proxySecretRef, spec.certSecretRef) as the requests.
func (r *Reconciler) gcsStoreFor(ctx context.Context, obj *sourcev1.Bucket) (*gcsStore, error) {
	ref := obj.Spec.SecretRef // unsupported refuses gcp without one
	s, err := r.secret(ctx, obj, ref.Name)
	if err != nil {
		return nil, retry(sourcev1.AuthenticationFailedReason, err)
	}
	key, ok := s.Data[gcsServiceAccountKey]
	if !ok {
		return nil, retry(sourcev1.AuthenticationFailedReason,
			fmt.Errorf("invalid '%s' secret data: required fields '%s'", s.Name, gcsServiceAccountKey))
	}
	transport, _, err := r.transport(ctx, obj)
	if err != nil {
		return nil, err
	}
	endpoint, err := gcsEndpoint(obj.Spec.Endpoint, obj.Spec.Insecure)
	if err != nil {
		return nil, stalled(sourcev1.URLInvalidReason, err)
	}

	// Only a key of type service_account is taken: other credential files
	// (external accounts, for one) make the client read files or call URLs
	// that they name.
	creds, err := credentials.NewCredentialsFromJSON(credentials.ServiceAccount, key, &credentials.DetectOptions{
		Scopes: []string{storage.ScopeReadOnly},
		Client: &http.Client{Transport: transport},
	})
	if err != nil {
		return nil, retry(sourcev1.AuthenticationFailedReason,
			fmt.Errorf("invalid '%s' secret data: '%s' is not a service account key in JSON: %w", s.Name, gcsServiceAccountKey, err))
	}
	hc, err := httptransport.NewClient(&httptransport.Options{Credentials: creds, BaseRoundTripper: transport})
	if err != nil {
		return nil, retry(sourcev1.AuthenticationFailedReason, fmt.Errorf("failed to create Google HTTP transport: %w", err))
	}
	// WithAuthCredentials as well as the authenticated client: without
	// it, the library would look for the machine's own credentials.
	opts := []option.ClientOption{option.WithHTTPClient(hc), option.WithAuthCredentials(creds)}
	if endpoint != "" {
		opts = append(opts, option.WithEndpoint(endpoint))
	}
	c, err := storage.NewClient(ctx, opts...)
	if err != nil {
		return nil, retry(sourcev1.AuthenticationFailedReason, fmt.Errorf("failed to create Cloud Storage client: %w", err))
	}
	return &gcsStore{c: c, bucket: obj.Spec.BucketName, credentials: fmt.Sprintf("secret '%s'", ref.Name)}, nil
}

// gcsEndpoint is the JSON API endpoint for spec.endpoint: empty (the
// library's own) for Google's hosts, which Flux always uses, else the
// host given, over HTTPS unless spec.insecure, for a server that speaks
// the Cloud Storage API elsewhere.
func gcsEndpoint(endpoint string, insecure bool) (string, error) {
	scheme, host := "https", endpoint
	if insecure {
		scheme = "http"
	}
	if strings.Contains(endpoint, "://") {
		u, err := url.Parse(endpoint)
		if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
			return "", fmt.Errorf("invalid endpoint '%s': give a host and optional port, or an http(s) URL", endpoint)
		}
		if u.Scheme == "http" && !insecure {
			return "", fmt.Errorf("invalid endpoint '%s': plain HTTP needs spec.insecure", endpoint)
		}
		if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
			return "", fmt.Errorf("invalid endpoint '%s': give a host and optional port without a path", endpoint)
		}
		scheme, host = u.Scheme, u.Host
	} else if strings.ContainsAny(endpoint, "/?#") {
		return "", fmt.Errorf("invalid endpoint '%s': give a host and optional port without a path", endpoint)
	}
	switch host {
	case "", "storage.googleapis.com", "www.googleapis.com":
		return "", nil
	}
	return scheme + "://" + host + "/storage/v1/", nil
}

func (g *gcsStore) exists(ctx context.Context) (bool, error) {
	_, err := g.c.Bucket(g.bucket).Attrs(ctx)
	if errors.Is(err, storage.ErrBucketNotExist) {
		return false, nil
	}
	return err == nil, err
}

func (g *gcsStore) list(ctx context.Context, prefix string, visit func(object) error) error {
	q := &storage.Query{Prefix: prefix}
	if err := q.SetAttrSelection([]string{"Name", "Etag", "Size"}); err != nil {
		return err
	}
	it := g.c.Bucket(g.bucket).Objects(ctx, q)
	for {
		attrs, err := it.Next()
		if errors.Is(err, iterator.Done) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := visit(object{key: attrs.Name, etag: attrs.Etag, size: attrs.Size}); err != nil {
			return err
		}
	}
}

// get reads the generation that the object's attributes describe, as
// source-controller does, so that the ETag returned is that of the bytes
// read.
func (g *gcsStore) get(ctx context.Context, key string) (io.ReadCloser, object, error) {
	h := g.c.Bucket(g.bucket).Object(key)
	attrs, err := h.Attrs(ctx)
	if err != nil {
		return nil, object{}, err
	}
	r, err := h.If(storage.Conditions{GenerationMatch: attrs.Generation}).NewReader(ctx)
	if err != nil {
		return nil, object{}, err
	}
	size := attrs.Size
	if attrs.ContentEncoding == "gzip" {
		// Served decompressed: the stored size is not the size read.
		size = -1
	}
	return r, object{key: key, etag: attrs.Etag, size: size}, nil
}

func (g *gcsStore) isNotFound(err error) bool {
	return errors.Is(err, storage.ErrObjectNotExist)
}

func (g *gcsStore) explain(err error) error {
	var tokenErr *auth.Error
	if errors.As(err, &tokenErr) {
		// The library's message puts the token endpoint's answer on a
		// line of its own.
		msg := strings.TrimSpace(strings.ReplaceAll(err.Error(), "\n", " "))
		return &reworded{msg: fmt.Sprintf("%s (the service account key of %s was refused: check its '%s')", msg, g.credentials, gcsServiceAccountKey), err: err}
	}
	var apiErr *googleapi.Error
	if errors.As(err, &apiErr) {
		switch apiErr.Code {
		case http.StatusUnauthorized:
			return fmt.Errorf("%w (the access token of the service account key of %s was refused)", err, g.credentials)
		case http.StatusForbidden:
			return fmt.Errorf("%w (the service account of %s is not allowed to read the bucket)", err, g.credentials)
		}
	}
	return err
}
