package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// exampleGit copies the example repository (and its charts) into a new
// Git repository, commits it, and returns the copy's sync root and a
// commit function.
func exampleGit(t *testing.T) (string, func(msg string) string) {
	t.Helper()
	t.Setenv("SOPS_AGE_KEY_FILE", "")
	t.Setenv("SOPS_AGE_KEY", "")
	top := t.TempDir()
	copyDir(t, filepath.Join("..", "..", "examples"), top)
	r, err := git.PlainInit(top, false)
	if err != nil {
		t.Fatal(err)
	}
	wt, err := r.Worktree()
	if err != nil {
		t.Fatal(err)
	}
	commit := func(msg string) string {
		t.Helper()
		if err := wt.AddWithOptions(&git.AddOptions{All: true}); err != nil {
			t.Fatal(err)
		}
		h, err := wt.Commit(msg, &git.CommitOptions{All: true, AllowEmptyCommits: true, Author: &object.Signature{Name: "t", Email: "t@example.org", When: time.Now()}})
		if err != nil {
			t.Fatal(err)
		}
		return h.String()
	}
	return filepath.Join(top, "cluster"), commit
}

func editFile(t *testing.T, path, old, new string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), old) {
		t.Fatalf("%s does not hold %q", path, old)
	}
	if err := os.WriteFile(path, []byte(strings.Replace(string(b), old, new, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
}

type planJSON struct {
	Owners []struct {
		Kind, Namespace, Name, State, Error string
		Changes                             []struct {
			Kind, Namespace, Name, Action, Diff, Note string
			Immutable                                 []string
		}
	}
	Totals    map[string]int
	Unchanged int
}

func runPlanJSON(t *testing.T, args ...string) planJSON {
	t.Helper()
	out, stderr, err := runSplit(t, append([]string{"plan", "--format", "json"}, args...)...)
	if err != nil {
		t.Fatalf("weir plan %v: %v\n%s", args, err, stderr)
	}
	var p planJSON
	if err := json.Unmarshal([]byte(out), &p); err != nil {
		t.Fatalf("weir plan --format json is not JSON: %v\n%s", err, out)
	}
	return p
}

// weir plan between two commits of the example repository: a values
// change shows exactly the HelmRelease and the chart objects it changes;
// removing an app shows its Kustomization, its HelmRelease and the
// chart's objects under prune; an owner that no longer renders prunes
// nothing.
func TestPlanBetweenCommitsOfTheExample(t *testing.T) {
	root, commit := exampleGit(t)
	first := commit("the example")

	// Nothing changed: an empty plan, exit 0 with --exit-code.
	if out, stderr, err := runSplit(t, "plan", root, "--from", first, "--exit-code", "--color", "never"); err != nil {
		t.Fatalf("an empty plan: %v\n%s%s", err, out, stderr)
	} else {
		wantIn(t, "an empty plan", out, "Summary: no change")
	}

	spegel := filepath.Join(root, "kubernetes", "apps", "kube-system", "spegel")
	editFile(t, filepath.Join(spegel, "app", "helmrelease.yaml"), `domain: "spegel.${CLUSTER_DOMAIN:=cluster.local}"`, `domain: "spegel.example.org"`)
	values := commit("spegel's domain")
	p := runPlanJSON(t, root, "--from", first, "--to", values)
	got := map[string]string{}
	for _, o := range p.Owners {
		for _, c := range o.Changes {
			got[o.Kind+" "+o.Name+": "+c.Action+" "+c.Kind+"/"+c.Name] = c.Diff
		}
	}
	want := []string{
		"Kustomization spegel: update HelmRelease/spegel",
		"HelmRelease spegel: update ConfigMap/spegel-config",
		"HelmRelease spegel: update Deployment/spegel", // its config checksum
	}
	if len(got) != len(want) {
		t.Errorf("a values change planned %d changes, want %d: %v", len(got), len(want), keysOf(got))
	}
	for _, w := range want {
		if _, ok := got[w]; !ok {
			t.Errorf("the plan lacks %q: %v", w, keysOf(got))
		}
	}
	wantIn(t, "the ConfigMap's diff", got["HelmRelease spegel: update ConfigMap/spegel-config"], "-  domain: spegel.", "+  domain: spegel.example.org")

	// The exit code tells a change.
	_, _, err := runSplit(t, "plan", root, "--from", first, "--to", values, "--exit-code")
	if code, ok := err.(exitError); !ok || code.code != 2 {
		t.Errorf("--exit-code with changes: err = %v, want exit status 2", err)
	}

	// Removing the app prunes the Kustomization, its objects and the
	// release's objects.
	editFile(t, filepath.Join(root, "kubernetes", "apps", "kube-system", "kustomization.yaml"), "  - ./spegel/ks.yaml\n", "")
	removed := commit("no spegel")
	p = runPlanJSON(t, root, "--from", values, "--to", removed)
	pruned := map[string]bool{}
	for _, o := range p.Owners {
		for _, c := range o.Changes {
			if c.Action != "prune" {
				t.Errorf("removing an app planned %s %s/%s", c.Action, c.Kind, c.Name)
			}
			pruned[c.Kind+"/"+c.Name] = true
		}
	}
	for _, w := range []string{"Kustomization/spegel", "HelmRelease/spegel", "OCIRepository/spegel", "Deployment/spegel", "ConfigMap/spegel-config", "Service/spegel"} {
		if !pruned[w] {
			t.Errorf("%s is not under prune: %v", w, pruned)
		}
	}

	// The markdown comment has the summary table and a section per object.
	out, _, err := runSplit(t, "plan", root, "--from", values, "--to", removed, "--format", "markdown")
	if err != nil {
		t.Fatal(err)
	}
	wantIn(t, "the markdown plan", out, "| Cluster | Owner |", "<details><summary><code>-</code> prune Deployment/spegel</summary>")

	// A broken app in the working tree is reported and prunes nothing.
	if err := os.Remove(filepath.Join(root, "kubernetes", "apps", "network", "k8s-gateway", "app", "helmrelease.yaml")); err != nil {
		t.Fatal(err)
	}
	p = runPlanJSON(t, root, "--from", removed)
	var failed bool
	for _, o := range p.Owners {
		if o.Name == "k8s-gateway" && o.Kind == "Kustomization" {
			failed = o.Error != ""
		}
		for _, c := range o.Changes {
			if c.Action == "prune" {
				t.Errorf("a Kustomization that does not render pruned %s/%s", c.Kind, c.Name)
			}
		}
	}
	if !failed {
		t.Errorf("the broken k8s-gateway Kustomization is not reported as failing: %+v", p.Owners)
	}
}

func keysOf[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// weir test --since checks exactly what the changes can alter and what
// depends on it: a values edit of one app checks its Kustomization and
// HelmRelease; an edit of an app others depend on checks those too; an
// edit no render reads checks nothing.
func TestTestSinceChecksWhatTheChangesReach(t *testing.T) {
	root, commit := exampleGit(t)
	commit("the example")
	checked := func() []string {
		t.Helper()
		out, stderr, err := runSplit(t, "test", root, "--since", "HEAD", "--offline")
		if err != nil {
			t.Fatalf("weir test --since: %v\n%s%s", err, out, stderr)
		}
		var got []string
		for _, l := range strings.Split(out, "\n") {
			if strings.HasPrefix(l, "✔ ") || strings.HasPrefix(l, "✗ ") || strings.HasPrefix(l, "⚠ ") {
				got = append(got, strings.SplitN(strings.TrimPrefix(l[4:], "kubernetes: "), ":", 2)[0])
			}
		}
		return got
	}
	apps := filepath.Join(root, "kubernetes", "apps")
	editFile(t, filepath.Join(apps, "kube-system", "spegel", "app", "helmrelease.yaml"), `domain: "spegel.${CLUSTER_DOMAIN:=cluster.local}"`, `domain: "spegel.example.org"`)
	if got, want := checked(), []string{"HelmRelease kube-system/spegel", "Kustomization flux-system/spegel"}; !slices.Equal(got, want) {
		t.Errorf("a values edit checked %v, want %v", got, want)
	}
	commit("spegel")

	// envoy-gateway's dependents are checked with it.
	b, err := os.ReadFile(filepath.Join(apps, "network", "envoy-gateway", "app", "helmrelease.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(apps, "network", "envoy-gateway", "app", "helmrelease.yaml"), append(b, "# reviewed\n"...), 0o644); err != nil {
		t.Fatal(err)
	}
	want := []string{"HelmRelease network/envoy-gateway", "Kustomization flux-system/cloudflare-tunnel", "Kustomization flux-system/echo",
		"Kustomization flux-system/envoy-gateway", "Kustomization flux-system/external-dns", "Kustomization flux-system/k8s-gateway"}
	if got := checked(); !slices.Equal(got, want) {
		t.Errorf("an edit of envoy-gateway checked %v, want %v", got, want)
	}
	commit("envoy")

	// A file no render reads.
	if err := os.WriteFile(filepath.Join(root, "NOTES.md"), []byte("notes\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := checked(); len(got) != 0 {
		t.Errorf("a new NOTES.md checked %v, want nothing", got)
	}
}
