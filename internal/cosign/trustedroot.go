package cosign

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/tuf"
	corev1 "k8s.io/api/core/v1"
)

// TrustedRootKey is the entry of a Secret named by an OCIRepository's
// spec.verify.trustedRootSecretRef that holds the trusted root, as in
// source-controller.
const TrustedRootKey = "trusted_root.json"

// TrustedRootEnv names the environment variable that gives `weir
// controller` a trusted_root.json file when --sigstore-trusted-root is not
// set.
const TrustedRootEnv = "WEIR_SIGSTORE_TRUSTED_ROOT"

// How often the public-good trusted root is fetched again from Sigstore's
// TUF repository, and how long to wait after a failed fetch, as
// source-controller waits a minute.
const (
	publicGoodRefresh = 24 * time.Hour
	publicGoodRetry   = time.Minute
)

// TrustedRoot is the Sigstore trust material keyless signatures are checked
// against: the Fulcio certificate authorities, the Rekor and certificate
// transparency log keys, with their validity periods. It is read from a
// trusted_root.json, the format `cosign trusted-root create` writes and
// Sigstore's TUF repository serves.
type TrustedRoot struct {
	// Source says where it came from, for messages.
	Source   string
	material root.TrustedMaterial
}

// ParseTrustedRoot reads a trusted_root.json; source says where it came
// from.
func ParseTrustedRoot(source string, b []byte) (*TrustedRoot, error) {
	tr, err := root.NewTrustedRootFromJSON(b)
	if err != nil {
		return nil, fmt.Errorf("%s is not a Sigstore trusted root (trusted_root.json): %w", source, err)
	}
	if len(tr.FulcioCertificateAuthorities()) == 0 {
		return nil, fmt.Errorf("%s names no certificate authority: keyless signatures cannot be verified with it", source)
	}
	if len(tr.RekorLogs()) == 0 {
		return nil, fmt.Errorf("%s names no transparency log: keyless signatures cannot be verified with it", source)
	}
	return &TrustedRoot{Source: source, material: tr}, nil
}

// TrustedRootFromSecret reads the trusted_root.json entry of s, which an
// OCIRepository names in spec.verify.trustedRootSecretRef.
func TrustedRootFromSecret(s *corev1.Secret) (*TrustedRoot, error) {
	b, ok := s.Data[TrustedRootKey]
	if !ok {
		return nil, fmt.Errorf("'%s' not found in secret '%s/%s'", TrustedRootKey, s.Namespace, s.Name)
	}
	return ParseTrustedRoot(fmt.Sprintf("'%s' in secret '%s/%s'", TrustedRootKey, s.Namespace, s.Name), b)
}

// Roots gives the controllers the trusted root of keyless verification
// when an object names none: the trusted_root.json in File if set (for a
// private Sigstore deployment or an air-gapped cluster), read again when
// the file changes; else the public-good instance's, fetched from
// Sigstore's TUF repository (tuf-repo-cdn.sigstore.dev, checked against
// the TUF root built into weir) at the first keyless verification, kept in
// memory and fetched again every day. The zero value uses the public-good
// instance. A Roots is safe for concurrent use.
type Roots struct {
	// File is the path of a trusted_root.json; empty uses the public-good
	// instance.
	File string

	mu      sync.Mutex
	cached  *TrustedRoot
	modTime time.Time
	size    int64
	at      time.Time
	err     error
}

// Get returns the trusted root to verify with.
func (r *Roots) Get(ctx context.Context) (*TrustedRoot, error) {
	if r.File != "" {
		return r.fromFile()
	}
	return r.publicGood(ctx)
}

func (r *Roots) fromFile() (*TrustedRoot, error) {
	fi, err := os.Stat(r.File)
	if err != nil {
		return nil, fmt.Errorf("reading the trusted root of --sigstore-trusted-root: %w", err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cached != nil && fi.ModTime().Equal(r.modTime) && fi.Size() == r.size {
		return r.cached, nil
	}
	b, err := os.ReadFile(r.File)
	if err != nil {
		return nil, fmt.Errorf("reading the trusted root of --sigstore-trusted-root: %w", err)
	}
	tr, err := ParseTrustedRoot(fmt.Sprintf("'%s' (--sigstore-trusted-root)", r.File), b)
	if err != nil {
		return nil, err
	}
	r.cached, r.modTime, r.size = tr, fi.ModTime(), fi.Size()
	return tr, nil
}

func (r *Roots) publicGood(ctx context.Context) (*TrustedRoot, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := time.Now()
	switch {
	case r.cached != nil && now.Sub(r.at) < publicGoodRefresh:
		return r.cached, nil
	case r.err != nil && now.Sub(r.at) < publicGoodRetry:
		return nil, r.err
	}
	r.at = now
	tr, err := fetchPublicGood(ctx)
	if err != nil {
		if r.cached != nil {
			// Keep verifying with the root we have until a fetch works.
			return r.cached, nil
		}
		r.err = fmt.Errorf("unable to initialize trusted root: %w", err)
		return nil, r.err
	}
	r.cached, r.err = tr, nil
	return tr, nil
}

// fetchPublicGood fetches the public-good trusted root through TUF,
// without a cache on disk: weir's file system may be read-only.
func fetchPublicGood(ctx context.Context) (*TrustedRoot, error) {
	type result struct {
		tr  *TrustedRoot
		err error
	}
	done := make(chan result, 1)
	go func() {
		opts := tuf.DefaultOptions().WithDisableLocalCache().WithContext(ctx)
		c, err := tuf.New(opts)
		if err != nil {
			done <- result{err: fmt.Errorf("reaching Sigstore's TUF repository %s: %w", opts.RepositoryBaseURL, err)}
			return
		}
		b, err := c.GetTarget(TrustedRootKey)
		if err != nil {
			done <- result{err: fmt.Errorf("fetching %s from Sigstore's TUF repository: %w", TrustedRootKey, err)}
			return
		}
		tr, err := ParseTrustedRoot("the public-good Sigstore trusted root", b)
		done <- result{tr, err}
	}()
	select {
	case res := <-done:
		return res.tr, res.err
	case <-ctx.Done():
		return nil, errors.Join(errors.New("fetching the public-good Sigstore trusted root"), ctx.Err())
	}
}
