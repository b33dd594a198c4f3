package chartfetch

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// DefaultCache is the cache folder of the user, <user cache dir>/weir/charts
// (such as ~/.cache/weir/charts), or weir-charts in the temporary folder
// when the user has none (a CI job without $HOME).
func DefaultCache() string {
	dir, err := os.UserCacheDir()
	if err != nil {
		return filepath.Join(os.TempDir(), "weir-charts")
	}
	return filepath.Join(dir, "weir", "charts")
}

// cache is the folder of fetched content:
//
//	blobs/sha256/<hex>  manifests and chart packages, by digest
//	refs/<hex>          what a name (a tag, a range, an index entry without
//	                    digest) resolved to last, keyed by the name's sha256
//	indexes/<hex>.yaml  a repository's index, keyed by its URL's sha256,
//	                    with its validators in <hex>.etag
type cache string

// blob is where content of digest (sha256:<hex>) is kept.
func (c cache) blob(digest string) (string, error) {
	hexPart, ok := strings.CutPrefix(digest, "sha256:")
	if !ok {
		hexPart = digest // an index entry's digest has no algorithm
	}
	if len(hexPart) != sha256.Size*2 || strings.Trim(hexPart, "0123456789abcdef") != "" {
		return "", fmt.Errorf("'%s' is not a sha256 digest", digest)
	}
	return filepath.Join(string(c), "blobs", "sha256", hexPart), nil
}

// has reports whether p is in the cache.
func has(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular()
}

// keyed is the path under folder of a name, by the name's digest.
func (c cache) keyed(folder, name, ext string) string {
	sum := sha256.Sum256([]byte(name))
	return filepath.Join(string(c), folder, hex.EncodeToString(sum[:])+ext)
}

// ref reads what name resolved to last; "" when the cache does not know.
func (c cache) ref(name string) string {
	b, err := os.ReadFile(c.keyed("refs", name, ""))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// setRef records what name resolved to.
func (c cache) setRef(name, value string) error {
	return write(c.keyed("refs", name, ""), []byte(value+"\n"))
}

// write puts data at p atomically: a file written beside it, then renamed,
// so that a reader (another run) sees the whole file or none.
func write(p string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return fmt.Errorf("creating the chart cache folder: %w", err)
	}
	f, err := os.CreateTemp(filepath.Dir(p), ".tmp-"+filepath.Base(p)+"-")
	if err != nil {
		return fmt.Errorf("writing to the chart cache: %w", err)
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, p)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("writing to the chart cache: %w", err)
	}
	return nil
}

// read reads p, nil when it is not in the cache.
func read(p string) ([]byte, error) {
	b, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the chart cache: %w", err)
	}
	return b, nil
}

// digestOf is the sha256 digest of b, sha256:<hex>.
func digestOf(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}
