package gitserver

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// writeFiles writes files (slash-separated path to content) under dir.
func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		path := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// treeFiles lists the files of commit h as path to content.
func treeFiles(t *testing.T, repo *git.Repository, h plumbing.Hash) map[string]string {
	t.Helper()
	commit, err := repo.CommitObject(h)
	if err != nil {
		t.Fatalf("reading commit %s: %v", h, err)
	}
	files, err := commit.Files()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	err = files.ForEach(func(f *object.File) error {
		content, err := f.Contents()
		got[f.Name] = content
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func mustSnapshot(t *testing.T, repo *git.Repository, dir string) plumbing.Hash {
	t.Helper()
	h, err := Snapshot(repo, "main", dir, "test snapshot")
	if err != nil {
		t.Fatalf("Snapshot: %v", err)
	}
	return h
}

func TestSnapshotCommitsEveryFileExceptIgnoredOnes(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"README.md":                       "hello\n",
		"apps/podinfo/kustomization.yaml": "resources: [deploy.yaml]\n",
		"apps/podinfo/deploy.yaml":        "kind: Deployment\n",
		".gitignore":                      "# local files\nsecret.txt\nbuild/\n",
		"secret.txt":                      "do not commit\n",
		"build/out.bin":                   "binary\n",
		"apps/.gitignore":                 "*.tmp\n",
		"apps/notes.tmp":                  "scratch\n",
		"notes.tmp":                       "kept: the apps/.gitignore does not reach here\n",
		".git/config":                     "[core]\n",
		".weir/state":                     "local state\n",
		"empty/.gitignore":                "*\n",
	})
	if err := os.MkdirAll(filepath.Join(dir, "only-empty-folders", "inner"), 0o755); err != nil {
		t.Fatal(err)
	}

	repo := NewMemoryRepository()
	h := mustSnapshot(t, repo, dir)

	got := treeFiles(t, repo, h)
	want := map[string]string{
		"README.md":                       "hello\n",
		"apps/podinfo/kustomization.yaml": "resources: [deploy.yaml]\n",
		"apps/podinfo/deploy.yaml":        "kind: Deployment\n",
		".gitignore":                      "# local files\nsecret.txt\nbuild/\n",
		"apps/.gitignore":                 "*.tmp\n",
		"notes.tmp":                       "kept: the apps/.gitignore does not reach here\n",
	}
	if len(got) != len(want) {
		t.Errorf("snapshot has files %v, want %v", sortedKeys(got), sortedKeys(want))
	}
	for name, content := range want {
		if got[name] != content {
			t.Errorf("file %s = %q, want %q", name, got[name], content)
		}
	}

	head, err := repo.Head()
	if err != nil {
		t.Fatalf("HEAD does not lead to the snapshot: %v", err)
	}
	if head.Name() != plumbing.NewBranchReferenceName("main") || head.Hash() != h {
		t.Errorf("HEAD = %s at %s, want refs/heads/main at %s", head.Name(), head.Hash(), h)
	}
}

func TestSnapshotRecordsExecutablesAndSymlinks(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"README.md": "hello\n", "run.sh": "#!/bin/sh\n"})
	if err := os.Chmod(filepath.Join(dir, "run.sh"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("README.md", filepath.Join(dir, "link")); err != nil {
		t.Skipf("symbolic links unavailable: %v", err)
	}

	repo := NewMemoryRepository()
	h := mustSnapshot(t, repo, dir)
	commit, err := repo.CommitObject(h)
	if err != nil {
		t.Fatal(err)
	}
	tree, err := commit.Tree()
	if err != nil {
		t.Fatal(err)
	}
	for name, mode := range map[string]filemode.FileMode{
		"README.md": filemode.Regular,
		"run.sh":    filemode.Executable,
		"link":      filemode.Symlink,
	} {
		entry, err := tree.FindEntry(name)
		if err != nil {
			t.Errorf("%s missing: %v", name, err)
			continue
		}
		if entry.Mode != mode {
			t.Errorf("%s has mode %s, want %s", name, entry.Mode, mode)
		}
	}
	if got := treeFiles(t, repo, h)["link"]; got != "README.md" {
		t.Errorf("symbolic link stored as %q, want its target README.md", got)
	}
}

func TestSnapshotOfAnUnchangedTreeMakesNoCommit(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"README.md": "hello\n", "apps/app.yaml": "kind: ConfigMap\n"})
	repo := NewMemoryRepository()

	first := mustSnapshot(t, repo, dir)
	// Ignored and skipped files do not count as changes either.
	writeFiles(t, dir, map[string]string{".weir/cache": "x", ".git/HEAD": "ref: refs/heads/main\n"})
	second := mustSnapshot(t, repo, dir)
	if second != first {
		t.Errorf("unchanged tree gave a new commit %s, want the tip %s", second, first)
	}
	if n := countCommits(t, repo, second); n != 1 {
		t.Errorf("branch has %d commits, want 1", n)
	}
}

