package artifact

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path/filepath"
)

// Digest returns the digest ("sha256:<hex>") that Archive would record for
// the tree at dir with ignore, without writing anything: a caller that
// already holds an artifact of that digest can keep it instead of storing
// the same bytes again, and the consumers of that artifact see no change.
func Digest(ctx context.Context, dir string, ignore Ignore) (string, error) {
	root, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return "", fmt.Errorf("reading the tree %s: %w", dir, err)
	}
	entries, err := collect(ctx, root, ignore)
	if err != nil {
		return "", fmt.Errorf("reading the tree %s: %w", dir, err)
	}
	h := sha256.New()
	if err := writeTarGz(ctx, h, root, entries); err != nil {
		return "", fmt.Errorf("hashing the tree %s: %w", dir, err)
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}
