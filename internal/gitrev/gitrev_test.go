package gitrev

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing/object"
)

func write(t *testing.T, root, name, content string) {
	t.Helper()
	p := filepath.Join(root, filepath.FromSlash(name))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// A commit's folder is written out as a checkout lays it out, and the
// files changed since a commit include committed, uncommitted, new and
// deleted ones.
func TestExportAndChanged(t *testing.T) {
	top := t.TempDir()
	g, err := git.PlainInit(top, false)
	if err != nil {
		t.Fatal(err)
	}
	wt, err := g.Worktree()
	if err != nil {
		t.Fatal(err)
	}
	commit := func() {
		t.Helper()
		if err := wt.AddWithOptions(&git.AddOptions{All: true}); err != nil {
			t.Fatal(err)
		}
		if _, err := wt.Commit("c", &git.CommitOptions{All: true, Author: &object.Signature{Name: "t", Email: "t@example.org", When: time.Now()}}); err != nil {
			t.Fatal(err)
		}
	}
	write(t, top, "fleet/apps/a.yaml", "a: 1\n")
	write(t, top, "fleet/apps/b.yaml", "b: 1\n")
	write(t, top, "other/c.yaml", "c: 1\n")
	commit()

	r, rel, err := OpenAt(filepath.Join(top, "fleet"))
	if err != nil {
		t.Fatal(err)
	}
	if rel != "fleet" {
		t.Fatalf("rel = %q, want fleet", rel)
	}
	first, err := r.Resolve("HEAD")
	if err != nil {
		t.Fatal(err)
	}
	write(t, top, "fleet/apps/a.yaml", "a: 2\n")
	commit()
	write(t, top, "fleet/apps/new.yaml", "n: 1\n") // untracked
	if err := os.Remove(filepath.Join(top, "fleet", "apps", "b.yaml")); err != nil {
		t.Fatal(err)
	}

	dest := t.TempDir()
	if err := r.Export(first, "fleet", dest); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(dest, "fleet", "apps", "a.yaml")); err != nil || string(b) != "a: 1\n" {
		t.Errorf("the export of the first commit has a.yaml = %q (%v), want its first content", b, err)
	}
	if _, err := os.Stat(filepath.Join(dest, "other")); err == nil {
		t.Error("the export wrote a folder outside its prefix")
	}

	changed, err := r.Changed(first)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(changed)
	if want := []string{"fleet/apps/a.yaml", "fleet/apps/b.yaml", "fleet/apps/new.yaml"}; !slices.Equal(changed, want) {
		t.Errorf("changed since the first commit = %v, want %v", changed, want)
	}
	if _, err := r.Resolve("no-such-branch"); err == nil {
		t.Error("an unknown revision resolved")
	}
}
