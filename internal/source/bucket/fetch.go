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
	"net/url"
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

// objectStore is one provider's access to one bucket: what a Bucket's
// reconcile needs from S3, Cloud Storage or Blob storage, and no more.
type objectStore interface {
	// exists reports whether the bucket exists.
	exists(ctx context.Context) (bool, error)
	// list calls visit with each object whose key starts with prefix, and
	// stops at the first error visit returns, returning it as it is.
	list(ctx context.Context, prefix string, visit func(object) error) error
	// get opens an object, with the ETag and size of the bytes it reads
	// (size -1 when the provider cannot tell them in advance).
	get(ctx context.Context, key string) (io.ReadCloser, object, error)
	// isNotFound reports whether err says that an object does not exist.
	isNotFound(err error) bool
	// explain words a refusal of the provider for the person who set up
	// the Bucket (what to check in its credentials), or returns err.
	explain(err error) error
}

// object is one object of a bucket as a provider lists or reads it.
type object struct {
	key  string
	etag string
	size int64
}

// bucketClient reaches one Bucket's bucket through its provider.
type bucketClient struct {
	store    objectStore
	name     string
	endpoint string
	prefix   string
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
	exists, err := b.store.exists(ctx)
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
	// refused is why visit stopped the listing: it is returned as it is,
	// where a failure of the listing itself is described.
	var refused error
	visit := func(o object) error {
		if strings.HasSuffix(o.key, "/") || o.key == sourceignore.IgnoreFile {
			return nil
		}
		if matcher.Match(strings.Split(o.key, "/"), false) {
			return nil
		}
		if err := checkKey(o.key); err != nil {
			refused = fmt.Errorf("indexation of objects from bucket '%s' failed: %w", b.name, err)
			return refused
		}
		if len(idx.etags) == maxObjects {
			refused = fmt.Errorf("bucket '%s' holds more than %d objects under prefix '%s': narrow spec.prefix or leave objects out with spec.ignore",
				b.name, maxObjects, b.prefix)
			return refused
		}
		total += o.size
		if total > maxSize {
			refused = fmt.Errorf("the objects of bucket '%s' under prefix '%s' come to more than the %d bytes limit of one artifact: narrow spec.prefix or leave objects out with spec.ignore",
				b.name, b.prefix, maxSize)
			return refused
		}
		idx.etags[o.key] = o.etag
		idx.sizes[o.key] = o.size
		return nil
	}
	listCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	if err := b.store.list(listCtx, b.prefix, visit); err != nil {
		if refused != nil {
			return nil, refused
		}
		return nil, fmt.Errorf("indexation of objects from bucket '%s' failed: listing objects from bucket '%s' failed: %w",
			b.name, b.name, b.describe(ctx, err))
	}
	return idx, nil
}

// ignoreFile reads the patterns of the .sourceignore object at the
// bucket's root, if there is one.
func (b *bucketClient) ignoreFile(ctx context.Context) ([]gitignore.Pattern, error) {
	r, _, err := b.store.get(ctx, sourceignore.IgnoreFile)
	if err == nil {
		defer r.Close()
		data, rerr := io.ReadAll(io.LimitReader(r, maxIgnoreFileSize))
		if rerr == nil {
			return sourceignore.ReadPatterns(strings.NewReader(string(data)), nil), nil
		}
		err = rerr
	}
	if b.store.isNotFound(err) {
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
			case b.store.isNotFound(err):
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

// fetch downloads one object to target and returns its ETag: that of the
// bytes written, which the provider gives with them.
func (b *bucketClient) fetch(ctx context.Context, key, target string, maxSize int64, written *atomic.Int64) (string, error) {
	r, o, err := b.store.get(ctx, key)
	if err != nil {
		if b.store.isNotFound(err) {
			return "", err
		}
		return "", b.describe(ctx, err)
	}
	defer r.Close()
	if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
		return "", fmt.Errorf("creating the folder of '%s': %w", path.Dir(key), err)
	}
	f, err := os.OpenFile(target, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return "", fmt.Errorf("writing '%s': %w", key, err)
	}
	n, err := io.Copy(f, &budgetReader{r: r, written: written, limit: maxSize})
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", b.describe(ctx, err)
	}
	if o.size >= 0 && n != o.size {
		return "", fmt.Errorf("read %d bytes of %d", n, o.size)
	}
	return o.etag, nil
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

// describe words a provider's failure for the person who set up the
// Bucket: the server's own message, and what to check when it refused the
// credentials or could not be reached. No credential is ever part of it.
func (b *bucketClient) describe(ctx context.Context, err error) error {
	err = withoutQuery(err)
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
	return b.store.explain(err)
}

// withoutQuery hides the query of the URL in a failed request's error,
// which may hold a credential (an Azure SAS token), as source-controller
// sanitizes its errors.
func withoutQuery(err error) error {
	var ue *url.Error
	if !errors.As(err, &ue) {
		return err
	}
	u, perr := url.Parse(ue.URL)
	if perr != nil || (u.RawQuery == "" && !u.ForceQuery) {
		return err
	}
	u.RawQuery, u.ForceQuery = "", false
	return &reworded{msg: strings.ReplaceAll(err.Error(), ue.URL, u.String()), err: err}
}

// reworded is an error with another message, which still unwraps to it.
type reworded struct {
	msg string
	err error
}

func (e *reworded) Error() string { return e.msg }
func (e *reworded) Unwrap() error { return e.err }
