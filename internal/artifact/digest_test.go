package artifact

import (
	"context"
	"os"
	"testing"
)

// Digest tells, without storing anything, the digest Archive gives the
// same tree: a generator compares it with the artifact it holds.
func TestDigestIsArchivesDigest(t *testing.T) {
	s := newStore(t)
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{"apps/a.yaml": "a: 1\n", "b.yaml": "b: 2\n", "logo.png": "png"})
	got, err := Digest(context.Background(), dir, Ignore{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(s.Root); !os.IsNotExist(err) {
		t.Fatalf("Digest wrote to the store: %v", err)
	}
	a, err := s.Archive(context.Background(), podinfo, "latest", dir, Ignore{})
	if err != nil {
		t.Fatal(err)
	}
	if got != a.Digest {
		t.Errorf("Digest = %s, Archive recorded %s", got, a.Digest)
	}
}
