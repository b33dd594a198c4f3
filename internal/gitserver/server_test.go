package gitserver

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	"github.com/go-git/go-git/v5/storage/memory"
)

// fixture is a served repository made from a folder.
type fixture struct {
	dir  string
	repo *git.Repository
	srv  *Server
	base string // http://127.0.0.1:PORT
	url  string // base + "/cluster.git"
	head plumbing.Hash
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{dir: t.TempDir(), repo: NewMemoryRepository(), srv: New()}
	writeFiles(t, f.dir, map[string]string{
		"README.md":                       "hello\n",
		"clusters/dev/flux-system.yaml":   "kind: Kustomization\n",
		"apps/podinfo/kustomization.yaml": "resources: [deploy.yaml]\n",
		"apps/podinfo/deploy.yaml":        "kind: Deployment\n",
	})
	f.head = mustSnapshot(t, f.repo, f.dir)
	f.srv.Add("cluster", f.repo)
	base, err := f.srv.Start(t.Context(), "127.0.0.1:0")
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	f.base, f.url = base, base+"/cluster.git"
	return f
}

// edit changes a file and snapshots again, returning the new head.
func (f *fixture) edit(t *testing.T, content string) plumbing.Hash {
	t.Helper()
	writeFiles(t, f.dir, map[string]string{"apps/podinfo/deploy.yaml": content})
	h := mustSnapshot(t, f.repo, f.dir)
	if h == f.head {
		t.Fatal("an edit gave no new commit")
	}
	f.head = h
	return h
}

func listRefs(ctx context.Context, url string, auth transport.AuthMethod) (map[string]*plumbing.Reference, error) {
	remote := git.NewRemote(memory.NewStorage(), &config.RemoteConfig{Name: "origin", URLs: []string{url}})
	refs, err := remote.ListContext(ctx, &git.ListOptions{Auth: auth})
	if err != nil {
		return nil, err
	}
	byName := map[string]*plumbing.Reference{}
	for _, r := range refs {
		byName[r.Name().String()] = r
	}
	return byName, nil
}

func clone(t *testing.T, url string, depth int) (*git.Repository, string) {
	t.Helper()
	dir := t.TempDir()
	repo, err := git.PlainCloneContext(t.Context(), dir, false, &git.CloneOptions{URL: url, Depth: depth})
	if err != nil {
		t.Fatalf("clone of %s (depth %d): %v", url, depth, err)
	}
	return repo, dir
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func TestLsRemoteSeesTheSnapshot(t *testing.T) {
	f := newFixture(t)
	refs, err := listRefs(t.Context(), f.url, nil)
	if err != nil {
		t.Fatalf("ls-remote: %v", err)
	}
	main := refs["refs/heads/main"]
	if main == nil {
		t.Fatalf("refs/heads/main not listed; got %v", refs)
	}
	if main.Hash() != f.head {
		t.Errorf("refs/heads/main at %s, want the snapshot %s", main.Hash(), f.head)
	}
	if head := refs["HEAD"]; head == nil || head.Target() != plumbing.NewBranchReferenceName("main") {
		t.Errorf("HEAD = %v, want a symbolic reference to refs/heads/main", head)
	}
}

func TestRepositoryIsServedWithAndWithoutDotGit(t *testing.T) {
	f := newFixture(t)
	for _, url := range []string{f.base + "/cluster.git", f.base + "/cluster"} {
		refs, err := listRefs(t.Context(), url, nil)
		if err != nil {
			t.Errorf("ls-remote %s: %v", url, err)
			continue
		}
		if refs["refs/heads/main"] == nil || refs["refs/heads/main"].Hash() != f.head {
			t.Errorf("ls-remote %s: refs/heads/main = %v, want %s", url, refs["refs/heads/main"], f.head)
		}
	}
}

func TestCloneGetsTheFiles(t *testing.T) {
	f := newFixture(t)
	f.edit(t, "kind: Deployment\nreplicas: 2\n") // so that history has two commits

	for _, tt := range []struct {
		name    string
		depth   int
		commits int
	}{
		{"full", 0, 2},
		{"depth 1", 1, 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			repo, dir := clone(t, f.url, tt.depth)
			head, err := repo.Head()
			if err != nil {
				t.Fatal(err)
			}
			if head.Hash() != f.head {
				t.Errorf("cloned HEAD at %s, want %s", head.Hash(), f.head)
			}
			if got := readFile(t, filepath.Join(dir, "apps", "podinfo", "deploy.yaml")); got != "kind: Deployment\nreplicas: 2\n" {
				t.Errorf("apps/podinfo/deploy.yaml = %q", got)
			}
			if got := readFile(t, filepath.Join(dir, "clusters", "dev", "flux-system.yaml")); got != "kind: Kustomization\n" {
				t.Errorf("clusters/dev/flux-system.yaml = %q", got)
			}
			if n := countCommits(t, repo, head.Hash()); n != tt.commits {
				t.Errorf("clone has %d commits, want %d", n, tt.commits)
			}
			shallow, err := repo.Storer.Shallow()
			if err != nil {
				t.Fatal(err)
			}
			if wantShallow := tt.depth > 0; wantShallow != (len(shallow) > 0) {
				t.Errorf("clone's shallow commits = %v, want shallow: %v", shallow, wantShallow)
			}
		})
	}
}

