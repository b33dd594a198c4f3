package testenv

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/fluxcd/pkg/gittestserver"
	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/format/index"
	"github.com/go-git/go-git/v5/plumbing/object"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// GitServer is a Git server on loopback, backed by fluxcd's gittestserver:
// smart HTTP with basic auth and SSH with a host key.
type GitServer struct {
	srv      *gittestserver.GitServer
	user     string
	password string
	fetches  atomic.Int64
}

// NewGitServer starts a Git server that requires user/password over HTTP
// and serves SSH; both stop when the test ends.
func NewGitServer(t testing.TB, user, password string) *GitServer {
	t.Helper()
	srv, err := gittestserver.NewTempGitServer()
	if err != nil {
		t.Fatalf("creating the git server: %v", err)
	}
	srv.AutoCreate()
	if user != "" {
		srv.Auth(user, password)
	}
	g := &GitServer{srv: srv, user: user, password: password}
	srv.AddHTTPMiddlewares(func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/git-upload-pack") {
				g.fetches.Add(1)
			}
			next.ServeHTTP(w, r)
		})
	})
	keyDir := t.TempDir()
	srv.KeyDir(keyDir)
	if err := srv.StartHTTP(); err != nil {
		t.Fatalf("starting the git HTTP server: %v", err)
	}
	if err := srv.ListenSSH(); err != nil {
		t.Fatalf("listening for git over SSH: %v", err)
	}
	go func() { _ = srv.StartSSH() }()
	t.Cleanup(func() {
		srv.StopHTTP()
		_ = srv.StopSSH()
		os.RemoveAll(srv.Root())
	})
	return g
}

// Fetches counts the clones and fetches served over HTTP so far (ls-remote,
// which only lists refs, is not one).
func (g *GitServer) Fetches() int64 { return g.fetches.Load() }

// HTTPURL is the clone URL of repository name over HTTP, without credentials.
func (g *GitServer) HTTPURL(name string) string { return g.srv.HTTPAddress() + "/" + name + ".git" }

// SSHURL is the clone URL of repository name over SSH.
func (g *GitServer) SSHURL(name string) string { return g.srv.SSHAddress() + "/" + name + ".git" }

// KnownHosts scans the SSH server's host key and returns it as a
// known_hosts line, as `ssh-keyscan` would.
func (g *GitServer) KnownHosts(t testing.TB) []byte {
	t.Helper()
	addr := g.srv.SSHAddress()[len("ssh://git@"):]
	var line string
	cfg := &ssh.ClientConfig{
		User: "git",
		Auth: []ssh.AuthMethod{ssh.Password("none")},
		HostKeyCallback: func(hostname string, remote net.Addr, key ssh.PublicKey) error {
			line = knownhosts.Line([]string{knownhosts.Normalize(addr)}, key)
			return nil
		},
		Timeout: 5 * time.Second,
	}
	conn, err := ssh.Dial("tcp", addr, cfg)
	if err == nil {
		conn.Close()
	}
	if line == "" {
		t.Fatalf("scanning the SSH host key of %s: %v", addr, err)
	}
	return []byte(line + "\n")
}

// Repo is a repository the test writes and pushes to the server.
type Repo struct {
	t      testing.TB
	server *GitServer
	name   string
	repo   *git.Repository
	dir    string
	// signKey signs the commits and annotated tags made from now on.
	signKey *openpgp.Entity
	// signer, when set, signs the commits instead (an SSH signer, say).
	signer git.Signer
}

// Repo makes a working repository that pushes to the server's repository
// name (created on first push).
func (g *GitServer) Repo(t testing.TB, name string) *Repo {
	t.Helper()
	dir := t.TempDir()
	repo, err := git.PlainInit(dir, false)
	if err != nil {
		t.Fatalf("initialising repository %s: %v", name, err)
	}
	_, err = repo.CreateRemote(&config.RemoteConfig{Name: "origin", URLs: []string{g.HTTPURL(name)}})
	if err != nil {
		t.Fatalf("adding the remote: %v", err)
	}
	return &Repo{t: t, server: g, name: name, repo: repo, dir: dir}
}

// SignWith makes the commits and annotated tags that follow signed with
// the OpenPGP key (nil: unsigned again).
func (r *Repo) SignWith(key *openpgp.Entity) { r.signKey = key }

// SignCommitsWith makes the commits that follow signed by signer, such as
// an SSH signer (nil: back to SignWith's key). go-git signs tags with
// OpenPGP keys only.
func (r *Repo) SignCommitsWith(signer git.Signer) { r.signer = signer }

// Dir is the working tree.
func (r *Repo) Dir() string { return r.dir }

