package bucket

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/fluxcd/pkg/sourceignore"
	"github.com/fluxcd/pkg/sourceignore/gitignore"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/s3utils"
	"golang.org/x/sync/errgroup"
)

// Bounds on what one Bucket reads: the number of objects and the size of
// the ignore file. The total size is bounded by the store's tree size.
const (
	maxObjects        = 100_000
	maxIgnoreFileSize = 1 << 20
	// parallelFetches is the number of objects downloaded at once.
	parallelFetches = 16
)

// bucketClient reaches one Bucket's bucket.
type bucketClient struct {
	c        *minio.Client
	name     string
	endpoint string
	prefix   string
	// credentials names where the credentials came from ("secret 'x'"),
	// empty for anonymous requests.
	credentials string
}

// index is the list of a bucket's objects that go into the artifact: key
// to ETag, and the size each had when listed.
type index struct {
	mu    sync.Mutex
	etags map[string]string
	sizes map[string]int64
}

func newIndex() *index {
	return &index{etags: map[string]string{}, sizes: map[string]int64{}}
}

func (i *index) len() int {
	i.mu.Lock()
	defer i.mu.Unlock()
	return len(i.etags)
}

func (i *index) keys() []string {
	i.mu.Lock()
	defer i.mu.Unlock()
	keys := make([]string, 0, len(i.etags))
	for k := range i.etags {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// revision is Flux's revision of a Bucket: the sha256 digest of
// "<key> <etag>\n" for each key, keys sorted.
func (i *index) revision() string {
	h := sha256.New()
	for _, k := range i.keys() {
		i.mu.Lock()
		etag := i.etags[k]
		i.mu.Unlock()
		fmt.Fprintf(h, "%s %s\n", k, etag)
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}

// index lists the bucket under spec.prefix, minus the keys matched by the
// bucket's own .sourceignore (read from the bucket's root, as Flux does)
// and spec.ignore, and minus folder markers. It fails on a key that
// cannot be a path inside the artifact, on more than maxObjects objects,
// or when the objects come to more than maxSize bytes.
func (b *bucketClient) index(ctx context.Context, obj *sourcev1.Bucket, maxSize int64) (*index, error) {
	exists, err := b.c.BucketExists(ctx, b.name)
	if err != nil {
		return nil, fmt.Errorf("failed to confirm existence of '%s' bucket: %w", b.name, b.describe(ctx, err))
	}
	if !exists {
		return nil, fmt.Errorf("bucket '%s' not found", b.name)
	}
	patterns, err := b.ignoreFile(ctx)
	if err != nil {
		return nil, err
	}
	if obj.Spec.Ignore != nil {
		// In-spec patterns come last and win.
		patterns = append(patterns, sourceignore.ReadPatterns(strings.NewReader(*obj.Spec.Ignore), nil)...)
	}
	matcher := sourceignore.NewMatcher(patterns)

	idx := newIndex()
	var total int64
	opts := minio.ListObjectsOptions{Recursive: true, Prefix: b.prefix, UseV1: s3utils.IsGoogleEndpoint(*b.c.EndpointURL())}
	listCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	for o := range b.c.ListObjects(listCtx, b.name, opts) {
		if o.Err != nil {
			return nil, fmt.Errorf("indexation of objects from bucket '%s' failed: listing objects from bucket '%s' failed: %w",
				b.name, b.name, b.describe(ctx, o.Err))
		}
		if strings.HasSuffix(o.Key, "/") || o.Key == sourceignore.IgnoreFile {
			continue
		}
		if matcher.Match(strings.Split(o.Key, "/"), false) {
			continue
		}
		if err := checkKey(o.Key); err != nil {
			return nil, fmt.Errorf("indexation of objects from bucket '%s' failed: %w", b.name, err)
		}
		if len(idx.etags) == maxObjects {
			return nil, fmt.Errorf("bucket '%s' holds more than %d objects under prefix '%s': narrow spec.prefix or leave objects out with spec.ignore",
				b.name, maxObjects, b.prefix)
		}
		total += o.Size
		if total > maxSize {
			return nil, fmt.Errorf("the objects of bucket '%s' under prefix '%s' come to more than the %d bytes limit of one artifact: narrow spec.prefix or leave objects out with spec.ignore",
				b.name, b.prefix, maxSize)
		}
		idx.etags[o.Key] = o.ETag
		idx.sizes[o.Key] = o.Size
	}
	return idx, nil
}

// ignoreFile reads the patterns of the .sourceignore object at the
// bucket's root, if there is one.
func (b *bucketClient) ignoreFile(ctx context.Context) ([]gitignore.Pattern, error) {
	o, err := b.c.GetObject(ctx, b.name, sourceignore.IgnoreFile, minio.GetObjectOptions{})
	if err == nil {
		defer o.Close()
		data, rerr := io.ReadAll(io.LimitReader(o, maxIgnoreFileSize))
		if rerr == nil {
			return sourceignore.ReadPatterns(strings.NewReader(string(data)), nil), nil
		}
		err = rerr
	}
	if isNotFound(err) {
		return nil, nil
	}
	return nil, fmt.Errorf("failed to get Etag for '%s' object: %w", sourceignore.IgnoreFile, b.describe(ctx, err))
}

// checkKey refuses an object key that is not a plain relative path: one
// that is absolute, climbs with "..", or holds "." or empty elements
// (which would name the same file as another key) or a NUL byte.
func checkKey(key string) error {
	bad := strings.HasPrefix(key, "/") || strings.ContainsRune(key, 0)
	for _, el := range strings.Split(key, "/") {
		if el == "" || el == "." || el == ".." {
			bad = true
		}
	}
	if bad || !filepath.IsLocal(filepath.FromSlash(key)) {
		return fmt.Errorf("object key '%s' is not a relative path inside the bucket (absolute, or with '..', '.' or empty elements): remove the object or leave it out with spec.ignore", key)
	}
	return nil
}

// download fetches every object of the index into dir, at most
// parallelFetches at once. An object deleted since it was listed is
// dropped from the index, and one changed since is recorded with its new
// ETag, as source-controller does, so that the revision says what was
// downloaded. What is written is bounded by maxSize in all.
func (b *bucketClient) download(ctx context.Context, idx *index, dir string, maxSize int64) error {
	var written atomic.Int64
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(parallelFetches)
	for _, key := range idx.keys() {
		g.Go(func() error {
			etag, err := b.fetch(gctx, key, filepath.Join(dir, filepath.FromSlash(key)), maxSize, &written)
			switch {
			case isNotFound(err):
				idx.mu.Lock()
				delete(idx.etags, key)
				idx.mu.Unlock()
				return nil
			case err != nil:
				return fmt.Errorf("failed to get '%s' object: %w", key, err)
			}
			idx.mu.Lock()
			idx.etags[key] = etag
			idx.mu.Unlock()
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return fmt.Errorf("fetch from bucket '%s' failed: %w", b.name, err)
	}
	return nil
}

// fetch downloads one object to target and returns its ETag. The object is
// read by the ETag it had when stat'ed, so that the ETag returned is that
// of the bytes written.
func (b *bucketClient) fetch(ctx context.Context, key, target string, maxSize int64, written *atomic.Int64) (string, error) {
	stat, err := b.c.StatObject(ctx, b.name, key, minio.StatObjectOptions{})
	if err != nil {
		return "", b.describe(ctx, err)
	}
	opts := minio.GetObjectOptions{}
	if err := opts.SetMatchETag(stat.ETag); err != nil {
		return "", err
	}
	o, err := b.c.GetObject(ctx, b.name, key, opts)
	if err != nil {
		return "", b.describe(ctx, err)
	}
	defer o.Close()
	if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
		return "", fmt.Errorf("creating the folder of '%s': %w", path.Dir(key), err)
	}
	f, err := os.OpenFile(target, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return "", fmt.Errorf("writing '%s': %w", key, err)
	}
	n, err := io.Copy(f, &budgetReader{r: o, written: written, limit: maxSize})
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", b.describe(ctx, err)
	}
	if n != stat.Size {
		return "", fmt.Errorf("read %d bytes of %d", n, stat.Size)
	}
	return stat.ETag, nil
}

// errTooLarge is returned by budgetReader past its limit.
var errTooLarge = errors.New("the objects come to more than the size limit of one artifact: narrow spec.prefix or leave objects out with spec.ignore")

// budgetReader counts what it reads against a limit shared by every
// object of one download.
type budgetReader struct {
	r       io.Reader
	written *atomic.Int64
	limit   int64
}

func (b *budgetReader) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if b.written.Add(int64(n)) > b.limit {
		return n, errTooLarge
	}
	return n, err
}

// isNotFound reports whether S3 said that a key does not exist.
func isNotFound(err error) bool {
	if err == nil {
		return false
	}
	return minio.ToErrorResponse(err).Code == "NoSuchKey"
}

// describe words an S3 failure for the person who set up the Bucket: the
// server's own message, and what to check when it refused the credentials
// or could not be reached. No credential is ever part of it.
func (b *bucketClient) describe(ctx context.Context, err error) error {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("timed out talking to '%s' (raise spec.timeout if it is slow): %w", b.endpoint, err)
	}
	var certErr *tls.CertificateVerificationError
	if errors.As(err, &certErr) {
		return fmt.Errorf("the certificate of '%s' is not trusted (%v): give its authority as 'ca.crt' in spec.certSecretRef", b.endpoint, certErr.Err)
	}
	var opErr *net.OpError
	if errors.As(err, &opErr) {
		return fmt.Errorf("endpoint '%s' is unreachable: %w", b.endpoint, opErr)
	}
	resp := minio.ToErrorResponse(err)
	switch resp.Code {
	case "InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken", "ExpiredToken":
		if b.credentials == "" {
			return fmt.Errorf("%w (no credentials are set: give spec.secretRef a Secret with 'accesskey' and 'secretkey')", err)
		}
		return fmt.Errorf("%w (the credentials of %s were refused: check its 'accesskey' and 'secretkey')", err, b.credentials)
	case "AccessDenied":
		if b.credentials == "" {
			return fmt.Errorf("%w (anonymous access was refused: give spec.secretRef a Secret with 'accesskey' and 'secretkey')", err)
		}
		return fmt.Errorf("%w (the credentials of %s are not allowed to read the bucket)", err, b.credentials)
	}
	return err
}