func TestSnapshotAfterAnEditCommitsOnTop(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"README.md": "hello\n", "apps/app.yaml": "data: one\n"})
	repo := NewMemoryRepository()
	first := mustSnapshot(t, repo, dir)

	writeFiles(t, dir, map[string]string{"apps/app.yaml": "data: two\n"})
	second := mustSnapshot(t, repo, dir)
	if second == first {
		t.Fatal("an edited file gave no new commit")
	}
	commit, err := repo.CommitObject(second)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(commit.ParentHashes, []plumbing.Hash{first}) {
		t.Errorf("new commit has parents %v, want [%s]", commit.ParentHashes, first)
	}
	if commit.Message != "test snapshot" {
		t.Errorf("message = %q, want %q", commit.Message, "test snapshot")
	}
	if got := treeFiles(t, repo, second)["apps/app.yaml"]; got != "data: two\n" {
		t.Errorf("apps/app.yaml = %q, want the edit", got)
	}

	// Removing a file is a change too.
	if err := os.Remove(filepath.Join(dir, "README.md")); err != nil {
		t.Fatal(err)
	}
	third := mustSnapshot(t, repo, dir)
	if third == second {
		t.Fatal("a removed file gave no new commit")
	}
	if _, ok := treeFiles(t, repo, third)["README.md"]; ok {
		t.Error("removed README.md is still in the snapshot")
	}
}

func TestSnapshotOntoAnotherBranchPointsHEADAtIt(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"README.md": "hello\n"})
	repo := NewMemoryRepository()
	h, err := Snapshot(repo, "dev", dir, "on dev")
	if err != nil {
		t.Fatal(err)
	}
	head, err := repo.Head()
	if err != nil {
		t.Fatalf("HEAD does not lead to the snapshot: %v", err)
	}
	if head.Name() != plumbing.NewBranchReferenceName("dev") || head.Hash() != h {
		t.Errorf("HEAD = %s at %s, want refs/heads/dev at %s", head.Name(), head.Hash(), h)
	}
}

func TestSnapshotRejectsBadInput(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"README.md": "hello\n"})
	tests := []struct {
		name   string
		repo   *git.Repository
		branch string
		dir    string
	}{
		{"no repository", nil, "main", dir},
		{"invalid branch", NewMemoryRepository(), "bad..name", dir},
		{"missing folder", NewMemoryRepository(), "main", filepath.Join(dir, "missing")},
		{"file, not folder", NewMemoryRepository(), "main", filepath.Join(dir, "README.md")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if h, err := Snapshot(tt.repo, tt.branch, tt.dir, "msg"); err == nil {
				t.Errorf("Snapshot succeeded with %s", h)
			}
		})
	}
}

// countCommits counts the commits reachable from from, stopping at the
// repository's shallow commits as git log does (go-git's Log does not).
func countCommits(t *testing.T, repo *git.Repository, from plumbing.Hash) int {
	t.Helper()
	shallow, err := repo.Storer.Shallow()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[plumbing.Hash]bool{}
	stack := []plumbing.Hash{from}
	for len(stack) > 0 {
		h := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if seen[h] {
			continue
		}
		seen[h] = true
		commit, err := repo.CommitObject(h)
		if err != nil {
			t.Fatalf("reading commit %s: %v", h, err)
		}
		if !slices.Contains(shallow, h) {
			stack = append(stack, commit.ParentHashes...)
		}
	}
	return len(seen)
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