// Commit writes files (path to content; empty content deletes the file) on
// branch, commits and pushes, and returns the commit hash.
func (r *Repo) Commit(branch string, files map[string]string, msg string) plumbing.Hash {
	r.t.Helper()
	wt, err := r.repo.Worktree()
	if err != nil {
		r.t.Fatalf("opening the work tree: %v", err)
	}
	ref := plumbing.NewBranchReferenceName(branch)
	if head, err := r.repo.Head(); err == nil && head.Name() != ref {
		_, exists := r.repo.Reference(ref, false)
		err := wt.Checkout(&git.CheckoutOptions{Branch: ref, Create: exists != nil, Keep: false})
		if err != nil {
			r.t.Fatalf("checking out %s: %v", branch, err)
		}
	} else if err != nil {
		// Empty repository: point HEAD at the branch for the first commit.
		if err := r.repo.Storer.SetReference(plumbing.NewSymbolicReference(plumbing.HEAD, ref)); err != nil {
			r.t.Fatalf("setting HEAD: %v", err)
		}
	}
	for path, content := range files {
		full := filepath.Join(r.dir, path)
		if content == "" {
			if _, err := wt.Remove(path); err != nil {
				r.t.Fatalf("removing %s: %v", path, err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			r.t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			r.t.Fatal(err)
		}
		if _, err := wt.Add(path); err != nil {
			r.t.Fatalf("adding %s: %v", path, err)
		}
	}
	h, err := wt.Commit(msg, &git.CommitOptions{
		AllowEmptyCommits: true,
		Author:            &object.Signature{Name: "weir test", Email: "test@weir.invalid", When: time.Now()},
		SignKey:           r.signKey,
		Signer:            r.signer,
	})
	if err != nil {
		r.t.Fatalf("committing: %v", err)
	}
	r.push(config.RefSpec(fmt.Sprintf("+%s:%s", ref, ref)))
	return h
}

// Submodule records, for the next Commit, a submodule at path that
// points at commit of the repository at url. The url is written into
// .gitmodules as given, so a relative "../other.git" works as in git.
func (r *Repo) Submodule(path, url string, commit plumbing.Hash) {
	r.t.Helper()
	f, err := os.OpenFile(filepath.Join(r.dir, ".gitmodules"), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		r.t.Fatal(err)
	}
	_, err = fmt.Fprintf(f, "[submodule %q]\n\tpath = %s\n\turl = %s\n", path, path, url)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		r.t.Fatal(err)
	}
	wt, err := r.repo.Worktree()
	if err != nil {
		r.t.Fatal(err)
	}
	if _, err := wt.Add(".gitmodules"); err != nil {
		r.t.Fatalf("staging .gitmodules: %v", err)
	}
	idx, err := r.repo.Storer.Index()
	if err != nil {
		r.t.Fatal(err)
	}
	idx.Entries = append(idx.Entries, &index.Entry{Name: path, Hash: commit, Mode: filemode.Submodule, ModifiedAt: time.Now()})
	if err := r.repo.Storer.SetIndex(idx); err != nil {
		r.t.Fatalf("staging submodule %s: %v", path, err)
	}
}

// Tag tags commit h (annotated when msg is not empty) and pushes the tag.
func (r *Repo) Tag(name string, h plumbing.Hash, msg string) {
	r.t.Helper()
	var opts *git.CreateTagOptions
	if msg != "" {
		opts = &git.CreateTagOptions{Message: msg, Tagger: &object.Signature{Name: "weir test", Email: "test@weir.invalid", When: time.Now()}, SignKey: r.signKey}
	}
	if _, err := r.repo.CreateTag(name, h, opts); err != nil {
		r.t.Fatalf("tagging %s: %v", name, err)
	}
	ref := plumbing.NewTagReferenceName(name)
	r.push(config.RefSpec(fmt.Sprintf("+%s:%s", ref, ref)))
}

func (r *Repo) push(spec config.RefSpec) {
	r.t.Helper()
	opts := &git.PushOptions{RemoteName: "origin", RefSpecs: []config.RefSpec{spec}}
	if r.server.user != "" {
		opts.Auth = &githttp.BasicAuth{Username: r.server.user, Password: r.server.password}
	}
	if err := r.repo.Push(opts); err != nil && err != git.NoErrAlreadyUpToDate {
		r.t.Fatalf("pushing %s: %v", spec, err)
	}
}

// SSHIdentity returns a fresh ed25519 private key in OpenSSH PEM form, for
// a Secret's 'identity' key (the test server accepts any client key).
func SSHIdentity(t testing.TB) []byte {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := pem.Encode(&buf, block); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// Link creates a symbolic link name -> target in the work tree and stages
// it for the next Commit.
func (r *Repo) Link(name, target string) {
	r.t.Helper()
	full := filepath.Join(r.dir, name)
	if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
		r.t.Fatal(err)
	}
	if err := os.Symlink(target, full); err != nil {
		r.t.Fatalf("creating symlink %s: %v", name, err)
	}
	wt, err := r.repo.Worktree()
	if err != nil {
		r.t.Fatal(err)
	}
	if _, err := wt.Add(name); err != nil {
		r.t.Fatalf("staging symlink %s: %v", name, err)
	}
}