func TestShallowCloneStopsAtTheDepth(t *testing.T) {
	f := newFixture(t)
	f.edit(t, "kind: Deployment\nreplicas: 2\n")
	f.edit(t, "kind: Deployment\nreplicas: 3\n")
	repo, _ := clone(t, f.url, 2)
	if n := countCommits(t, repo, f.head); n != 2 {
		t.Errorf("depth-2 clone of 3 commits has %d, want 2", n)
	}
}

func TestFetchSeesANewSnapshot(t *testing.T) {
	for _, depth := range []int{0, 1} {
		t.Run(map[int]string{0: "full", 1: "depth 1"}[depth], func(t *testing.T) {
			f := newFixture(t)
			// Two commits, so that a depth-1 clone is shallow and its fetch
			// sends its shallow commit.
			f.edit(t, "kind: Deployment\nreplicas: 2\n")
			repo, _ := clone(t, f.url, depth)

			next := f.edit(t, "kind: Deployment\nreplicas: 3\n")
			refs, err := listRefs(t.Context(), f.url, nil)
			if err != nil {
				t.Fatal(err)
			}
			if got := refs["refs/heads/main"].Hash(); got != next {
				t.Errorf("ls-remote after the edit: main at %s, want %s", got, next)
			}

			err = repo.FetchContext(t.Context(), &git.FetchOptions{Depth: depth})
			if err != nil {
				t.Fatalf("fetch: %v", err)
			}
			ref, err := repo.Reference(plumbing.NewRemoteReferenceName("origin", "main"), true)
			if err != nil {
				t.Fatal(err)
			}
			if ref.Hash() != next {
				t.Errorf("origin/main at %s after fetch, want %s", ref.Hash(), next)
			}
			if got := treeFiles(t, repo, next)["apps/podinfo/deploy.yaml"]; got != "kind: Deployment\nreplicas: 3\n" {
				t.Errorf("fetched deploy.yaml = %q", got)
			}

			// Nothing changed: the next snapshot and fetch find nothing new.
			if h := mustSnapshot(t, f.repo, f.dir); h != next {
				t.Errorf("unchanged tree gave commit %s, want %s", h, next)
			}
			err = repo.FetchContext(t.Context(), &git.FetchOptions{Depth: depth})
			if !errors.Is(err, git.NoErrAlreadyUpToDate) {
				t.Errorf("second fetch: %v, want already up to date", err)
			}
		})
	}
}

func TestBasicAuth(t *testing.T) {
	f := newFixture(t)
	f.srv.SetBasicAuth("weir", "s3cret")

	_, err := listRefs(t.Context(), f.url, &githttp.BasicAuth{Username: "weir", Password: "wrong"})
	if !errors.Is(err, transport.ErrAuthenticationRequired) {
		t.Errorf("wrong password: %v, want authentication required", err)
	}
	if status := get(t, f.url+"/info/refs?service=git-upload-pack", "weir", "wrong"); status != http.StatusUnauthorized {
		t.Errorf("wrong password: status %d, want 401", status)
	}
	if status := get(t, f.url+"/info/refs?service=git-upload-pack", "", ""); status != http.StatusUnauthorized {
		t.Errorf("no credentials: status %d, want 401", status)
	}

	auth := &githttp.BasicAuth{Username: "weir", Password: "s3cret"}
	refs, err := listRefs(t.Context(), f.url, auth)
	if err != nil {
		t.Fatalf("right password: %v", err)
	}
	if refs["refs/heads/main"] == nil {
		t.Error("right password: refs/heads/main not listed")
	}
	if _, err := git.CloneContext(t.Context(), memory.NewStorage(), nil, &git.CloneOptions{URL: f.url, Auth: auth}); err != nil {
		t.Errorf("clone with the right password: %v", err)
	}

	f.srv.SetBasicAuth("", "")
	if _, err := listRefs(t.Context(), f.url, nil); err != nil {
		t.Errorf("authentication turned off: %v", err)
	}
}

func TestUnknownRepositoryIsNotFound(t *testing.T) {
	f := newFixture(t)
	if status := get(t, f.base+"/nope.git/info/refs?service=git-upload-pack", "", ""); status != http.StatusNotFound {
		t.Errorf("status %d, want 404", status)
	}
	_, err := listRefs(t.Context(), f.base+"/nope.git", nil)
	if !errors.Is(err, transport.ErrRepositoryNotFound) {
		t.Errorf("ls-remote: %v, want repository not found", err)
	}

	// Withdrawing a repository makes it unknown.
	f.srv.Add("cluster", nil)
	if status := get(t, f.url+"/info/refs?service=git-upload-pack", "", ""); status != http.StatusNotFound {
		t.Errorf("withdrawn repository: status %d, want 404", status)
	}
}

