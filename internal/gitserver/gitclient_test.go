package gitserver

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The git binary is used here only as a second client, to check that the
// protocol is Git's and not only what go-git accepts. weir itself never runs
// git.
func TestGitCommandLineClientCanCloneAndFetch(t *testing.T) {
	gitBin, err := exec.LookPath("git")
	if err != nil {
		t.Skip("git is not installed")
	}
	home := t.TempDir()
	git := func(dir string, args ...string) string {
		t.Helper()
		cmd := exec.CommandContext(t.Context(), gitBin, args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "HOME="+home, "GIT_CONFIG_NOSYSTEM=1", "GIT_TERMINAL_PROMPT=0")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return strings.TrimSpace(string(out))
	}

	f := newFixture(t)
	f.edit(t, "kind: Deployment\nreplicas: 2\n")

	if out := git("", "ls-remote", f.url); !strings.Contains(out, f.head.String()+"\trefs/heads/main") {
		t.Errorf("git ls-remote does not list main at %s:\n%s", f.head, out)
	}

	work := t.TempDir()
	git(work, "clone", "-q", f.url, "full")
	git(work, "clone", "-q", "--depth", "1", f.url, "shallow")
	for name, commits := range map[string]string{"full": "2", "shallow": "1"} {
		dir := filepath.Join(work, name)
		if got := git(dir, "rev-parse", "HEAD"); got != f.head.String() {
			t.Errorf("%s clone at %s, want %s", name, got, f.head)
		}
		if got := git(dir, "rev-list", "--count", "HEAD"); got != commits {
			t.Errorf("%s clone has %s commits, want %s", name, got, commits)
		}
		if got := readFile(t, filepath.Join(dir, "apps", "podinfo", "deploy.yaml")); got != "kind: Deployment\nreplicas: 2\n" {
			t.Errorf("%s clone: deploy.yaml = %q", name, got)
		}
	}

	next := f.edit(t, "kind: Deployment\nreplicas: 3\n")
	git(filepath.Join(work, "full"), "fetch", "-q")
	git(filepath.Join(work, "shallow"), "fetch", "-q", "--depth", "1")
	for _, name := range []string{"full", "shallow"} {
		dir := filepath.Join(work, name)
		if got := git(dir, "rev-parse", "origin/main"); got != next.String() {
			t.Errorf("%s clone: origin/main at %s after fetch, want %s", name, got, next)
		}
		git(dir, "fsck", "--no-progress")
	}
}