func TestAdvertisementIsSmartHTTP(t *testing.T) {
	f := newFixture(t)
	resp, err := http.Get(f.url + "/info/refs?service=git-upload-pack")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/x-git-upload-pack-advertisement" {
		t.Errorf("Content-Type = %q", ct)
	}
	if !strings.HasPrefix(string(body), "001e# service=git-upload-pack\n0000") {
		t.Errorf("body starts %q, want the service pkt-line then a flush", body[:min(len(body), 40)])
	}
	first := regexp.MustCompile(`^[0-9a-f]{4}([0-9a-f]{40}) HEAD\x00([^\n]*)\n`).FindSubmatch(body[len("001e# service=git-upload-pack\n0000"):])
	if first == nil {
		t.Fatalf("first reference line is not HEAD with capabilities: %q", body)
	}
	if string(first[1]) != f.head.String() {
		t.Errorf("HEAD advertised at %s, want %s", first[1], f.head)
	}
	for _, c := range []string{"shallow", "ofs-delta", "symref=HEAD:refs/heads/main"} {
		if !slices.Contains(strings.Fields(string(first[2])), c) {
			t.Errorf("capability %q not advertised in %q", c, first[2])
		}
	}
}

func TestPushAndDumbHTTPAreRefused(t *testing.T) {
	f := newFixture(t)
	for path, want := range map[string]int{
		"/info/refs?service=git-receive-pack": http.StatusForbidden,
		"/info/refs":                          http.StatusForbidden,
		"/HEAD":                               http.StatusNotFound,
		"/git-upload-pack":                    http.StatusMethodNotAllowed,
	} {
		if status := get(t, f.url+path, "", ""); status != want {
			t.Errorf("GET %s: status %d, want %d", path, status, want)
		}
	}
	resp, err := http.Post(f.url+"/git-receive-pack", "application/x-git-receive-pack-request", strings.NewReader("0000"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("POST git-receive-pack: status %d, want 403", resp.StatusCode)
	}
}

func TestMalformedUploadPackRequestsAreRejected(t *testing.T) {
	f := newFixture(t)
	for name, body := range map[string]string{
		"empty":        "",
		"flush only":   "0000",
		"unknown want": "0032want 0123456789012345678901234567890123456789\n00000009done\n",
		"garbage":      "zzzz",
		"deepen-since": "0032want " + f.head.String() + "\n0017deepen-since 12345\n00000009done\n",
	} {
		resp, err := http.Post(f.url+"/git-upload-pack", "application/x-git-upload-pack-request", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: status %d, want 400", name, resp.StatusCode)
		}
	}
	resp, err := http.Post(f.url+"/git-upload-pack", "text/plain", strings.NewReader("0000"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnsupportedMediaType {
		t.Errorf("wrong content type: status %d, want 415", resp.StatusCode)
	}
}

func TestServingWhileSnapshottingIsSafe(t *testing.T) {
	f := newFixture(t)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := range 10 {
			writeFiles(t, f.dir, map[string]string{"apps/podinfo/deploy.yaml": strings.Repeat("x", i+1)})
			if _, err := Snapshot(f.repo, "main", f.dir, "concurrent"); err != nil {
				t.Errorf("Snapshot: %v", err)
				return
			}
		}
	}()
	for range 5 {
		if _, err := git.CloneContext(t.Context(), memory.NewStorage(), nil, &git.CloneOptions{URL: f.url, Depth: 1}); err != nil {
			t.Errorf("clone during snapshots: %v", err)
		}
	}
	wg.Wait()
}

func TestStartStopsWhenTheContextIsDone(t *testing.T) {
	srv := New()
	ctx, cancel := context.WithCancel(t.Context())
	base, err := srv.Start(ctx, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^http://127\.0\.0\.1:[0-9]+$`).MatchString(base) {
		t.Errorf("base URL %q, want http://127.0.0.1:PORT", base)
	}
	if status := get(t, base+"/x.git/info/refs?service=git-upload-pack", "", ""); status != http.StatusNotFound {
		t.Errorf("running server: status %d, want 404", status)
	}
	cancel()
	deadline := time.Now().Add(5 * time.Second)
	for {
		resp, err := http.Get(base + "/x.git/info/refs")
		if err != nil {
			break
		}
		resp.Body.Close()
		if time.Now().After(deadline) {
			t.Fatal("server still answers 5s after its context ended")
		}
		time.Sleep(20 * time.Millisecond)
	}

	done, stop := context.WithCancel(t.Context())
	stop()
	if _, err := srv.Start(done, "127.0.0.1:0"); err == nil {
		t.Error("Start with a finished context succeeded")
	}
}

// get returns the status of a GET, with basic credentials when user is set.
func get(t *testing.T, url, user, password string) int {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if user != "" {
		req.SetBasicAuth(user, password)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}
